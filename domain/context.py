"""Who did something, when, and because of which command: carried by every event."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sferum_audit.domain.errors import InvalidValue
from sferum_audit.domain.regulation import ACTOR_ROLES, require_one_of


@dataclass(frozen=True, slots=True)
class CommandContext:
    """The provenance of a command, stored on each event it causes.

    ``occurred_at`` is when the action happened on the platform (given by the caller and
    timezone-aware); the time the event was recorded is the event's own ``timestamp``.
    ``command_id`` makes commands idempotent; ``correlation_id`` ties together everything
    one request caused; ``causation_id`` names the message that caused this command.
    ``source_id`` names the registered source whose signature vouched for the command
    (``operator:<key id>`` for the deployment operator); it is ``None`` for trusted
    in-process callers and for events stored before sources existed, whose stored context
    has no such key (it reads back as ``None``: no upcasting is needed).
    """

    actor_id: str
    actor_role: str
    occurred_at: datetime
    command_id: str
    correlation_id: str
    causation_id: str | None = None
    source_id: str | None = None

    def __post_init__(self) -> None:
        if not self.actor_id:
            raise InvalidValue("actor id must not be empty")
        require_one_of(self.actor_role, ACTOR_ROLES, "actor role")
        if self.occurred_at.tzinfo is None or self.occurred_at.utcoffset() is None:
            raise InvalidValue("occurred_at must be timezone-aware")
        if not self.command_id:
            raise InvalidValue("command id must not be empty")

    def as_dict(self) -> dict[str, Any]:
        """The context as plain values, for storage and for read models; without a source,
        exactly the keys (and so the stored bytes) of the contexts stored before sources."""
        data = {
            "actor_id": self.actor_id,
            "actor_role": self.actor_role,
            "occurred_at": self.occurred_at,
            "command_id": self.command_id,
            "correlation_id": self.correlation_id,
            "causation_id": self.causation_id,
        }
        if self.source_id is not None:
            data["source_id"] = self.source_id
        return data
