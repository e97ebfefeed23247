"""The console as a command source: it vouches that the signed-in person is the actor.

Each school the console writes for has the integration source ``web-console/<school_id>``
with the console's Ed25519 key (``<data_dir>/keys/web-console-key.pem``, 0600, made on first
use). Its registration is a ``register-source`` command the deployment operator's key signs,
sent the first time the console acts for the school (like the local CLI's source, see
``application.local_sources``); every act in the console is then an ordinary command
signed by that source, with the person who is signed in as its actor. There is no actor
field in any form: the console fills it from the session.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sferum_audit.application.authentication import (
    OPERATOR_SOURCE,
    key_id,
    public_key_text,
    sign,
    vouched_command,
)
from sferum_audit.application.commands import CommandRejected
from sferum_audit.application.local_sources import (
    OPERATOR_ACTOR,
    operator_key,
    source_key_and_time,
)
from sferum_audit.application.service import AuditLog, CommandResult
from sferum_audit.application.settings import Settings

CONSOLE_SOURCE_PREFIX: Final = "web-console/"


def console_source_id(school_id: str) -> str:
    return f"{CONSOLE_SOURCE_PREFIX}{school_id}"


def console_key_path(settings: Settings) -> Path:
    return settings.keys_dir / "web-console-key.pem"


@dataclass
class ConsoleSigner:
    """Signs the console's commands as the school's console source."""

    settings: Settings
    key: Ed25519PrivateKey
    made_at: datetime

    @classmethod
    def from_settings(cls, settings: Settings) -> ConsoleSigner:
        path = console_key_path(settings)
        key, made_at = source_key_and_time(path)
        return cls(settings, key, made_at)

    @property
    def public_key(self) -> str:
        return public_key_text(self.key.public_key())

    def registration(self, school_id: str) -> dict[str, Any]:
        source_id = console_source_id(school_id)
        return {
            "command_id": f"register-source/{source_id}/{key_id(self.public_key)}",
            "type": "register-source",
            "school_id": school_id,
            "actor": OPERATOR_ACTOR,
            "occurred_at": self.made_at.isoformat(),
            "source_id": source_id,
            "kind": "integration",
            "public_key": self.public_key,
        }

    def ensure_registered(self, app: AuditLog, school_id: str) -> CommandResult | None:
        if app.source(console_source_id(school_id)) is not None:
            return None
        body = json.dumps(self.registration(school_id), ensure_ascii=False).encode()
        now = datetime.now(UTC)
        signature = sign(OPERATOR_SOURCE, operator_key(self.settings), body, now)
        return app.handle(vouched_command(body, signature, now))

    def submit(self, app: AuditLog, data: dict[str, Any]) -> CommandResult:
        """Signs ``data`` as the console source of its school and hands it to the audit log
        (registering the source first if needed)."""
        school_id = str(data["school_id"])
        registration = self.ensure_registered(app, school_id)
        if registration is not None and not registration.accepted:
            return registration
        body = json.dumps(data, ensure_ascii=False).encode()
        now = datetime.now(UTC)
        signature = sign(console_source_id(school_id), self.key, body, now)
        try:
            command = vouched_command(body, signature, now)
        except CommandRejected as error:
            return CommandResult(str(data["command_id"]), "rejected", (), error.code, error.message)
        return app.handle(command)
