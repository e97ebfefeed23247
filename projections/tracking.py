"""Each view's position in the global log, stored beside its rows in the views database.

The position is written in the same transaction as the rows it accounts for, so a view is
always exactly at its position: events at or before it are skipped when delivered again.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from sferum_audit.projections.database import ViewsDatabase, quote
from sferum_audit.projections.tables import TableSet


def ensure_rows(
    db: ViewsDatabase, conn: sa.Connection, tables: TableSet, views: Iterable[str]
) -> None:
    """Adds a position 0 for each view that has none yet."""
    known = read_positions(db, conn, tables, views)
    name = quote(tables.tracking.name)
    missing = [(view, 0) for view in views if view not in known]
    db.executemany(
        conn,
        f'INSERT INTO {name} ("view", "position") VALUES ({db.placeholder}, {db.placeholder})',  # noqa: S608
        missing,
    )


def read_positions(
    db: ViewsDatabase,
    conn: sa.Connection,
    tables: TableSet,
    views: Iterable[str],
    *,
    lock: bool = False,
) -> dict[str, int]:
    """The positions of ``views`` (missing ones are absent); ``lock`` holds them (PostgreSQL)."""
    wanted = list(views)
    if not wanted:
        return {}
    marks = ", ".join(db.placeholder for _ in wanted)
    name = quote(tables.tracking.name)
    sql = f'SELECT "view", "position" FROM {name} WHERE "view" IN ({marks})'  # noqa: S608
    if lock and not db.is_sqlite:
        sql += " FOR UPDATE"
    return {str(view): int(pos) for view, pos in conn.exec_driver_sql(sql, tuple(wanted))}


def write_positions(
    db: ViewsDatabase, conn: sa.Connection, tables: TableSet, positions: dict[str, int]
) -> None:
    name = quote(tables.tracking.name)
    ph = db.placeholder
    db.executemany(
        conn,
        f'UPDATE {name} SET "position"={ph} WHERE "view"={ph}',  # noqa: S608
        [(pos, view) for view, pos in positions.items()],
    )
