"""Rebuilding views from the log: into fresh tables swapped in at once, into a separate
snapshot as of a past position or time, and checked against the live views by digest.

A rebuild writes a second table set (``<table>__rb``) without secondary indexes, adds the
indexes once the bulk is in, catches up with whatever was recorded meanwhile, and then,
in one transaction, drops the live tables and renames the new ones: a reader sees the old
view or the new one, never half of one. ``--check`` builds a third set (``__ck``) up to the
live views' position and compares row by row; ``--upto``/``--as-of`` build a separate
SQLite file that a reader can point the listing commands at. Each of these runs with
fewer garbage collections (see ``collection``).
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from eventsourcing.application import Application
from eventsourcing.persistence import Notification

from sferum_audit.application.garbage_collection import fewer_collections
from sferum_audit.projections.database import ViewsDatabase, quote
from sferum_audit.projections.registry import resolve_names
from sferum_audit.projections.runner import Progress, ViewRunner
from sferum_audit.projections.tables import TableSet, TableSpec, specs_of
from sferum_audit.projections.tracking import ensure_rows, read_positions, write_positions

BUILD_SUFFIX = "__rb"
CHECK_SUFFIX = "__ck"


@dataclass
class ReplayResult:
    """What a rebuild did: up to which position, how many events, how long, the digests."""

    place: str
    position: int
    events: int
    seconds: float
    digests: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Difference:
    """The first row where a rebuilt view and the live view disagree."""

    view: str
    table: str
    key: tuple[Any, ...]
    live: tuple[Any, ...] | None
    rebuilt: tuple[Any, ...] | None

    def describe(self) -> str:
        return (
            f"view {self.view}: table {self.table}, row {self.key!r}: "
            f"live {self.live!r} != rebuilt {self.rebuilt!r}"
        )


@dataclass
class CheckResult:
    position: int
    differences: list[Difference]
    digests: dict[str, str]

    @property
    def ok(self) -> bool:
        return not self.differences


# -- digests and row order ----------------------------------------------------------------------


def ordered_rows(
    db: ViewsDatabase, conn: sa.Connection, tables: TableSet, spec: TableSpec
) -> Iterator[tuple[Any, ...]]:
    """The table's rows in primary-key order (byte order on both databases)."""
    for rows in row_batches(db, conn, tables, spec):
        yield from rows


def row_batches(
    db: ViewsDatabase, conn: sa.Connection, tables: TableSet, spec: TableSpec, size: int = 5000
) -> Iterator[list[tuple[Any, ...]]]:
    """``ordered_rows`` in lists of up to ``size`` rows."""
    columns = ", ".join(quote(c) for c in spec.column_names)
    order = ", ".join(db.order_by(c, spec.is_text(c)) for c in spec.key)
    name = quote(tables.name(spec.name))
    sql = f"SELECT {columns} FROM {name} ORDER BY {order}"  # noqa: S608
    if db.is_sqlite:  # the driver's own tuples, in the connection's read transaction
        if not conn.in_transaction():
            conn.begin()
        driver: Any = conn.connection.dbapi_connection
        cursor = driver.cursor()
        try:
            cursor.execute(sql)
            while rows := cursor.fetchmany(size):
                yield rows
        finally:
            cursor.close()
        return
    # PostgreSQL: a server-side cursor of the driver's own tuples, in the read transaction
    from psycopg.rows import tuple_row

    if not conn.in_transaction():
        conn.begin()
    driver = conn.connection.dbapi_connection
    with driver.cursor(name=f"rows_{uuid.uuid4().hex}", row_factory=tuple_row) as server:
        server.itersize = size
        server.execute(sql)
        while rows := server.fetchmany(size):
            yield rows


def digest_view(db: ViewsDatabase, tables: TableSet, view: str) -> str:
    """SHA-256 over every row of the view's tables, tables by name, rows by key."""
    sha = hashlib.sha256()
    with db.reading() as conn:
        for spec in sorted(specs_of(view), key=lambda s: s.name):
            sha.update(f"#{spec.name}\n".encode())
            for rows in row_batches(db, conn, tables, spec):
                # str, int and None only: stable text, one line a row
                sha.update(("\n".join(map(repr, rows)) + "\n").encode())
    return sha.hexdigest()


def digests(db: ViewsDatabase, tables: TableSet, views: Sequence[str]) -> dict[str, str]:
    return {view: digest_view(db, tables, view) for view in views}


# -- full rebuild with swap ---------------------------------------------------------------------


def _fresh_set(db: ViewsDatabase, names: list[str], suffix: str) -> TableSet:
    tables = TableSet(suffix, uuid.uuid4().hex[:8])
    with db.writing() as conn:
        tables.drop(conn, names)
        tables.tracking.drop(conn, checkfirst=True)
        tables.create(conn, names, with_indexes=False)
        ensure_rows(db, conn, tables, names)
    return tables


def _drop_set(db: ViewsDatabase, tables: TableSet, names: list[str]) -> None:
    with db.writing() as conn:
        tables.drop(conn, names)
        tables.tracking.drop(conn, checkfirst=True)


@fewer_collections()
def rebuild(
    app: Application[UUID],
    db: ViewsDatabase,
    views: Sequence[str] | None = None,
    *,
    progress: Progress | None = None,
    page_size: int = 2000,
    upto: int | None = None,
) -> ReplayResult:
    """Rebuilds ``views`` (default: all) from position 0 and swaps them in atomically
    (``upto``: stop there, for benchmarks; the live follower then goes on from it)."""
    names = resolve_names(list(views) if views else None)
    started = time.perf_counter()
    build = _fresh_set(db, names, BUILD_SUFFIX)
    runner = ViewRunner(app, db, names, tables=build, page_size=page_size)
    try:
        runner.catch_up(upto=upto, progress=progress)
        with db.writing() as conn:
            build.create_indexes(conn, names)
        if upto is None:
            runner.catch_up()  # what was recorded while the indexes were built
        position = swap(db, build, names)
    except BaseException:
        _drop_set(db, build, names)
        raise
    seconds = time.perf_counter() - started
    return ReplayResult(db.url, position, position, seconds, digests(db, db.live, names))


def swap(db: ViewsDatabase, build: TableSet, names: list[str]) -> int:
    """Replaces the live tables of ``names`` with the built ones in one transaction;
    returns the position the swapped-in views are at."""
    live = db.live
    with db.writing() as conn:
        live.tracking.create(conn, checkfirst=True)
        ensure_rows(db, conn, live, names)
        read_positions(db, conn, live, names, lock=True)  # waits for a follower's page
        built = read_positions(db, conn, build, names)
        for name in names:
            for spec in specs_of(name):
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS {quote(live.name(spec.name))}")
                conn.exec_driver_sql(
                    f"ALTER TABLE {quote(build.name(spec.name))} "
                    f"RENAME TO {quote(live.name(spec.name))}"
                )
        write_positions(db, conn, live, {name: built[name] for name in names})
        build.tracking.drop(conn)
    return min(built.values(), default=0)


# -- check --------------------------------------------------------------------------------------


@fewer_collections()
def check(
    app: Application[UUID],
    db: ViewsDatabase,
    views: Sequence[str] | None = None,
    *,
    progress: Progress | None = None,
    page_size: int = 2000,
) -> CheckResult:
    """Rebuilds ``views`` aside up to the live views' position and compares every row."""
    names = resolve_names(list(views) if views else None)
    live = ViewRunner(app, db, names, page_size=page_size)
    live.ensure_tables()
    live.catch_up()
    built = _fresh_set(db, names, CHECK_SUFFIX)
    try:
        for _attempt in range(10):
            target = live.positions()
            if len(set(target.values())) == 1:
                groups = [(names, next(iter(target.values())))]
            else:
                groups = [([name], target[name]) for name in names]
            for group, upto in groups:  # each view up to exactly the live view's position
                runner = ViewRunner(app, db, group, tables=built, page_size=page_size)
                runner.catch_up(upto=upto, progress=progress)
            with db.reading() as conn:
                if read_positions(db, conn, db.live, names) != target:
                    continue  # a follower moved the live views meanwhile: catch up again
                differences = _compare(db, conn, built, names)
            return CheckResult(
                min(target.values(), default=0), differences, digests(db, built, names)
            )
        raise RuntimeError("the live views kept moving; check again when the log is quieter")
    finally:
        _drop_set(db, built, names)


def _compare(
    db: ViewsDatabase, conn: sa.Connection, built: TableSet, names: list[str]
) -> list[Difference]:
    differences: list[Difference] = []
    for name in names:
        for spec in specs_of(name):
            difference = _first_difference(db, conn, built, name, spec)
            if difference is not None:
                differences.append(difference)
                break  # the first differing row of each view is enough to name it
    return differences


def _first_difference(
    db: ViewsDatabase, conn: sa.Connection, built: TableSet, view: str, spec: TableSpec
) -> Difference | None:
    key_at = [spec.column_names.index(c) for c in spec.key]
    with db.engine.connect() as other:
        live_rows = ordered_rows(db, conn, db.live, spec)
        built_rows = ordered_rows(db, other, built, spec)
        while True:
            live_row = next(live_rows, None)
            built_row = next(built_rows, None)
            if live_row is None and built_row is None:
                return None
            if live_row != built_row:
                some = live_row if live_row is not None else built_row
                assert some is not None
                key = tuple(some[i] for i in key_at)
                if live_row is not None and built_row is not None:
                    live_key = tuple(live_row[i] for i in key_at)
                    built_key = tuple(built_row[i] for i in key_at)
                    if live_key != built_key:
                        key = min(live_key, built_key)
                        live_row = live_row if live_key == key else None
                        built_row = built_row if built_key == key else None
                return Difference(view, spec.name, key, live_row, built_row)


# -- as of a past position ----------------------------------------------------------------------


def as_of_path(data_dir: Path, position: int) -> Path:
    return data_dir / f"views-asof-{position}.sqlite"


@fewer_collections()
def build_as_of(
    app: Application[UUID],
    path: Path,
    position: int,
    *,
    progress: Progress | None = None,
    page_size: int = 2000,
) -> ReplayResult:
    """Builds every view as it was at ``position`` into the SQLite file ``path`` (written
    aside and moved into place when complete)."""
    started = time.perf_counter()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    for leftover in (partial, Path(f"{partial}-wal"), Path(f"{partial}-shm")):
        leftover.unlink(missing_ok=True)
    db = ViewsDatabase.sqlite_file(partial)
    try:
        runner = ViewRunner(app, db, page_size=page_size)
        runner.ensure_tables(with_indexes=False)
        runner.catch_up(upto=position, progress=progress)
        with db.writing() as conn:
            db.live.create_indexes(conn, runner.names)
        result_digests = digests(db, db.live, runner.names)
        raw = db.engine.raw_connection()  # outside any transaction: a plain file after this
        try:
            cursor = raw.cursor()
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            cursor.execute("PRAGMA journal_mode=DELETE")
            cursor.close()
        finally:
            raw.close()
    finally:
        db.dispose()
    os.replace(partial, path)
    seconds = time.perf_counter() - started
    return ReplayResult(str(path), position, position, seconds, result_digests)


def position_at(
    app: Application[UUID], when: datetime, slack: timedelta = timedelta(minutes=1)
) -> int:
    """The position of the last event recorded at or before ``when`` (0 if none).

    Recorded times grow along the log except where concurrent writers interleave (by
    less than a transaction's duration), so a binary search finds the boundary and a short
    scan past it, up to ``slack`` later, picks up any event recorded earlier but
    committed later.
    """
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    recorder = app.recorder
    head = int(recorder.max_notification_id() or 0)

    def recorded(position: int) -> datetime:
        return _recorded_at(app, recorder.select_notifications(position, 1)[0])

    low, high = 0, head  # invariant: recorded(low) <= when (or low == 0); answer <= high
    while low < high:
        middle = (low + high + 1) // 2
        if recorded(middle) <= when:
            low = middle
        else:
            high = middle - 1
    found = low
    position = low + 1
    while position <= head:
        page = recorder.select_notifications(position, 500)
        if not page:
            break
        for notification in page:
            stamp = _recorded_at(app, notification)
            if stamp <= when:
                found = notification.id
            elif stamp > when + slack:
                return found
        position = page[-1].id + 1
    return found


def _recorded_at(app: Application[UUID], notification: Notification) -> datetime:
    event: Any = app.mapper.to_domain_event(notification)
    stamp: datetime = event.timestamp
    return stamp


# -- as of a past time: when things happened, or when they were recorded ------------------------


@dataclass(frozen=True)
class OccurredCut:
    """Where the log is cut for "as it was at ``when``", by when the acts happened.

    ``position``: the last event that happened at or before ``when`` (0: none did), so the
    snapshot holds every act that happened by then. ``later_inside``: events before that
    position that happened after ``when`` (recorded out of order; they are in the
    snapshot too). ``first_occurred``: when the earliest act in the log happened."""

    when: datetime
    position: int
    later_inside: int
    first_occurred: datetime | None


def occurred_at_of(app: Application[UUID], notification: Notification) -> datetime | None:
    """When the act of a stored event happened (``None`` for bookkeeping without one)."""
    event: Any = app.mapper.to_domain_event(notification)
    context = getattr(event, "ctx", None)
    occurred: datetime | None = getattr(context, "occurred_at", None)
    if occurred is not None and occurred.tzinfo is None:
        occurred = occurred.replace(tzinfo=UTC)
    return occurred


def position_occurred_by(app: Application[UUID], when: datetime, page: int = 1000) -> OccurredCut:
    """Scans the log once for the cut described in ``OccurredCut``."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    recorder = app.recorder
    last = 0
    after: list[int] = []  # positions of acts after ``when``, up to now
    first: datetime | None = None
    start = 1
    while notifications := recorder.select_notifications(start, page):
        for notification in notifications:
            if notification.topic.endswith(":CommandReceipt.Recorded"):
                continue  # bookkeeping written after its batch: no act of its own
            occurred = occurred_at_of(app, notification)
            if occurred is None:
                continue
            first = occurred if first is None else min(first, occurred)
            if occurred <= when:
                last = notification.id
            else:
                after.append(notification.id)
        start = notifications[-1].id + 1
    return OccurredCut(when, last, sum(1 for p in after if p < last), first)


def first_recorded(app: Application[UUID]) -> datetime | None:
    """When the first event of the log was recorded (``None`` for an empty log)."""
    page = app.recorder.select_notifications(1, 1)
    return _recorded_at(app, page[0]) if page else None
