"""Several followers starting at once on a new views database all come up."""

from __future__ import annotations

import threading

from sferum_audit.application.service import AuditLog
from sferum_audit.application.settings import Settings
from sferum_audit.projections.database import ViewsDatabase
from sferum_audit.projections.runner import ViewRunner


def test_followers_starting_together_on_new_views_all_create_their_tables(
    app: AuditLog, settings: Settings
) -> None:
    failures: list[BaseException] = []
    databases = [ViewsDatabase.from_settings(settings) for _ in range(4)]

    def start(db: ViewsDatabase) -> None:
        try:
            ViewRunner(app, db).ensure_tables()
        except BaseException as error:  # collected for the assertion
            failures.append(error)

    threads = [threading.Thread(target=start, args=(db,)) for db in databases]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for db in databases:
            db.dispose()
    assert failures == []
