"""CLI fixtures: ``sferum-audit`` on the store under test, and a sample school loaded there."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import structlog
from cli_helpers import Cli

from sferum_audit.application.bootstrap import build_audit_log
from sferum_audit.application.commands import parse_command
from sferum_audit.application.local_sources import LocalSigner
from sferum_audit.application.sample_school import sample_school
from sferum_audit.application.service import AuditLog
from sferum_audit.application.settings import Settings


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Every CLI run configures logging for its process; undo that after each test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    structlog.reset_defaults()
    root.handlers, root.level = handlers, level


@pytest.fixture
def cli(settings: Settings) -> Cli:
    """The CLI on SQLite and on PostgreSQL."""
    return Cli(settings)


@pytest.fixture
def sqlite_cli(sqlite_settings: Settings) -> Cli:
    """The CLI on SQLite only, for behaviour that does not depend on the store."""
    return Cli(sqlite_settings)


def open_log(settings: Settings) -> Iterator[AuditLog]:
    app = build_audit_log(settings)
    try:
        yield app
    finally:
        app.close()


@pytest.fixture
def audit_log(cli: Cli) -> Iterator[AuditLog]:
    """The application on the same store as ``cli``, to arrange and to check."""
    yield from open_log(cli.settings)


@pytest.fixture
def sqlite_audit_log(sqlite_cli: Cli) -> Iterator[AuditLog]:
    """The application on the same store as ``sqlite_cli``."""
    yield from open_log(sqlite_cli.settings)


def load_sample(app: AuditLog, school_id: str, settings: Settings) -> str:
    """The sample school, and the CLI's local source registered for it (as the first
    friendly command would), so that tests of one command see only that command's events."""
    results = app.handle_batch([parse_command(c) for c in sample_school(school_id)])
    assert {r.status for r in results} == {"recorded"}
    registration = LocalSigner.from_settings(settings).ensure_registered(app, school_id)
    assert registration is not None
    assert registration.status == "recorded"
    return school_id


@pytest.fixture
def loaded_school(audit_log: AuditLog, cli: Cli, unique: str) -> str:
    """A sample school recorded on the store under test (both stores); its id."""
    return load_sample(audit_log, f"sch-{unique}", cli.settings)


@pytest.fixture
def sqlite_school(sqlite_audit_log: AuditLog, sqlite_cli: Cli, unique: str) -> str:
    """A sample school recorded on SQLite; its id."""
    return load_sample(sqlite_audit_log, f"sch-{unique}", sqlite_cli.settings)
