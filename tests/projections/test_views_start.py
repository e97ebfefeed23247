"""Several followers starting at once on a new views database all come up."""

from __future__ import annotations

import threading

from sferum_audit.application.service import AuditLog
from sferum_audit.application.settings import Settings
from sferum_audit.projections.database import ViewsDatabase
from sferum_audit.projections.runner import ViewRunner
from sferum_audit.projections.settings import ViewsSettings


def start_together(app: AuditLog, settings: Settings, views: ViewsSettings) -> list[BaseException]:
    failures: list[BaseException] = []
    databases = [ViewsDatabase.from_settings(settings, views) for _ in range(4)]

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
    return failures


def test_followers_starting_together_on_new_views_all_create_their_tables(
    app: AuditLog, settings: Settings
) -> None:
    rounds = 1 if settings.database_url else 30  # on SQLite the race was lost ~1 in 20 starts
    failures: list[BaseException] = []
    for round_ in range(rounds):
        views = ViewsSettings()
        if not settings.database_url:  # each round on a new file
            views = ViewsSettings(views_url=f"sqlite:///{settings.data_dir}/views-{round_}.sqlite")
        failures += start_together(app, settings, views)
    assert failures == []
