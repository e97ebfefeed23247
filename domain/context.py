"""Who did something, when, and because of which command: carried by every event."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sferum_audit.domain.errors import DomainError, InvalidValue
from sferum_audit.domain.regulation import ACTOR_ROLES, require_one_of


class OccurredInFuture(InvalidValue):
    """The act is dated further ahead of the service's clock than the allowed clock skew."""

    code = "occurred-at-in-future"


class DatedBeforeFact(DomainError):
    """The act is dated before a fact it relies on (the school, the actor's appointment, the
    chat, ...): at that moment the order did not allow it, whatever holds now."""

    code = "dated-before-fact"


class DatedBeforePreviousStep(DomainError):
    """A lifecycle step is dated before the step it follows (acknowledged before reported,
    redeemed before issued, ...)."""

    code = "dated-before-previous-step"


def check_not_before(at: datetime, moment: datetime | None, fact: str) -> None:
    """Refuses an act dated ``at``, before ``moment`` when ``fact`` (which it relies on)
    began."""
    if moment is not None and at < moment:
        raise DatedBeforeFact(
            f"the act is dated {at.isoformat()}, before {fact} ({moment.isoformat()}); "
            "acts are judged by what held when they occurred"
        )


def check_step_order(at: datetime, previous: datetime, step: str, after: str) -> None:
    """Refuses a lifecycle ``step`` dated ``at``, before the step ``after`` it follows."""
    if at < previous:
        raise DatedBeforePreviousStep(
            f"{step} is dated {at.isoformat()}, before {after} ({previous.isoformat()})"
        )


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

    def check_not_ahead(self, now: datetime, skew: timedelta) -> None:
        """Refuses an act dated further ahead of ``now`` than the allowed clock ``skew``."""
        if self.occurred_at > now + skew:
            raise OccurredInFuture(
                f"occurred_at {self.occurred_at.isoformat()} is ahead of the service's clock "
                f"({now.isoformat()}) by more than the allowed clock skew of "
                f"{int(skew.total_seconds())} s"
            )

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
