"""Wiring of ``eventsourcing``'s own recorders: SQLite by default, PostgreSQL by URL."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterable
from contextlib import closing, suppress
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder, Transcoding

from sferum_audit.application.settings import Settings
from sferum_audit.domain.context import CommandContext

APPLICATION_NAME = "SferumAudit"

# PostgreSQL: the library's recorder with a faster batch insert (see postgres_recorder).
BINARY_INSERT_RECORDER = "sferum_audit.application.postgres_recorder:BinaryInsertRecorder"
# Both stores: the library's JSON format, encoded faster (see json_transcoder).
ORJSON_TRANSCODER = "sferum_audit.application.json_transcoder:OrjsonTranscoder"


# PostgreSQL for commands that only read: every transaction read-only.
READ_ONLY_POSTGRES_FACTORY = "sferum_audit.application.postgres_recorder:ReadOnlyPostgresFactory"


def may_write(path: Path) -> bool:
    """Whether this process may change ``path`` and create SQLite's side files beside it."""
    folder = path.parent
    target = path if path.exists() else folder
    return os.access(target, os.W_OK) and os.access(folder, os.W_OK)


def sqlite_read_only_uri(path: Path) -> str:
    """A SQLite URI that opens ``path`` for reading only (``mode=ro``: no write, no journal
    switch). In a folder this process may not write (an auditor's write-protected copy),
    a file without a pending write-ahead log is also opened ``immutable``, so SQLite
    needs no shared-memory file beside it and creates nothing."""
    uri = f"file:{path.resolve()}?mode=ro"
    wal = Path(f"{path}-wal")
    pending = wal.exists() and wal.stat().st_size > 0
    if not may_write(path) and not pending:
        uri += "&immutable=1"
    return uri


def persistence_environment(settings: Settings, *, read_only: bool = False) -> dict[str, str]:
    """The ``eventsourcing`` environment for the configured store; ``read_only``: for
    commands that only read (no tables created, SQLite opened with ``mode=ro``)."""
    env: dict[str, str] = {
        "AGGREGATE_CACHE_MAXSIZE": str(settings.aggregate_cache_size),
        "AGGREGATE_CACHE_FASTFORWARD": "y",
        "TRANSCODER_TOPIC": ORJSON_TRANSCODER,
    }
    if settings.aggregate_cache_size <= 0:
        env.pop("AGGREGATE_CACHE_MAXSIZE")
    if read_only:
        env["CREATE_TABLE"] = "n"
    if settings.database_url:
        os.umask(PRIVATE_UMASK)  # integrity evidence and erasure acts in the data folder
        env.update(postgres_environment(settings.database_url))
        env["APPLICATION_RECORDER_TOPIC"] = BINARY_INSERT_RECORDER
        env["POSTGRES_POOL_SIZE"] = str(settings.database_pool_size)
        if settings.database_schema:
            env["POSTGRES_SCHEMA"] = settings.database_schema
        if read_only:
            env["PERSISTENCE_MODULE"] = READ_ONLY_POSTGRES_FACTORY
    elif read_only:
        env["PERSISTENCE_MODULE"] = "eventsourcing.sqlite"
        env["SQLITE_DBNAME"] = sqlite_read_only_uri(settings.event_store_path)
        env["SQLITE_LOCK_TIMEOUT"] = "30"
    else:
        keep_private(settings.data_dir)
        private_sqlite_file(settings.event_store_path)
        env["PERSISTENCE_MODULE"] = "eventsourcing.sqlite"
        env["SQLITE_DBNAME"] = str(settings.event_store_path)
        env["SQLITE_LOCK_TIMEOUT"] = "30"
        use_write_ahead_log(settings.event_store_path)
    return env


PRIVATE_UMASK = 0o077
"""What this process creates is its user's alone: it holds data about children."""


def keep_private(data_dir: Path) -> None:
    """The data folder mode 0700 and every SQLite file in it 0600, and files the process
    creates from now on private too (umask 077).

    The report's attack: on the defaults the store files were 0644 in a 0755 folder, and
    another local user copied them and decrypted a pupil's name. Files made by earlier
    versions are tightened here as well.
    """
    os.umask(PRIVATE_UMASK)
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    data_dir.chmod(0o700)  # mkdir's mode is ignored for a folder that exists
    for path in data_dir.glob("*.sqlite*"):
        # a -journal or -wal file may go away between the listing and the chmod
        with contextlib.suppress(FileNotFoundError):
            path.chmod(0o600)


def private_sqlite_file(path: Path) -> None:
    """Creates the SQLite file mode 0600 before SQLite opens it (SQLite gives its -wal and
    -shm files the mode of the database file), and tightens one that exists.

    An existing file is never opened here: closing any descriptor of a file drops every
    POSIX lock this process holds on it, so opening and closing the store while another
    audit log of the same process has it open (the demo's pipeline beside the CLI's, a
    test's store beside a publisher's) took away that connection's WAL lock, and another
    process then reset the WAL index under it: "database disk image is malformed"."""
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
    for suffix in ("", "-wal", "-shm", "-journal"):
        extra = path.with_name(path.name + suffix)
        # another starter's connection may remove a -journal or -wal file meanwhile
        with contextlib.suppress(FileNotFoundError):
            extra.chmod(0o600)


def use_write_ahead_log(path: Path, attempts: int = 50) -> None:
    """Puts a SQLite file in WAL mode before ``eventsourcing`` opens it.

    The library switches every new connection to WAL; on a new file the switch needs the
    file to itself and fails at once with "database is locked" (the busy timeout does not
    cover it) when another process or thread is switching too, e.g. ``serve`` and a CLI
    command started together. Once the file is in WAL mode the switch is a no-op, so this
    makes it first, retrying briefly while another starter holds the file.
    """
    for attempt in range(attempts):
        try:
            with closing(sqlite3.connect(path, timeout=30)) as conn:
                conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or attempt == attempts - 1:
                raise
            time.sleep(0.02)


def postgres_environment(url: str) -> dict[str, str]:
    """Translates a PostgreSQL URL into ``eventsourcing.postgres`` settings."""
    parts = urlsplit(url)
    if parts.scheme not in {"postgresql", "postgres", "postgresql+psycopg"}:
        raise ValueError(f"SFERUM_AUDIT_DATABASE_URL must be a postgresql:// URL, not {url!r}")
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": parts.path.lstrip("/") or "postgres",
        "POSTGRES_HOST": parts.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(parts.port or 5432),
        "POSTGRES_USER": unquote(parts.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(parts.password or ""),
    }


class CommandContextAsDict(Transcoding):
    """Stores a ``CommandContext`` as a JSON object inside each event."""

    type = CommandContext
    name = "ctx"

    def encode(self, obj: CommandContext) -> dict[str, Any]:
        return obj.as_dict()

    def decode(self, data: dict[str, Any]) -> CommandContext:
        return CommandContext(**data)


def locate_events(
    recorder: ApplicationRecorder, refs: Iterable[tuple[UUID, int]]
) -> dict[tuple[UUID, int], tuple[int, str]]:
    """Global position and topic of stored events named by (aggregate id, version).

    The recorder API reads events by aggregate or by position, not both; answering a
    repeated command with its first result needs both, so this asks the tables directly.
    """
    wanted = list(refs)
    found: dict[tuple[UUID, int], tuple[int, str]] = {}
    if not wanted:
        return found
    table = recorder.events_table_name  # type: ignore[attr-defined]  # both recorders have it
    datastore = recorder.datastore  # type: ignore[attr-defined]  # both recorders have it
    if type(recorder).__module__ == "eventsourcing.sqlite":
        sql = f"SELECT rowid, topic FROM {table} WHERE originator_id=? AND originator_version=?"  # noqa: S608  # table name is the library's own
        with datastore.transaction(commit=False) as cursor:
            for aggregate_id, version in wanted:
                cursor.execute(sql, (aggregate_id.hex, version))
                row = cursor.fetchone()
                if row is not None:
                    found[(aggregate_id, version)] = (int(row[0]), str(row[1]))
        return found
    from psycopg import sql as pgsql

    schema = datastore.schema or "public"
    query = pgsql.SQL(
        "SELECT notification_id, topic FROM {}.{} WHERE originator_id=%s AND originator_version=%s"
    ).format(pgsql.Identifier(schema), pgsql.Identifier(table))
    with datastore.transaction(commit=False) as cursor:
        for aggregate_id, version in wanted:
            cursor.execute(query, (aggregate_id, version))
            row = cursor.fetchone()
            if row is not None:
                found[(aggregate_id, version)] = (int(row["notification_id"]), str(row["topic"]))
    return found
