"""Exactly once: a crash mid-page, a redelivered page, two followers at once and a restart
all end with the same rows as a clean rebuild from the log."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from views_history import record

from sferum_audit.application.service import AuditLog
from sferum_audit.projections import queries
from sferum_audit.projections.buffer import AppendBuffer
from sferum_audit.projections.commits import BackgroundCommits
from sferum_audit.projections.database import ViewsDatabase
from sferum_audit.projections.replay import digests, rebuild
from sferum_audit.projections.runner import ViewFollower, ViewRunner


def all_notifications(app: AuditLog) -> list[Any]:
    return list(app.recorder.select_notifications(1, 100_000))


def assert_same_as_rebuild(app: AuditLog, views: ViewsDatabase) -> None:
    runner = ViewRunner(app, views)
    live = digests(views, views.live, runner.names)
    assert rebuild(app, views).digests == live


def test_redelivered_notifications_are_skipped(recorded: AuditLog, views: ViewsDatabase) -> None:
    runner = ViewRunner(recorded, views)
    runner.ensure_tables()
    notifications = all_notifications(recorded)
    half = len(notifications) // 2
    assert (runner.apply(notifications[:half]) or 0) > 0
    assert runner.apply(notifications[: half // 2]) == 0  # all of it seen before
    applied_again = runner.apply(notifications)  # half of it seen before
    assert (applied_again or 0) > 0
    restarted = ViewRunner(recorded, views)  # a new process gets the whole log again
    assert restarted.apply(notifications) == 0
    assert set(restarted.positions().values()) == {notifications[-1].id}
    assert len(queries.audit_rows(views, queries.AuditFilter())) == 5
    assert_same_as_rebuild(recorded, views)


def test_crash_inside_a_write_rolls_back_and_a_restart_resumes(
    recorded: AuditLog, views: ViewsDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = ViewRunner(recorded, views, page_size=7)
    runner.ensure_tables()
    real_flush = AppendBuffer.flush
    calls = {"n": 0}

    def crashing_flush(self: AppendBuffer, *args: Any) -> int:
        written = real_flush(self, *args)  # the rows are written, then the process dies
        if written:
            calls["n"] += 1
            if calls["n"] == 3:
                raise RuntimeError("simulated crash")
        return written

    monkeypatch.setattr(AppendBuffer, "flush", crashing_flush)
    with pytest.raises(RuntimeError, match="simulated crash"):
        runner.catch_up()
    stopped_at = runner.positions()
    head = runner.head()
    assert 0 < min(stopped_at.values()) < head  # some pages committed, not the crashed one
    monkeypatch.setattr(AppendBuffer, "flush", real_flush)
    restarted = ViewRunner(recorded, views, page_size=7)
    restarted.catch_up()
    assert set(restarted.positions().values()) == {head}
    assert_same_as_rebuild(recorded, views)


def test_a_failed_background_commit_rolls_back_its_page_and_a_restart_resumes(
    recorded: AuditLog, views: ViewsDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = ViewRunner(recorded, views, page_size=7)
    runner.ensure_tables()
    real_submit = BackgroundCommits.submit
    committed: list[dict[str, int]] = []

    def failing_submit(self: BackgroundCommits, commit: Any, settle: Any) -> None:
        if len(committed) == 2:

            def commit() -> None:  # the driver's commit fails: the page is rolled back
                raise OSError("simulated disk full")

        real_submit(self, commit, settle)
        committed.append({})

    monkeypatch.setattr(BackgroundCommits, "submit", failing_submit)
    with pytest.raises(OSError, match="simulated disk full"):
        runner.catch_up()
    routed = [n.id for n in all_notifications(recorded) if n.topic in runner.topics]
    assert set(runner.positions().values()) == {routed[13]}  # two pages of 7, not the third
    head = runner.head()
    monkeypatch.setattr(BackgroundCommits, "submit", real_submit)
    restarted = ViewRunner(recorded, views, page_size=7)
    restarted.catch_up()
    assert set(restarted.positions().values()) == {head}
    assert_same_as_rebuild(recorded, views)


def test_crash_between_events_of_a_page(
    recorded: AuditLog, views: ViewsDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = ViewRunner(recorded, views, page_size=50)
    runner.ensure_tables()
    seen = {"n": 0}
    view = runner.views[0]
    handlers = view.routes()
    original = dict(runner.routes)

    def crash_after(handler: Any) -> Any:
        def wrapped(event: Any, position: int) -> None:
            seen["n"] += 1
            if seen["n"] == 30:
                raise RuntimeError("crash between events")
            handler(event, position)

        return wrapped

    for topic, pairs in original.items():
        runner.routes[topic] = [(i, crash_after(h)) for i, h in pairs]
    with pytest.raises(RuntimeError, match="crash between events"):
        runner.catch_up()
    assert handlers  # the view had work to do
    resumed = ViewRunner(recorded, views, page_size=50)
    resumed.catch_up()
    assert_same_as_rebuild(recorded, views)


def test_views_at_different_positions_catch_up_together(
    recorded: AuditLog, views: ViewsDatabase
) -> None:
    notifications = all_notifications(recorded)
    only_audit = ViewRunner(recorded, views, ["audit_trail"])
    only_audit.ensure_tables()
    ViewRunner(recorded, views).ensure_tables()
    only_audit.apply(notifications[: len(notifications) // 3])
    runner = ViewRunner(recorded, views)
    positions = runner.positions()
    assert positions["audit_trail"] > positions["current_state"] == 0
    runner.catch_up()
    assert_same_as_rebuild(recorded, views)


def test_two_followers_at_once_count_everything_once(
    app: AuditLog, views: ViewsDatabase, history: list[dict[str, Any]]
) -> None:
    ViewRunner(app, views).ensure_tables()
    errors: list[BaseException] = []
    stop = threading.Event()

    def follow() -> None:
        try:
            runner = ViewRunner(app, views, page_size=5)
            while not stop.is_set():
                runner.catch_up()
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=follow) for _ in range(2)]
    for thread in threads:
        thread.start()
    for start in range(0, len(history), 6):
        record(app, history[start : start + 6])
    ViewRunner(app, views).catch_up()
    stop.set()
    for thread in threads:
        thread.join(30)
    assert not errors
    assert len(queries.audit_rows(views, queries.AuditFilter())) == 5
    assert_same_as_rebuild(app, views)


def test_follower_thread_keeps_views_current(
    app: AuditLog, views: ViewsDatabase, history: list[dict[str, Any]]
) -> None:
    follower = ViewFollower(app, views, poll_interval=0.05).start()
    try:
        record(app, history[:20])
        assert follower.wait_until_current(20)
        record(app, history[20:])
        assert follower.wait_until_current(20)
        lags = {lag.view: lag for lag in follower.lag()}
        assert set(lags) == {
            "current_state", "invitations", "audit_trail", "incidents", "statistics",
        }  # fmt: skip
        assert all(lag.lag == 0 for lag in lags.values())
        assert lags["statistics"].position == app.recorder.max_notification_id()
    finally:
        follower.stop()
    assert not follower.running
    assert_same_as_rebuild(app, views)


def test_a_page_read_past_a_view_that_moved_back_is_not_applied(
    recorded: AuditLog, views: ViewsDatabase
) -> None:
    """A rebuild swapped in behind the follower: its page would leave a gap, so it waits."""
    notifications = all_notifications(recorded)
    runner = ViewRunner(recorded, views)
    runner.ensure_tables()
    runner.apply(notifications[:10])
    later = notifications[30:]
    assert runner.apply(later, fetched_after=notifications[29].id) is None
    assert set(runner.positions().values()) == {notifications[9].id}
    runner.catch_up()
    assert_same_as_rebuild(recorded, views)
