"""The views database: an engine with the right pragmas, locks and SQL dialect helpers.

SQLite gets WAL, ``synchronous=NORMAL`` and a busy timeout; a writer opens its transaction
with ``BEGIN IMMEDIATE`` so that reading the tracking positions and writing the rows is one
atomic step even with a second process following the same log. PostgreSQL gets the
configured schema as its ``search_path`` and locks the tracking rows ``FOR UPDATE``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from sferum_audit.application.settings import Settings
from sferum_audit.application.store import (
    private_sqlite_file,
    sqlite_read_only_uri,
    use_write_ahead_log,
)
from sferum_audit.projections.settings import ViewsSettings, views_location
from sferum_audit.projections.tables import TableSet

CommitWith = Callable[[Callable[[], None], Callable[[BaseException | None], None]], None]

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA busy_timeout=30000",
    "PRAGMA cache_size=-8000",  # 8 MiB: memory must not grow with the views
    "PRAGMA temp_store=FILE",
    # Freed cells and pages are overwritten with zeros: a row or a dropped table that held
    # an erased person's name leaves nothing readable in the file (not left to how the
    # system's SQLite was built).
    "PRAGMA secure_delete=ON",
    "PRAGMA wal_autocheckpoint=10000",  # ~40 MB of WAL between checkpoints: fewer fsyncs
)


def quote(name: str) -> str:
    """An identifier quoted for both SQLite and PostgreSQL (names here are our own)."""
    return '"' + name.replace('"', '""') + '"'


class ViewsDatabase:
    """Where the views' tables are, and how to write to them safely and fast."""

    def __init__(self, url: str, schema: str | None = None, *, read_only: bool = False) -> None:
        self.url = url
        self.schema = schema
        self.read_only = read_only
        options: dict[str, Any] = {}
        if url.startswith("postgresql") and schema:
            options["connect_args"] = {"options": f"-csearch_path={schema}"}
        if url.startswith("postgresql") and read_only:
            previous = options.get("connect_args", {}).get("options", "")
            read_only_option = "-c default_transaction_read_only=on"
            options["connect_args"] = {"options": f"{previous} {read_only_option}".strip()}
        if url.startswith("sqlite") and not read_only:
            path = sa.make_url(url).database
            if path and path != ":memory:":
                Path(path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                private_sqlite_file(Path(path))  # 0600, and its -wal/-shm with it
                use_write_ahead_log(Path(path))  # before several connections race to switch
        self.engine = sa.create_engine(url, **options)
        self.dialect = self.engine.dialect.name
        if self.is_sqlite:
            connect = _sqlite_connect_read_only if read_only else _sqlite_connect
            event.listen(self.engine, "connect", connect)
            event.listen(self.engine, "begin", _sqlite_begin)
        self.live = TableSet()

    @classmethod
    def from_settings(cls, settings: Settings, views: ViewsSettings | None = None) -> ViewsDatabase:
        url, schema = views_location(settings, views)
        return cls(url, schema)

    @classmethod
    def sqlite_file(cls, path: Path, *, read_only: bool = False) -> ViewsDatabase:
        """Views in the SQLite file ``path``; ``read_only``: opened with ``mode=ro``."""
        if read_only:
            return cls(f"sqlite:///{sqlite_read_only_uri(path)}&uri=true", read_only=True)
        return cls(f"sqlite:///{path}")

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @property
    def placeholder(self) -> str:
        return "?" if self.is_sqlite else "%s"

    def dispose(self) -> None:
        self.engine.dispose()

    @contextmanager
    def writing(self, *, commit_with: CommitWith | None = None) -> Iterator[sa.Connection]:
        """A write transaction that holds the write lock from its first statement.

        ``commit_with``: instead of committing here, hand the driver's ``commit`` and a
        function that settles the transaction afterwards (SQLAlchemy's bookkeeping, and
        the release of the connection) to this callable, e.g. ``BackgroundCommits.submit``.
        A failure inside the block still rolls back here."""
        conn = self.engine.connect()
        try:
            conn = conn.execution_options(sferum_write=True)
            transaction = conn.begin()
            try:
                yield conn
            except BaseException:
                transaction.rollback()
                raise
        except BaseException:
            conn.close()
            raise
        if commit_with is None:
            try:
                transaction.commit()
            finally:
                conn.close()
            return

        def settle(error: BaseException | None) -> None:
            try:
                if error is None:
                    transaction.commit()  # committed by the driver: only the bookkeeping
                else:
                    transaction.rollback()
            finally:
                conn.close()

        driver: Any = conn.connection.dbapi_connection
        commit_with(driver.commit, settle)

    @contextmanager
    def reading(self) -> Iterator[sa.Connection]:
        with self.engine.connect() as conn:
            yield conn

    def executemany(self, conn: sa.Connection, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Runs one statement for many parameter tuples through the driver's executemany,
        on the connection's own transaction (straight to the driver: a replay runs a
        dozen of these per page, and SQLAlchemy's per-statement work cost more than
        the smaller ones)."""
        if not rows:
            return
        if not conn.in_transaction():  # let SQLAlchemy begin it as it would (see _sqlite_begin)
            conn.exec_driver_sql(sql, list(rows))
            return
        driver: Any = conn.connection.dbapi_connection
        cursor = driver.cursor()
        try:
            cursor.executemany(sql, rows)
        finally:
            cursor.close()

    def insert_rows(
        self, conn: sa.Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        """Inserts many rows: ``executemany`` on SQLite, ``COPY`` on PostgreSQL."""
        if not rows:
            return
        cols = ", ".join(quote(c) for c in columns)
        if self.is_sqlite:
            marks = ", ".join("?" for _ in columns)
            self.executemany(conn, f"INSERT INTO {quote(table)} ({cols}) VALUES ({marks})", rows)  # noqa: S608
            return
        driver: Any = conn.connection.dbapi_connection
        with (
            driver.cursor() as cursor,
            cursor.copy(f"COPY {quote(table)} ({cols}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)

    def delete_keys(
        self,
        conn: sa.Connection,
        table: str,
        key: Sequence[tuple[str, str]],
        keys: Sequence[Sequence[Any]],
    ) -> None:
        """Deletes the rows under ``keys``; ``key`` names the key columns with their SQL
        types. PostgreSQL gets one statement over arrays instead of one per key."""
        if not keys:
            return
        if self.is_sqlite or len(keys) < 4:
            where = " AND ".join(f"{quote(c)}={self.placeholder}" for c, _ in key)
            self.executemany(conn, f"DELETE FROM {quote(table)} WHERE {where}", keys)  # noqa: S608
            return
        names = ", ".join(quote(c) for c, _ in key)
        arrays = ", ".join(f"%s::{kind}[]" for _, kind in key)
        columns = [list(column) for column in zip(*keys, strict=True)]
        conn.exec_driver_sql(
            f"DELETE FROM {quote(table)} WHERE ({names}) IN (SELECT * FROM unnest({arrays}))",  # noqa: S608
            tuple(columns),
        )

    def update_rows(
        self,
        conn: sa.Connection,
        table: str,
        key: Sequence[tuple[str, str]],
        changed: Sequence[tuple[str, str]],
        rows: Sequence[Sequence[Any]],
    ) -> None:
        """Sets the ``changed`` columns of the rows under each key; every row holds the
        new values, then the key. PostgreSQL gets one ``UPDATE ... FROM unnest(...)``."""
        if not rows:
            return
        if self.is_sqlite or len(rows) < 4:
            ph = self.placeholder
            sets = ", ".join(f"{quote(c)}={ph}" for c, _ in changed)
            where = " AND ".join(f"{quote(c)}={ph}" for c, _ in key)
            self.executemany(conn, f"UPDATE {quote(table)} SET {sets} WHERE {where}", rows)  # noqa: S608
            return
        both = [*changed, *key]
        arrays = ", ".join(f"%s::{kind}[]" for _, kind in both)
        aliases = ", ".join(f"v{i}" for i in range(len(both)))
        sets = ", ".join(f"{quote(c)}=v.v{i}" for i, (c, _) in enumerate(changed))
        where = " AND ".join(f"t.{quote(c)}=v.v{len(changed) + i}" for i, (c, _) in enumerate(key))
        columns = [list(column) for column in zip(*rows, strict=True)]
        conn.exec_driver_sql(
            f"UPDATE {quote(table)} AS t SET {sets} "  # noqa: S608
            f"FROM unnest({arrays}) AS v({aliases}) WHERE {where}",
            tuple(columns),
        )

    def order_by(self, column: str, is_text: bool) -> str:
        """A byte-wise ORDER BY term, the same on both databases."""
        if is_text and not self.is_sqlite:
            return f'{quote(column)} COLLATE "C"'
        return quote(column)


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # transactions are begun explicitly below
    cursor = dbapi_connection.cursor()
    for pragma in SQLITE_PRAGMAS:
        cursor.execute(pragma)
    cursor.close()


def _sqlite_connect_read_only(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA query_only=ON")
    cursor.close()


def _sqlite_begin(conn: sa.Connection) -> None:
    if conn.get_execution_options().get("sferum_write"):
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql("BEGIN")
