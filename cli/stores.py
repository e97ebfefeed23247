"""Opening the stores for commands that only read: nothing created, nothing changed.

A read command (``audit``, ``incidents``, ``events``, ``verify`` ...) needs a store that
exists: a data folder without ``events.sqlite`` is an error that names the folder,
never a fresh empty store answering with an empty table (a mistyped ``--data-dir``).
Stores are created by the commands that write (``record``, the friendly commands,
``demo``, ``serve``).

The event store and the key store are opened read-only (SQLite ``mode=ro``, PostgreSQL
``default_transaction_read_only``). The views are a cache of the log: a listing brings
them up to date first, in place when this process may write them, and otherwise (an
auditor's write-protected copy) in a temporary copy that is thrown away afterwards, so
the answer is always current and the copy is left exactly as it was.

Catching up needs the application, the domain's event classes and the view runner (about
half a second of imports). A listing whose views are already at the log's head (the
usual case: the service follows the log) needs none of them: one query for the head of
the SQLite log and one for the views' positions decide it (``views_are_current``), and
only views behind the log load the catch-up machinery.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from sferum_audit.application import store
from sferum_audit.application.settings import Settings
from sferum_audit.projections.database import ViewsDatabase, quote
from sferum_audit.projections.settings import ViewsSettings, views_location
from sferum_audit.projections.tables import SPECS

if TYPE_CHECKING:
    from sferum_audit.application.service import AuditLog

# the table eventsourcing's SQLite recorder keeps the log in (its default name)
SQLITE_EVENTS_TABLE = "stored_events"


class NoStore(ValueError):
    """The data folder holds no event store."""


def require_store(settings: Settings) -> None:
    """Raises ``NoStore`` unless the configured event store exists (SQLite: the file;
    PostgreSQL is checked by its first query)."""
    if settings.database_url:
        return
    path = settings.event_store_path
    if not path.is_file():
        where = "does not exist" if not settings.data_dir.exists() else "holds no events.sqlite"
        raise NoStore(
            f"no event store: the data folder {settings.data_dir} {where}; check --data-dir "
            "or SFERUM_AUDIT_DATA_DIR (a store is created by `sferum-audit record`, the "
            "friendly commands, `demo` or `serve`)"
        )


def reading_log(settings: Settings) -> AuditLog:
    """The audit log opened for reading only; the store must exist."""
    from sferum_audit.application.bootstrap import (
        build_audit_log,
    )  # half a second of imports only commands reading the log need

    require_store(settings)
    return build_audit_log(settings, read_only=True)


def writable(path: Path) -> bool:
    """Whether this process may change ``path`` and create SQLite's side files next to it."""
    return store.may_write(path)


def sqlite_views_path(settings: Settings, options: ViewsSettings) -> Path | None:
    """The views' SQLite file, or ``None`` when the views are in PostgreSQL."""
    url, _ = views_location(settings, options)
    if not url.startswith("sqlite"):
        return None
    database = sa.make_url(url).database
    return Path(database) if database else None


@contextmanager
def current_views(settings: Settings) -> Iterator[ViewsDatabase]:
    """The views brought up to date with the log (see the module docstring)."""
    options = ViewsSettings()
    require_store(settings)
    path = sqlite_views_path(settings, options)
    scratch: str | None = None
    try:
        if path is not None and not writable(path):
            scratch = tempfile.mkdtemp(prefix="sferum-audit-views-")
            db = ViewsDatabase.sqlite_file(copy_views(path, Path(scratch)))
        else:
            db = ViewsDatabase.from_settings(settings, options)
        try:
            if not views_are_current(settings, db):
                catch_up(settings, db, options)
            yield db
        finally:
            db.dispose()
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def catch_up(settings: Settings, db: ViewsDatabase, options: ViewsSettings) -> None:
    """Creates missing view tables (and columns) and applies the log beyond the views."""
    from sferum_audit.projections.runner import ViewRunner  # see the module docstring

    app = reading_log(settings)
    try:
        runner = ViewRunner(app, db, page_size=options.views_page_size)
        runner.ensure_tables()
        runner.catch_up()
    finally:
        app.close()


def views_are_current(settings: Settings, db: ViewsDatabase) -> bool:
    """Whether every view is at the head of the SQLite log already, with every table and
    column this version reads; ``False`` whenever that cannot be told in a few cheap
    queries (a PostgreSQL store, views or tables missing): the caller then catches up."""
    if settings.database_url or not db.is_sqlite:
        return False
    try:
        head = sqlite_log_head(settings.event_store_path)
        with db.reading() as conn:
            tracking = quote(db.live.tracking.name)
            sql = f'SELECT "view", "position" FROM {tracking}'  # noqa: S608  # our own table name
            positions = {str(view): int(pos) for view, pos in conn.exec_driver_sql(sql)}
            views = {spec.view for spec in SPECS}
            if any(positions.get(view, -1) < head for view in views):
                return False
            for spec in SPECS:
                name = db.live.name(spec.name)
                present = {
                    str(row[1]) for row in conn.exec_driver_sql(f"PRAGMA table_info({quote(name)})")
                }
                if not {column for column, _ in spec.columns} <= present:
                    return False
    except (sa.exc.SQLAlchemyError, sqlite3.Error):
        return False
    return True


def sqlite_log_head(path: Path) -> int:
    """The last position in the SQLite event store at ``path``, read without writing."""
    uri = store.sqlite_read_only_uri(path)
    with closing(sqlite3.connect(uri, uri=True, timeout=30)) as conn:
        row = conn.execute(f"SELECT MAX(rowid) FROM {SQLITE_EVENTS_TABLE}").fetchone()  # noqa: S608  # the library's table name
    return int(row[0] or 0) if row else 0


@contextmanager
def stored_views(settings: Settings) -> Iterator[ViewsDatabase]:
    """The views as stored, not caught up (how far behind they are is the question);
    a folder this process may not write is read through a scratch copy, as above."""
    options = ViewsSettings()
    path = sqlite_views_path(settings, options)
    scratch: str | None = None
    if path is not None and not writable(path):
        scratch = tempfile.mkdtemp(prefix="sferum-audit-views-")
        db = ViewsDatabase.sqlite_file(copy_views(path, Path(scratch)))
    else:
        db = ViewsDatabase.from_settings(settings, options)
    try:
        yield db
    finally:
        db.dispose()
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def copy_views(path: Path, folder: Path) -> Path:
    """Copies the views file (with its write-ahead log) into ``folder``; a missing file
    gives a fresh one there."""
    target = folder / "views.sqlite"
    for suffix in ("", "-wal"):
        source = Path(f"{path}{suffix}")
        if source.is_file():
            shutil.copyfile(source, f"{target}{suffix}")
    return target
