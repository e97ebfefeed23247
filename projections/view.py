"""What every view is: handlers by event topic that fill write buffers, flushed per page.

A view handles decoded domain events in log order and never reads its tables while doing
so (see ``buffer``); the runner flushes every view's buffers and its tracking position in
one transaction. Nothing here looks at the wall clock: the same log gives the same rows.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar, Final

import sqlalchemy as sa

from sferum_audit.domain.personal_data import ERASED
from sferum_audit.projections.buffer import AppendBuffer, TableBuffer
from sferum_audit.projections.database import ViewsDatabase
from sferum_audit.projections.tables import TableSet, TableSpec, specs_of

Handler = Callable[[Any, int], None]

ERASED_TEXT: Final = ERASED


def topic(cls: type, event_name: str) -> str:
    """The stored topic of ``cls.<event_name>``; fails at import if the event is renamed."""
    event_class = getattr(cls, event_name)
    return f"{event_class.__module__}:{event_class.__qualname__}"


def iso(value: datetime | str | None) -> str | None:
    """A time as sortable ISO-8601 text in UTC with microseconds (text from the fast
    decoder is canonical already)."""
    if value is None or type(value) is str:
        return value
    assert isinstance(value, datetime)
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(timespec="microseconds")


def canonical_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


class RawStatement:
    """A write that is not by key; ``{table}`` names in the template are filled per set."""

    __slots__ = ("params", "template")

    def __init__(self, template: str, params: tuple[Any, ...]) -> None:
        self.template = template
        self.params = params

    def run(self, db: ViewsDatabase, conn: sa.Connection, tables: TableSet) -> None:
        names = {spec_name: f'"{tables.name(spec_name)}"' for spec_name in tables.tables}
        sql = self.template.format(ph=db.placeholder, **names)
        conn.exec_driver_sql(sql, self.params)


class View:
    """Base of the views; subclasses name themselves and route topics to handlers."""

    name: ClassVar[str]
    append_only: ClassVar[frozenset[str]] = frozenset()

    def __init__(self) -> None:
        self._done: list[tuple[list[TableBuffer | AppendBuffer], RawStatement]] = []
        self._buffers: list[TableBuffer | AppendBuffer] = []
        self._new_segment()

    @classmethod
    def specs(cls) -> tuple[TableSpec, ...]:
        return specs_of(cls.name)

    def routes(self) -> dict[str, Handler]:
        """Event topic -> handler; the runner skips every other topic for this view."""
        raise NotImplementedError

    # -- buffers ------------------------------------------------------------------------------

    def _new_segment(self) -> None:
        self._buffers = []
        for spec in self.specs():
            buffer: TableBuffer | AppendBuffer = (
                AppendBuffer(spec) if spec.name in self.append_only else TableBuffer(spec)
            )
            self._buffers.append(buffer)
            setattr(self, spec.name, buffer)

    def raw(self, template: str, *params: Any) -> None:
        """Queues a statement that must run after everything buffered so far."""
        self._done.append((self._buffers, RawStatement(template, params)))
        self._new_segment()

    def flush(self, db: ViewsDatabase, conn: sa.Connection, tables: TableSet) -> int:
        """Writes everything buffered, in order; returns how many row writes that was."""
        written = 0
        for buffers, statement in self._done:
            for buffer in buffers:
                written += buffer.flush(db, conn, tables)
            statement.run(db, conn, tables)
        for buffer in self._buffers:
            written += buffer.flush(db, conn, tables)
        self.discard()
        return written

    def discard(self) -> None:
        """Forgets the buffered writes (after a flush, or when the transaction failed)."""
        self._done = []
        self._new_segment()
