"""The aggregates one batch of commands reads and changes, saved together at the end.

Commands of a batch see each other's effects. A command that breaks a rule is undone
alone: aggregates it created are dropped, and if it had already changed a loaded
aggregate (the domain checks before it acts, so this should not happen) the batch is
marked dirty and the service rebuilds it without that command.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application

from sferum_audit.application.errors import AlreadyRecorded, UnknownEntity
from sferum_audit.domain.base import AuditedAggregate

A = TypeVar("A", bound=AuditedAggregate)


class UnitOfWork:
    """A working set of aggregates keyed by id, with per-command undo."""

    def __init__(self, app: Application[UUID]) -> None:
        self._app = app
        self._aggregates: dict[UUID, AuditedAggregate] = {}
        self._missing: set[UUID] = set()
        self._versions_before: dict[UUID, int] = {}
        self._created: list[UUID] = []
        self.dirty = False

    # -- reading ------------------------------------------------------------------------------

    def find(self, cls: type[A], aggregate_id: UUID) -> A | None:
        """The aggregate if it was recorded (or created in this batch), else ``None``."""
        aggregate = self._aggregates.get(aggregate_id)
        if aggregate is None and aggregate_id not in self._missing:
            try:
                aggregate = self._app.repository.get(aggregate_id)
            except AggregateNotFoundError:
                self._missing.add(aggregate_id)
                return None
            self._aggregates[aggregate_id] = aggregate
        if aggregate is None:
            return None
        self._versions_before.setdefault(aggregate_id, aggregate.version)
        if not isinstance(aggregate, cls):
            return None
        return aggregate

    def get(self, cls: type[A], aggregate_id: UUID, kind: str, key: str) -> A:
        """The aggregate, or ``UnknownEntity`` naming what was asked for."""
        aggregate = self.find(cls, aggregate_id)
        if aggregate is None:
            raise UnknownEntity(kind, key)
        return aggregate

    def check_absent(self, cls: type[A], aggregate_id: UUID, kind: str, key: str) -> None:
        if self.find(cls, aggregate_id) is not None:
            raise AlreadyRecorded(kind, key)

    # -- writing ------------------------------------------------------------------------------

    def add(self, aggregate: AuditedAggregate) -> None:
        """A new aggregate created by the current command."""
        self._aggregates[aggregate.id] = aggregate
        self._missing.discard(aggregate.id)
        self._created.append(aggregate.id)
        self._versions_before[aggregate.id] = 0

    def begin_command(self) -> None:
        self._versions_before = {}
        self._created = []

    def changes_of_command(self) -> list[tuple[UUID, int]]:
        """(aggregate id, version) of every event the current command triggered."""
        refs: list[tuple[UUID, int]] = []
        for aggregate_id, before in self._versions_before.items():
            after = self._aggregates[aggregate_id].version
            refs.extend((aggregate_id, version) for version in range(before + 1, after + 1))
        return refs

    def undo_command(self) -> None:
        """Forgets what the failed current command did."""
        for aggregate_id in self._created:
            self._aggregates.pop(aggregate_id, None)
            self._missing.add(aggregate_id)
        created = set(self._created)
        for aggregate_id, before in self._versions_before.items():
            if aggregate_id not in created and self._aggregates[aggregate_id].version != before:
                self.dirty = True
        self._versions_before = {}
        self._created = []

    def aggregates(self) -> Iterator[AuditedAggregate]:
        return iter(self._aggregates.values())
