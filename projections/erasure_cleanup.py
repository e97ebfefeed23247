"""After an erasure: no view, snapshot or write-ahead log keeps what the key protected.

The views hold personal fields opened (a reader needs no key), so after a key is destroyed
``clean_up_after_erasure``:

* removes every as-of snapshot (``<data_dir>/views-asof-*.sqlite`` with its ``-wal`` and
  ``-shm``): frozen at a past position, it would keep showing the person's data;
* rebuilds the live views from the log (their rows then show ``[erased]``) into fresh
  tables and swaps them in; the old tables are dropped (on SQLite with ``secure_delete``
  on, see ``database``, so their pages are zeroed; on PostgreSQL their files are removed);
* checkpoints every SQLite database in the data folder with ``wal_checkpoint(TRUNCATE)``,
  so the write-ahead logs that still held old pages are emptied and cut to zero length.

The same for an erasure through ``forget`` or over NATS (``application.erasure``).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from uuid import UUID

import sqlalchemy as sa
from eventsourcing.application import Application

from sferum_audit.application.settings import Settings
from sferum_audit.projections.database import ViewsDatabase
from sferum_audit.projections.replay import rebuild
from sferum_audit.projections.runner import ViewRunner
from sferum_audit.projections.settings import ViewsSettings
from sferum_audit.projections.tables import TRACKING

SNAPSHOTS = "views-asof-*.sqlite"


def clean_up_after_erasure(
    app: Application[UUID], settings: Settings, *, rebuild_views: bool = True
) -> list[str]:
    """Does the three steps of the module docstring; returns what it did, one line each."""
    done = remove_snapshots(settings.data_dir)
    done += refresh_views(app, settings, rebuild_views=rebuild_views)
    done += truncate_write_ahead_logs(settings.data_dir)
    return done


def remove_snapshots(data_dir: Path) -> list[str]:
    removed = []
    for snapshot in sorted(data_dir.glob(SNAPSHOTS)):
        for path in (snapshot, *(snapshot.with_name(snapshot.name + s) for s in ("-wal", "-shm"))):
            path.unlink(missing_ok=True)
        removed.append(f"removed {snapshot.name}: it held the erased data")
    return removed


def refresh_views(app: Application[UUID], settings: Settings, *, rebuild_views: bool) -> list[str]:
    """Rebuilds (or, when not asked to, catches up) the views, if any were ever built."""
    options = ViewsSettings()
    db = ViewsDatabase.from_settings(settings, options)
    try:
        if not _has_views(db):
            return []
        if rebuild_views:
            result = rebuild(app, db, page_size=options.views_page_size)
            return [f"views rebuilt to position {result.position}"]
        runner = ViewRunner(app, db, page_size=options.views_page_size)
        runner.ensure_tables()
        runner.catch_up()
        return ["views brought up to date"]
    finally:
        db.dispose()


def _has_views(db: ViewsDatabase) -> bool:
    with db.engine.connect() as conn:
        return bool(sa.inspect(conn).has_table(TRACKING, schema=db.schema))


def truncate_write_ahead_logs(data_dir: Path) -> list[str]:
    """``PRAGMA wal_checkpoint(TRUNCATE)`` on every SQLite database of the data folder."""
    done = []
    for database in sorted(data_dir.glob("*.sqlite")):
        if not database.with_name(database.name + "-wal").exists():
            continue
        with sqlite3.connect(database, timeout=30) as conn:
            conn.execute("PRAGMA busy_timeout=30000")
            busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        conn.close()
        done.append(
            f"{database.name}: write-ahead log checkpointed and truncated"
            if not busy
            else f"{database.name}: write-ahead log busy (a reader); truncated at next checkpoint"
        )
    return done
