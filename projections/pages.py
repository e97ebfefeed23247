"""Reading the log for the views: its pages as plain rows, and ahead in a thread.

A page is the next ``page_size`` events of the views' topics, as tuples of their columns
(position, originator id, version, topic, state): one plain query on SQLite and on
PostgreSQL, the same filter, order and limit as the recorder's ``select_notifications``
(which other stores use), without a dict and a ``Notification`` per row.

On PostgreSQL, reading a page is mostly waiting for the server (the query, and a
megabyte or so of rows over the socket), and the driver waits without the GIL and then
makes the page's rows in one call. So a thread reads the next pages while the views
apply the current one, and the server works meanwhile. (On SQLite the driver gives the
GIL up and takes it back for every row, so two busy threads would mostly wait for each
other: there the pages are read in turn.) The pages come out in order, exactly as reading
them one by one would give them; at most ``depth`` pages wait, so memory stays bounded.
The thread only reads: every view still writes its rows and its position in one
transaction, in the caller's thread.
"""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, Final, TypeVar
from uuid import UUID

from eventsourcing.persistence import Recorder
from eventsourcing.sqlite import SQLiteApplicationRecorder

T = TypeVar("T")
Row = tuple[int, UUID | str, int, str, bytes]  # position, originator id, version, topic, state

_ITEM: Final = 0
_END: Final = 1
_ERROR: Final = 2


@contextmanager
def read_ahead(pages: Iterator[T], depth: int = 2) -> Iterator[Iterator[T]]:
    """``pages``, produced by a thread up to ``depth`` ahead of the consumer. Leaving the
    block (done, stopped early, or failed) stops the thread and waits for it; an error in
    the thread is raised in the consumer where its page would have come."""
    handover: queue.Queue[tuple[int, Any]] = queue.Queue(maxsize=depth)
    stopped = threading.Event()

    def put(item: tuple[int, Any]) -> bool:
        while not stopped.is_set():
            try:
                handover.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for page in pages:
                if not put((_ITEM, page)):
                    return
            put((_END, None))
        except BaseException as error:  # handed to the consumer, raised there
            put((_ERROR, error))

    def consume() -> Iterator[T]:
        while True:
            kind, value = handover.get()
            if kind == _END:
                return
            if kind == _ERROR:
                raise value
            yield value

    thread = threading.Thread(target=produce, name="sferum-audit-read-ahead", daemon=True)
    thread.start()
    try:
        yield consume()
    finally:
        stopped.set()
        thread.join()


class PageReader:
    """Reads the log in pages of the given topics, for one runner."""

    def __init__(self, recorder: Recorder, topics: Sequence[str], page_size: int) -> None:
        self.recorder = recorder
        self.topics = tuple(topics)
        self.page_size = page_size
        self._ids: dict[str, UUID] = {}  # stored originator ids (SQLite), parsed once (bounded)

    def pages(self, low: int, stop: int) -> AbstractContextManager[Iterator[tuple[list[Row], int]]]:
        """The pages after ``low`` up to ``stop``, each with the position it covers to
        (its last row's, or ``stop`` for the last page); read ahead in a thread on
        PostgreSQL when there is more than a page to read."""
        pages = self._pages(low, stop)
        if stop - low > self.page_size and self.on_postgres():
            return read_ahead(pages)
        return nullcontext(pages)

    def _pages(self, low: int, stop: int) -> Iterator[tuple[list[Row], int]]:
        while low < stop:
            rows = self.read(low + 1, stop)
            covered = rows[-1][0] if len(rows) == self.page_size else stop
            yield rows, covered
            low = covered

    def on_postgres(self) -> bool:
        postgres = sys.modules.get("eventsourcing.postgres")  # imported only if in use
        return postgres is not None and isinstance(
            self.recorder, postgres.PostgresApplicationRecorder
        )

    def read(self, start: int, stop: int) -> list[Row]:
        """The page of rows from position ``start`` (at most ``page_size``, none past
        ``stop``)."""
        recorder: Any = self.recorder
        if type(recorder) is SQLiteApplicationRecorder:
            return self._read_sqlite(recorder, start, stop)
        if self.on_postgres():
            return self._read_postgres(recorder, start, stop)
        return [
            (n.id, n.originator_id, n.originator_version, n.topic, n.state)
            for n in recorder.select_notifications(
                start, self.page_size, stop=stop, topics=self.topics
            )
        ]

    def _read_sqlite(self, recorder: SQLiteApplicationRecorder, start: int, stop: int) -> list[Row]:
        marks = ",".join("?" * len(self.topics))
        statement = (
            "SELECT rowid, originator_id, originator_version, topic, state "  # noqa: S608
            f"FROM {recorder.events_table_name} WHERE rowid>=? AND rowid<=? "
            f"AND topic IN ({marks}) ORDER BY rowid LIMIT ?"
        )
        with recorder.datastore.transaction(commit=False) as cursor:
            cursor.execute(statement, (start, stop, *self.topics, self.page_size))
            fetched = cursor.fetchall()
        ids = self._ids
        if len(ids) > 50_000:
            ids.clear()
        rows: list[Row] = []
        append = rows.append
        for position, text, version, topic_name, state in fetched:
            originator = ids.get(text)
            if originator is None:
                originator = ids[text] = UUID(text)
            append((position, originator, version, topic_name, state))
        return rows

    def _read_postgres(self, recorder: Any, start: int, stop: int) -> list[Row]:
        """Ids come from the driver as ``UUID``, the state as ``bytes``. The driver's
        modules are imported here, so that a process on SQLite does not carry them
        (about 9 MiB)."""
        from psycopg.rows import tuple_row
        from psycopg.sql import SQL, Identifier

        statement = SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state "
            "FROM {schema}.{table} WHERE notification_id>=%s AND notification_id<=%s "
            "AND topic = ANY(%s) ORDER BY notification_id LIMIT %s"
        ).format(
            schema=Identifier(recorder.datastore.schema),
            table=Identifier(recorder.events_table_name),
        )
        with (
            recorder.datastore.get_connection() as conn,
            conn.cursor(row_factory=tuple_row) as cursor,
        ):
            cursor.execute(
                statement, (start, stop, list(self.topics), self.page_size), prepare=True
            )
            rows: list[Row] = cursor.fetchall()
        return rows
