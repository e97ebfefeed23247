"""Reading the stored event records, in global order, page by page, as they are stored.

The sealer and the verifier need the raw rows (position, originator id, version, topic,
stored bytes), never decoded events, and they need them fast. The readers here query
``eventsourcing``'s tables directly (SQLite ``stored_events`` by ``rowid``; PostgreSQL
``<schema>.<app>_events`` by ``notification_id``); any other recorder is read through its
``select_notifications``. Pages are keyset-paginated (``position > after``), so a gap in
the positions is seen as a gap, never papered over.
"""

from __future__ import annotations

import queue
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext, suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from eventsourcing.postgres import PostgresApplicationRecorder

from sferum_audit.integrity.leaf_encoding import RawRow

if TYPE_CHECKING:
    from eventsourcing.persistence import ApplicationRecorder

__all__ = ["ReaderSpec", "StoreReader", "open_reader", "pages"]


class StoreReader(Protocol):
    """Raw rows of one event store."""

    description: str
    spec: ReaderSpec | None
    """How another process opens the same store (``None``: it cannot)."""
    prefetch: bool
    """Whether reading the next page in a thread while this one is hashed pays off
    (a network round trip does; SQLite's memory-mapped reads do not)."""
    gapless: bool
    """Whether the store never skips a position (SQLite: a position is the next rowid), so
    a position without an event can only be a deletion; PostgreSQL's sequence skips the
    values of rolled-back inserts."""

    def head(self) -> int:
        """The highest position in the store (0 if it is empty)."""

    def rows(self, after: int, upto: int, limit: int) -> list[RawRow]:
        """Up to ``limit`` rows with ``after < position <= upto``, in position order."""

    def count_after(self, position: int) -> int:
        """How many rows have a position greater than ``position``."""

    def first_version_gap(self, after: int = 0) -> tuple[int, int] | None:
        """(position, version) of the first event after position ``after`` whose aggregate
        lacks the version before
        it, if any: aggregates are written version after version, so a missing version is
        a deleted event (a rolled-back insert leaves no such gap). ``None`` when there is no
        gap, or when the store cannot be asked."""

    def close(self) -> None:
        """Release the reader's connection."""


@dataclass(frozen=True)
class ReaderSpec:
    """Picklable directions to a store, for verifying in several processes at once."""

    kind: str
    table: str
    sqlite_path: str = ""
    schema: str = ""
    uuid_ids: bool = True
    connect_kwargs: dict[str, Any] = field(default_factory=dict)

    def open(self) -> StoreReader:
        """A reader of its own on the store."""
        if self.kind == "sqlite":
            return _SQLiteReader(self.sqlite_path, self.table)
        import psycopg

        conn = psycopg.connect(**self.connect_kwargs, autocommit=True)
        reader = _PostgresReader(
            lambda: nullcontext(conn), self.schema, self.table, self.uuid_ids, self
        )
        reader.on_close = conn.close
        return reader


class _SQLiteReader:
    def __init__(self, db_name: str, table: str) -> None:
        self.description = f"SQLite {db_name} table {table}"
        self.spec: ReaderSpec | None = ReaderSpec("sqlite", table, sqlite_path=db_name)
        self.prefetch = False
        self.gapless = True
        self._conn = sqlite3.connect(db_name, uri=True, check_same_thread=False)
        self._conn.isolation_level = None  # autocommit: each SELECT sees what is committed
        # Read the file through a memory map: no system call per page.
        self._conn.execute("PRAGMA mmap_size=1099511627776")
        self._select = (
            f"SELECT rowid, originator_id, originator_version, topic, state FROM {table} "  # noqa: S608  # the library's own table name
            "WHERE rowid > ? AND rowid <= ? ORDER BY rowid LIMIT ?"
        )
        self._head = f"SELECT MAX(rowid) FROM {table}"  # noqa: S608
        self._count = f"SELECT COUNT(*) FROM {table} WHERE rowid > ?"  # noqa: S608
        self._gap = (
            f"SELECT e.rowid, e.originator_version FROM {table} e "  # noqa: S608
            "WHERE e.rowid > ? AND e.originator_version > 1 AND NOT EXISTS (SELECT 1 FROM "
            f"{table} p WHERE p.originator_id = e.originator_id "
            "AND p.originator_version = e.originator_version - 1) ORDER BY e.rowid LIMIT 1"
        )

    def head(self) -> int:
        row = self._conn.execute(self._head).fetchone()
        return int(row[0] or 0)

    def rows(self, after: int, upto: int, limit: int) -> list[RawRow]:
        return self._conn.execute(self._select, (after, upto, limit)).fetchall()

    def count_after(self, position: int) -> int:
        return int(self._conn.execute(self._count, (position,)).fetchone()[0])

    def first_version_gap(self, after: int = 0) -> tuple[int, int] | None:
        row = self._conn.execute(self._gap, (after,)).fetchone()
        return (int(row[0]), int(row[1])) if row else None

    def close(self) -> None:
        self._conn.close()


class _PostgresReader:
    def __init__(
        self,
        connect: Callable[[], AbstractContextManager[Any]],
        schema: str,
        table: str,
        uuid_ids: bool,
        spec: ReaderSpec | None,
    ) -> None:
        from psycopg import sql
        from psycopg.rows import tuple_row

        self.description = f"PostgreSQL table {schema}.{table}"
        self.spec = spec
        self.prefetch = True
        self.gapless = False
        self.on_close: Callable[[], None] | None = None
        self._connect = connect
        self._row_factory = tuple_row
        oid = sql.SQL("uuid_send(originator_id)" if uuid_ids else "originator_id")
        name = sql.Identifier(schema, table)
        self._select = sql.SQL(
            "SELECT notification_id, {}, originator_version, topic, state FROM {} "
            "WHERE notification_id > %s AND notification_id <= %s "
            "ORDER BY notification_id LIMIT %s"
        ).format(oid, name)
        self._head = sql.SQL("SELECT MAX(notification_id) FROM {}").format(name)
        self._count = sql.SQL("SELECT COUNT(*) FROM {} WHERE notification_id > %s").format(name)
        self._gap = sql.SQL(
            "SELECT e.notification_id, e.originator_version FROM {} e "
            "WHERE e.notification_id > %s AND e.originator_version > 1 "
            "AND NOT EXISTS (SELECT 1 FROM {} p "
            "WHERE p.originator_id = e.originator_id "
            "AND p.originator_version = e.originator_version - 1) "
            "ORDER BY e.notification_id LIMIT 1"
        ).format(name, name)

    def _one(self, query: Any, params: tuple[Any, ...] = ()) -> int:
        with self._connect() as conn, conn.cursor(row_factory=self._row_factory) as cur:
            row = cur.execute(query, params).fetchone()
        return int(row[0] or 0) if row else 0

    def head(self) -> int:
        return self._one(self._head)

    def count_after(self, position: int) -> int:
        return self._one(self._count, (position,))

    def first_version_gap(self, after: int = 0) -> tuple[int, int] | None:
        with self._connect() as conn, conn.cursor(row_factory=self._row_factory) as cur:
            row = cur.execute(self._gap, (after,)).fetchone()
        return (int(row[0]), int(row[1])) if row else None

    def rows(self, after: int, upto: int, limit: int) -> list[RawRow]:
        # Ask for a window of `limit` positions at a time: a bounded index range, whatever
        # the planner's statistics say (an open range after a bulk load was planned as a
        # sort of the whole rest of the table, for every page). A window holds at most
        # `limit` rows; empty windows (a long gap) are skipped.
        with self._connect() as conn, conn.cursor(row_factory=self._row_factory) as cur:
            low = after
            while low < upto:
                high = min(upto, low + limit)
                cur.execute(self._select, (low, high, limit), binary=True)
                rows: list[RawRow] = cur.fetchall()
                if rows:
                    return rows
                low = high
        return []

    def close(self) -> None:
        if self.on_close is not None:
            self.on_close()


def _postgres_reader(recorder: Any) -> _PostgresReader:
    datastore = recorder.datastore
    schema = datastore.schema or "public"
    table = recorder.events_table_name
    uuid_ids = getattr(datastore, "originator_id_type", "uuid") == "uuid"
    kwargs = dict(getattr(datastore.pool, "kwargs", None) or {})
    kwargs.pop("row_factory", None)
    spec = ReaderSpec("postgres", table, schema=schema, uuid_ids=uuid_ids, connect_kwargs=kwargs)
    return _PostgresReader(
        datastore.get_connection, schema, table, uuid_ids, spec if kwargs else None
    )


class _NotificationReader:
    def __init__(self, recorder: ApplicationRecorder) -> None:
        self.description = f"{type(recorder).__name__} via select_notifications"
        self.spec: ReaderSpec | None = None
        self.prefetch = True
        self.gapless = type(recorder).__module__ in ("eventsourcing.sqlite", "eventsourcing.popo")
        self._recorder = recorder

    def head(self) -> int:
        return int(self._recorder.max_notification_id() or 0)

    def rows(self, after: int, upto: int, limit: int) -> list[RawRow]:
        if upto <= after:
            return []
        page = self._recorder.select_notifications(after + 1, limit, stop=upto)
        return [(n.id, n.originator_id, n.originator_version, n.topic, n.state) for n in page]

    def count_after(self, position: int) -> int:
        count = 0
        for page in pages(self, position, self.head(), 10_000, prefetch=False):
            count += len(page)
        return count

    def first_version_gap(self, after: int = 0) -> tuple[int, int] | None:
        """Not asked through the recorder's API."""
        return None

    def close(self) -> None:
        """Nothing of its own to release."""


def open_reader(recorder: ApplicationRecorder) -> StoreReader:
    """The fastest reader for ``recorder``'s store."""
    module = type(recorder).__module__
    datastore: Any = getattr(recorder, "datastore", None)
    if module == "eventsourcing.sqlite" and datastore is not None:
        pool = getattr(datastore, "pool", None)
        if pool is not None and not getattr(pool, "is_sqlite_memory_mode", True):
            table: str = getattr(recorder, "events_table_name", "stored_events")
            return _SQLiteReader(pool.db_name, table)
    if isinstance(recorder, PostgresApplicationRecorder) and datastore is not None:
        return _postgres_reader(recorder)
    return _NotificationReader(recorder)


_DONE = object()


def pages(
    reader: StoreReader, after: int, upto: int, page_size: int, *, prefetch: bool | None = None
) -> Iterator[list[RawRow]]:
    """Every row with ``after < position <= upto``, a page at a time, in position order.

    With ``prefetch`` (default: as the reader prefers) a thread reads the next page while
    the caller works on this one (the database drivers release the GIL while they wait).
    Each page starts after the last position of the previous one.
    """
    if not (reader.prefetch if prefetch is None else prefetch):
        position = after
        while position < upto:
            page = reader.rows(position, upto, page_size)
            if not page:
                return
            yield page
            position = page[-1][0]
        return

    handoff: queue.Queue[object] = queue.Queue(maxsize=2)
    stop = threading.Event()

    def produce() -> None:
        position = after
        try:
            while position < upto and not stop.is_set():
                page = reader.rows(position, upto, page_size)
                if not page:
                    break
                handoff.put(page)
                position = page[-1][0]
        except BaseException as exc:  # handed to the consumer, raised there
            handoff.put(exc)
            return
        handoff.put(_DONE)

    worker = threading.Thread(target=produce, name="integrity-store-reader", daemon=True)
    worker.start()
    try:
        while True:
            item = handoff.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]  # a page, put there by produce()
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            with suppress(queue.Empty):
                handoff.get(timeout=0.05)
        worker.join()
