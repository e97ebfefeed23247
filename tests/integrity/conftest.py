"""Fixtures of the integrity tests: a recorded and sealed log on each store."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import structlog
from integrity_helpers import Dba, SealedLog, record_school

from sferum_audit.application.service import AuditLog
from sferum_audit.application.settings import Settings
from sferum_audit.integrity.sealer import Sealer
from sferum_audit.integrity.settings import IntegritySettings


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """CLI runs configure logging for the process; undo that after each test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    structlog.reset_defaults()
    root.handlers, root.level = handlers, level


@pytest.fixture(autouse=True)
def integrity_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No integrity setting leaks in from the machine running the tests."""
    for name in (
        "SFERUM_AUDIT_SIGNING_KEY",
        "SFERUM_AUDIT_LOG_ORIGIN",
        "SFERUM_AUDIT_CHECKPOINT_INTERVAL_SECONDS",
        "SFERUM_AUDIT_VIEWS_URL",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def sealed(settings: Settings, app: AuditLog, unique: str) -> Iterator[SealedLog]:
    """About a hundred events of a sample school, sealed with one signed checkpoint."""
    school = f"s{unique}"
    record_school(app, school, 60)
    sealer = Sealer(
        app.recorder,
        settings.data_dir,
        IntegritySettings(log_origin="test.example/sferum-audit"),
    )
    result = sealer.run_once(force=True)
    assert result.checkpoint is not None
    assert result.alarm is None
    try:
        yield SealedLog(settings, app, sealer, Dba(settings, app), school)
    finally:
        sealer.close()
