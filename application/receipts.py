"""The receipt of a decided command: what makes commands idempotent by ``command_id``.

A receipt is saved in the same transaction as the events the command caused, or alone
when the command was refused for a rule (``Refused``: its code and message). A second
command with the same id finds the receipt and gets the first answer back, a refusal
included; two at once conflict on the receipt's version and the loser is retried, then
finds it. Receipts are bookkeeping: no view reads them.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.domain import event
from eventsourcing.utils import get_topic

from sferum_audit.domain.base import AuditedAggregate, unique_stable_id
from sferum_audit.domain.context import CommandContext
from sferum_audit.domain.errors import DomainError

if TYPE_CHECKING:  # only typing: reading the log does not load the command models
    from sferum_audit.application.commands import CommandBase


class CommandIdReused(DomainError):
    """A command id already recorded a different command: the sender reused an id."""

    code = "command-id-reused"


def fingerprint_of(command: CommandBase) -> str:
    """A digest of the whole command, to tell a true repeat from a reused id."""
    return hashlib.sha256(command.model_dump_json().encode()).hexdigest()


class RefusedBefore(DomainError):
    """The answer kept for a command id that was refused: the same code and message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class CommandReceipt(AuditedAggregate):
    """Which events (aggregate id, version) one command recorded, or why it was refused."""

    @staticmethod
    @lru_cache(maxsize=1 << 13)  # a batch asks for each of its commands' ids three times
    def create_id(command_id: str) -> UUID:
        return unique_stable_id("command", command_id)

    class Recorded(AuditedAggregate.Created):
        """A command was recorded, with these events."""

        command_id: str
        command_type: str
        fingerprint: str
        events: list[list[str]]

    class Refused(AuditedAggregate.Created):
        """A command was refused for a rule; the same id gets this refusal again."""

        command_id: str
        command_type: str
        fingerprint: str
        events: list[list[str]]  # always empty: a refused command recorded nothing
        error_code: str
        error_message: str

        def mutate(self, aggregate: Any) -> Any:
            receipt = super().mutate(aggregate)
            assert receipt is not None  # a created event always makes its aggregate
            receipt.error_code = self.error_code
            receipt.error_message = self.error_message
            return receipt

    @event(Recorded)
    def __init__(
        self,
        ctx: CommandContext,
        command_id: str,
        command_type: str,
        fingerprint: str,
        events: list[list[str]],
    ) -> None:
        self.occurred_at = ctx.occurred_at
        self.command_id = command_id
        self.command_type = command_type
        self.fingerprint = fingerprint
        self.events = events
        self.error_code: str | None = None  # set by ``Refused``
        self.error_message: str | None = None

    def refusal(self) -> RefusedBefore | None:
        """The refusal this id was answered with, or ``None`` if the command was recorded."""
        if self.error_code is None:
            return None
        return RefusedBefore(self.error_code, self.error_message or "")

    def recorded(self) -> list[tuple[UUID, int]]:
        """(aggregate id, version) of each event the command recorded."""
        return [(UUID(aggregate_id), int(version)) for aggregate_id, version in self.events]

    @classmethod
    def receipt_event(
        cls,
        ctx: CommandContext,
        command_id: str,
        command_type: str,
        fingerprint: str,
        events: list[list[str]],
    ) -> CommandReceipt.Recorded:
        """The receipt's one event, made without building the aggregate around it.

        A batch makes one receipt per command and only stores it; this is the event
        ``CommandReceipt(...)`` would trigger, without the aggregate's construction.
        """
        # The event classes are dataclasses made at run time, so their fields are passed
        # as a mapping the type checker does not try to match.
        fields: dict[str, Any] = {
            "originator_id": cls.create_id(command_id),
            "originator_version": cls.INITIAL_VERSION,
            "timestamp": cls.Recorded.create_timestamp(),
            "originator_topic": _RECEIPT_TOPIC,
            "ctx": ctx,
            "command_id": command_id,
            "command_type": command_type,
            "fingerprint": fingerprint,
            "events": events,
        }
        return cls.Recorded(**fields)

    @classmethod
    def refusal_event(
        cls,
        ctx: CommandContext,
        command_id: str,
        command_type: str,
        fingerprint: str,
        error: DomainError,
    ) -> CommandReceipt.Refused:
        """The receipt of a command refused for a rule, made like ``receipt_event``."""
        fields: dict[str, Any] = {
            "originator_id": cls.create_id(command_id),
            "originator_version": cls.INITIAL_VERSION,
            "timestamp": cls.Refused.create_timestamp(),
            "originator_topic": _RECEIPT_TOPIC,
            "ctx": ctx,
            "command_id": command_id,
            "command_type": command_type,
            "fingerprint": fingerprint,
            "events": [],
            "error_code": error.code,
            "error_message": error.message,
        }
        return cls.Refused(**fields)

    def check_same_command(self, command: CommandBase) -> None:
        """Refuses a different command sent under this receipt's id."""
        if fingerprint_of(command) != self.fingerprint:
            what = "refused" if self.error_code is not None else "recorded"
            raise CommandIdReused(
                f"command id {self.command_id} already {what} a different "
                f"{self.command_type} command; use a new id for a new command"
            )


_RECEIPT_TOPIC = get_topic(CommandReceipt)
