"""The receipt of a recorded command: what makes commands idempotent by ``command_id``.

A receipt is saved in the same transaction as the events the command caused. A second
command with the same id finds the receipt and gets the first result back; two at once
conflict on the receipt's version and the loser is retried, then finds it.
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import event

from sferum_audit.domain.base import AuditedAggregate, stable_id
from sferum_audit.domain.context import CommandContext


class CommandReceipt(AuditedAggregate):
    """Which events (aggregate id, version) one command recorded."""

    @staticmethod
    def create_id(command_id: str) -> UUID:
        return stable_id("command", command_id)

    @event("Recorded")
    def __init__(
        self, ctx: CommandContext, command_id: str, command_type: str, events: list[list[str]]
    ) -> None:
        self.command_id = command_id
        self.command_type = command_type
        self.events = [(UUID(aggregate_id), int(version)) for aggregate_id, version in events]
