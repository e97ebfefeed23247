"""Fixtures of the view tests: an audit log on each store, its views database, a history."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from views_history import record, scripted_history

from sferum_audit.application.bootstrap import build_audit_log
from sferum_audit.application.service import AuditLog
from sferum_audit.application.settings import Settings
from sferum_audit.projections.database import ViewsDatabase
from sferum_audit.projections.runner import ViewRunner


@pytest.fixture
def app(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> AuditLog:
    monkeypatch.delenv("SFERUM_AUDIT_VIEWS_URL", raising=False)
    return build_audit_log(settings)


@pytest.fixture
def views(settings: Settings) -> Iterator[ViewsDatabase]:
    db = ViewsDatabase.from_settings(settings)
    try:
        yield db
    finally:
        db.dispose()


@pytest.fixture
def history(unique: str) -> list[dict[str, Any]]:
    return scripted_history(f"s{unique}")


@pytest.fixture
def school(history: list[dict[str, Any]]) -> str:
    return str(history[0]["school_id"])


@pytest.fixture
def recorded(app: AuditLog, history: list[dict[str, Any]]) -> AuditLog:
    record(app, history)
    return app


@pytest.fixture
def current(recorded: AuditLog, views: ViewsDatabase) -> ViewsDatabase:
    """The views caught up with the recorded history."""
    runner = ViewRunner(recorded, views)
    runner.ensure_tables()
    runner.catch_up()
    return views


@pytest.fixture
def recorded_until(
    app: AuditLog, history: list[dict[str, Any]], views: ViewsDatabase
) -> ViewsDatabase:
    """The views of the history up to (and with) the member blocked in class-5a."""
    cut = next(i for i, c in enumerate(history) if c["type"] == "block-member") + 1
    record(app, history[:cut])
    runner = ViewRunner(app, views)
    runner.ensure_tables()
    runner.catch_up()
    return views
