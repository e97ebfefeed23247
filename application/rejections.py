"""A command the service refused, kept with its original payload and the reason.

Whatever arrives on the ingest and is refused (bytes that are not JSON, JSON that breaks
the command schema, a command that breaks a rule of the regulation or is sent by someone
without the authority) is acknowledged, so it is not delivered again, and recorded here:
nothing is dropped silently. One delivery gives one record: the id comes from a stable
key of the delivery (stream, stream creation time and sequence), so a redelivered message
finds the record it already has.

A refused command has no context of its own when its payload cannot be read; the record
then carries a ``system`` context (``actor_id`` ``system``, ``occurred_at`` the time it was
refused) with the delivery key as its command id.
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from eventsourcing.domain import event

from sferum_audit.domain.base import AuditedAggregate, stable_id
from sferum_audit.domain.context import CommandContext

SYSTEM_ACTOR = "system"


def system_context(key: str, now: datetime | None = None) -> CommandContext:
    """The context of a refusal whose payload names no actor (invalid JSON or schema)."""
    return CommandContext(
        actor_id=SYSTEM_ACTOR,
        actor_role="system",
        occurred_at=now or datetime.now(UTC),
        command_id=key,
        correlation_id=key,
    )


class RejectedCommand(AuditedAggregate):
    """One refused delivery: what came in, where from, and why it was refused."""

    @staticmethod
    def create_id(delivery_key: str) -> UUID:
        return stable_id("rejected-command", delivery_key)

    @event("Recorded")
    def __init__(
        self,
        ctx: CommandContext,
        delivery_key: str,
        school_id: str | None,
        command_type: str | None,
        command_id: str | None,
        subject: str,
        error_code: str,
        error_message: str,
        payload: str,
        payload_encoding: str,
    ) -> None:
        self.delivery_key = delivery_key
        self.school_id = school_id
        self.command_type = command_type
        self.command_id = command_id
        self.subject = subject
        self.error_code = error_code
        self.error_message = error_message
        self.payload = payload
        self.payload_encoding = payload_encoding
