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
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from sferum_audit.application import store
from sferum_audit.application.bootstrap import build_audit_log
from sferum_audit.application.service import AuditLog
from sferum_audit.application.settings import Settings
from sferum_audit.projections.database import ViewsDatabase
from sferum_audit.projections.runner import ViewRunner
from sferum_audit.projections.settings import ViewsSettings, views_location


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
    app = reading_log(settings)
    scratch: str | None = None
    try:
        path = sqlite_views_path(settings, options)
        if path is not None and not writable(path):
            scratch = tempfile.mkdtemp(prefix="sferum-audit-views-")
            db = ViewsDatabase.sqlite_file(copy_views(path, Path(scratch)))
        else:
            db = ViewsDatabase.from_settings(settings, options)
        try:
            runner = ViewRunner(app, db, page_size=options.views_page_size)
            runner.ensure_tables()
            runner.catch_up()
            yield db
        finally:
            db.dispose()
    finally:
        app.close()
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
