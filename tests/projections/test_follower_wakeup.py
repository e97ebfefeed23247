"""A view follower wakes when something is recorded, not at its next poll.

The poll interval is an hour in these tests: a follower that only polled would never catch
up within the bounded waits.
"""

from __future__ import annotations

from typing import Any

import pytest
from views_history import record

from sferum_audit.application.bootstrap import build_audit_log
from sferum_audit.application.service import AuditLog
from sferum_audit.application.settings import Settings
from sferum_audit.projections.database import ViewsDatabase
from sferum_audit.projections.runner import ViewFollower
from sferum_audit.projections.wakeup import LogSignal

HOUR = 3600.0
BOUND = 20.0


def test_a_follower_applies_new_events_when_the_signal_rings(
    app: AuditLog, views: ViewsDatabase, history: list[dict[str, Any]]
) -> None:
    signal = LogSignal()
    follower = ViewFollower(app, views, poll_interval=HOUR, signal=signal).start()
    try:
        record(app, history[:10])
        signal.ring()
        assert follower.wait_until_current(BOUND)
        record(app, history[10:])  # the follower is asleep for an hour now
        signal.ring()  # as the ingest does after a committed batch
        assert follower.wait_until_current(BOUND)
    finally:
        follower.stop()
    assert not follower.running


@pytest.mark.postgres
def test_on_postgresql_a_follower_wakes_for_another_process_inserts(
    postgres_settings: Settings, history: list[dict[str, Any]]
) -> None:
    """The writer is another application instance (as another worker process would be):
    it never rings this follower's signal; PostgreSQL's NOTIFY does."""
    reader = build_audit_log(postgres_settings)
    writer = build_audit_log(postgres_settings)
    views = ViewsDatabase.from_settings(postgres_settings)
    follower = ViewFollower(reader, views, poll_interval=HOUR).start()
    try:
        record(writer, history[:5])
        assert follower.wait_until_current(BOUND)
        record(writer, history[5:])
        assert follower.wait_until_current(BOUND)
    finally:
        follower.stop()
        views.dispose()
        writer.close()
        reader.close()
