"""Pending writes of one page of events, reduced to their net effect and written in bulk.

A view never reads its own tables while it handles events: each event becomes a write to a
``TableBuffer`` (insert a new row, replace or delete a row, update some columns by key).
Writes to the same key within the page fold into one final row, so the page is written
with one ``executemany`` per statement shape. A rare write that is not by key (``raw``)
cuts the page into segments written in order, so the net effect always equals applying
the events one by one.
"""

from __future__ import annotations

from collections.abc import Hashable
from operator import itemgetter
from typing import Any

import sqlalchemy as sa

from sferum_audit.projections.database import ViewsDatabase
from sferum_audit.projections.tables import TableSet, TableSpec

Row = dict[str, Any]


class TableBuffer:
    """The net pending effect on one table, keyed by its primary key."""

    __slots__ = ("_maybe_stored", "_rows", "_updates", "spec")

    def __init__(self, spec: TableSpec) -> None:
        self.spec = spec
        self._rows: dict[Hashable, Row | None] = {}  # final row, or None when deleted
        self._maybe_stored: set[Hashable] = set()  # keys whose old row must be deleted
        self._updates: dict[Hashable, Row] = {}  # changes to rows only the database holds

    def insert(self, key: Hashable, row: Row) -> None:
        """A row whose key is free (the event that creates it): no delete is needed."""
        self._rows[key] = row

    def put(self, key: Hashable, row: Row) -> None:
        """A whole row that replaces whatever the key held."""
        if key not in self._rows:
            self._maybe_stored.add(key)
        self._rows[key] = row

    def delete(self, key: Hashable) -> None:
        if key not in self._rows:
            self._maybe_stored.add(key)
        self._rows[key] = None

    def update(self, key: Hashable, changes: Row) -> None:
        """Changes some columns of the row under ``key``, if there is one."""
        if key in self._rows:
            row = self._rows[key]
            if row is not None:
                row.update(changes)
            return
        pending = self._updates.get(key)
        if pending is None:
            self._updates[key] = dict(changes)
        else:
            pending.update(changes)

    def __bool__(self) -> bool:
        return bool(self._rows or self._updates)

    def flush(self, db: ViewsDatabase, conn: sa.Connection, tables: TableSet) -> int:
        """Writes the net effect: updates, then deletes, then inserts; returns rows written."""
        name = tables.name(self.spec.name)
        key = [(c, _sql_type(self.spec, c)) for c in self.spec.key]
        written = 0
        by_shape: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
        for k, changes in self._updates.items():
            shape = tuple(sorted(changes))
            values = tuple(changes[c] for c in shape)
            by_shape.setdefault(shape, []).append(values + _key_tuple(k))
        for shape, params in by_shape.items():
            changed = [(c, _sql_type(self.spec, c)) for c in shape]
            db.update_rows(conn, name, key, changed, params)
            written += len(params)
        if self._maybe_stored:
            doomed = [_key_tuple(k) for k in self._maybe_stored]
            db.delete_keys(conn, name, key, doomed)
            written += len(doomed)
        columns = self.spec.column_names
        getter = itemgetter(*columns)
        rows = [getter(row) for row in self._rows.values() if row is not None]
        db.insert_rows(conn, name, columns, rows)
        return written + len(rows)


def _sql_type(spec: TableSpec, column: str) -> str:
    return "text" if spec.is_text(column) else "bigint"


def _key_tuple(key: Hashable) -> tuple[Any, ...]:
    return key if isinstance(key, tuple) else (key,)


class AppendBuffer:
    """Rows of an append-only table (one row per event, keyed by the event's position)."""

    __slots__ = ("rows", "spec")

    def __init__(self, spec: TableSpec) -> None:
        self.spec = spec
        self.rows: list[tuple[Any, ...]] = []

    def __bool__(self) -> bool:
        return bool(self.rows)

    def flush(self, db: ViewsDatabase, conn: sa.Connection, tables: TableSet) -> int:
        db.insert_rows(conn, tables.name(self.spec.name), self.spec.column_names, self.rows)
        return len(self.rows)
