"""The keys this installation signs with itself: the deployment operator's and the local CLI's.

The embedded default works with no setup: the first command that needs a key creates it in
``<data_dir>/keys/`` (folder 0700, files 0600). Two keys:

- ``operator-key.pem``: the deployment operator's key. It signs ``register-school`` and
  the registration of a school's first source. The service trusts its public half unless
  ``SFERUM_AUDIT_OPERATOR_PUBLIC_KEYS`` (or ``..._PUBLIC_KEY_FILE``) names the trusted keys
  instead; then a local key that is not among them vouches for nothing.
- ``local-source-key.pem``: the local CLI's key, registered for each school it writes for
  as the integration source ``local-cli/<school_id>``, by a ``register-source`` command the
  operator key signs, the first time the CLI (``record``, ``moderate``, ``report-access``,
  ``forget``, ``demo``) writes for that school.

Whoever can read these files can sign as the operator or the local CLI: they are as
secret as the store itself, and production keeps the operator's private key off the
service's hosts (``sferum-audit operator-key`` prints the public half to configure).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sferum_audit.application.authentication import (
    OPERATOR_COMMANDS,
    OPERATOR_SOURCE,
    Authenticator,
    Signature,
    key_id,
    public_key_text,
    sign,
    vouched_command,
)
from sferum_audit.application.service import AuditLog, CommandResult
from sferum_audit.application.settings import Settings
from sferum_audit.domain.source import Source, check_public_key
from sferum_audit.integrity.keys import load_or_create_signing_key

if TYPE_CHECKING:
    from sferum_audit.application.commands import Command

LOCAL_SOURCE_PREFIX: Final = "local-cli/"
OPERATOR_ACTOR: Final = {"id": "deployment-operator", "role": "school-administration"}


def operator_key_path(settings: Settings) -> Path:
    return settings.operator_key_file or settings.keys_dir / "operator-key.pem"


def local_source_key_path(settings: Settings) -> Path:
    return settings.keys_dir / "local-source-key.pem"


def operator_key(settings: Settings) -> Ed25519PrivateKey:
    """The operator's private key for the CLI's bootstrap commands (created on first use)."""
    return load_or_create_signing_key(operator_key_path(settings))


def operator_public_keys(settings: Settings) -> tuple[str, ...]:
    """The operator keys the service trusts: configured, or the local operator key's."""
    if settings.operator_public_keys:
        texts: Iterable[str] = settings.operator_public_keys.split(",")
    elif settings.operator_public_key_file is not None:
        lines = settings.operator_public_key_file.read_text(encoding="ascii").splitlines()
        texts = (line.split("#", 1)[0] for line in lines)
    else:
        return (public_key_text(operator_key(settings).public_key()),)
    keys = tuple(text.strip() for text in texts if text.strip())
    for key in keys:
        check_public_key(key)
    return keys


def authenticator_for(settings: Settings) -> Authenticator:
    """The service's authenticator; the operator keys are read (or the local one made) the
    first time an operator signature is checked, so commands that only read the log never
    touch the keys folder (an auditor's read-only copy stays read-only)."""
    return Authenticator(lambda: operator_public_keys(settings), settings.signature_window_seconds)


def local_source_id(school_id: str) -> str:
    return f"{LOCAL_SOURCE_PREFIX}{school_id}"


def source_key_and_time(path: Path) -> tuple[Ed25519PrivateKey, datetime]:
    """A source's signing key at ``path`` (made on first use) and when it was made, to the
    second: a source's registration is dated then, the same every time, so registering
    again is a duplicate and not a reused command id."""
    key = load_or_create_signing_key(path)
    return key, datetime.fromtimestamp(int(path.stat().st_mtime), UTC)


@dataclass
class LocalSigner:
    """Signs commands as this installation: ``register-school`` with the operator key,
    everything else with the local CLI source of the command's school."""

    operator: Ed25519PrivateKey
    local: Ed25519PrivateKey
    # When the local key was made: the registration's ``occurred_at``, the same every time,
    # so that registering again is a duplicate and not a reused command id.
    made_at: datetime

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalSigner:
        path = local_source_key_path(settings)
        local, made_at = source_key_and_time(path)
        return cls(operator_key(settings), local, made_at)

    @property
    def local_public_key(self) -> str:
        return public_key_text(self.local.public_key())

    def signature(self, body: bytes, school_id: str, command_type: str) -> Signature:
        """The operator signs registering schools and managing sources; the school's local
        source everything else."""
        now = datetime.now(UTC)
        if command_type in OPERATOR_COMMANDS:
            return sign(OPERATOR_SOURCE, self.operator, body, now)
        return sign(local_source_id(school_id), self.local, body, now)

    def signed(self, data: dict[str, Any]) -> tuple[bytes, Signature]:
        """A command object's bytes and their signature."""
        body = json.dumps(data, ensure_ascii=False).encode()
        return body, self.signature(body, str(data["school_id"]), str(data["type"]))

    def vouched(self, data: dict[str, Any]) -> Command:
        """The command as an entry point would receive it, signed (may raise
        ``CommandRejected`` for an invalid command)."""
        body, signature = self.signed(data)
        return vouched_command(body, signature, datetime.now(UTC))

    def registration(self, school_id: str) -> dict[str, Any]:
        """The ``register-source`` command of the local CLI source for ``school_id``, signed
        by the operator; its id names the key, so repeating it records nothing."""
        source_id = local_source_id(school_id)
        public_key = self.local_public_key
        return {
            "command_id": f"register-source/{source_id}/{key_id(public_key)}",
            "type": "register-source",
            "school_id": school_id,
            "actor": OPERATOR_ACTOR,
            "occurred_at": self.made_at.isoformat(),
            "source_id": source_id,
            "kind": "integration",
            "public_key": public_key,
        }

    def with_registrations_first(
        self, commands: Iterable[dict[str, Any]], schools: set[str] | None = None
    ) -> list[dict[str, Any]]:
        """For a publisher: the first command of each school in ``schools`` (default: all)
        other than the operator's preceded by the local source's registration (a repeat is
        a duplicate while the key file stays as it is)."""
        out: list[dict[str, Any]] = []
        done: set[str] = set()
        for data in commands:
            school_id = str(data["school_id"])
            wanted = schools is None or school_id in schools
            if wanted and data["type"] not in OPERATOR_COMMANDS and school_id not in done:
                done.add(school_id)
                out.append(self.registration(school_id))
            out.append(data)
        return out

    def needs_registration(
        self, school_id: str, find_source: Callable[[str], Source | None]
    ) -> bool:
        """Whether the local source of the school is not registered yet (a revoked or
        rotated one is left as it is: its refusals say why)."""
        return find_source(local_source_id(school_id)) is None

    def ensure_registered(self, app: AuditLog, school_id: str) -> CommandResult | None:
        """Registers the local source for a recorded school if it is not yet; the result of
        that registration, or ``None`` when there was nothing to do."""
        if not self.needs_registration(school_id, app.source):
            return None
        return app.handle(self.vouched(self.registration(school_id)))

    def with_registrations(
        self,
        commands: Sequence[Command],
        find_source: Callable[[str], Source | None],
    ) -> Iterator[tuple[Command, bool]]:
        """The commands, each preceded (the first time its school needs it) by the local
        source's registration: (command, is a registration inserted here)."""
        done: set[str] = set()
        for command in commands:
            signature = command.credentials.signature if command.credentials else None
            school_id = command.school_id
            if (
                signature is not None
                and signature.source_id == local_source_id(school_id)
                and school_id not in done
            ):
                done.add(school_id)
                if self.needs_registration(school_id, find_source):
                    yield self.vouched(self.registration(school_id)), True
            yield command, False
