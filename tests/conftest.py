"""Shared fixtures: a fresh store per test, on SQLite and (when configured) PostgreSQL.

PostgreSQL tests need ``SFERUM_AUDIT_TEST_POSTGRES_URL`` (``.ci/run`` sets it); each test
gets its own schema, dropped afterwards, so tests never see each other's events.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from sferum_audit.application.bootstrap import build_audit_log
from sferum_audit.application.service import AuditLog
from sferum_audit.application.settings import Settings

# Tests assert behaviour, never speed: Hypothesis's per-example deadline (200 ms) turns a
# loaded 2-core CI machine into flaky failures, so no property test has one.
hypothesis_settings.register_profile("sferum-audit", deadline=None)
hypothesis_settings.load_profile("sferum-audit")

POSTGRES_URL_VARIABLE = "SFERUM_AUDIT_TEST_POSTGRES_URL"
# Nothing listens on port 1: commands that reach for the configured NATS (``forget``
# deletes dead letters there) find none unless a test gives them its own server.
UNREACHABLE_NATS = "nats://127.0.0.1:1"


def postgres_url() -> str | None:
    return os.environ.get(POSTGRES_URL_VARIABLE) or None


@pytest.fixture(autouse=True)
def no_default_nats(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine may run a NATS at the default URL: no test may touch it by default."""
    monkeypatch.setenv("SFERUM_AUDIT_NATS_URL", UNREACHABLE_NATS)


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def postgres_settings(tmp_path: Path) -> Iterator[Settings]:
    url = postgres_url()
    if url is None:
        pytest.skip(f"{POSTGRES_URL_VARIABLE} is not set")
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield Settings(data_dir=tmp_path / "data", database_url=url, database_schema=schema)
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest) -> Settings:
    """The same test, once on each store: the abstract case of the test suite."""
    name = "sqlite_settings" if request.param == "sqlite" else "postgres_settings"
    result: Settings = request.getfixturevalue(name)
    return result


@pytest.fixture
def unique() -> str:
    """A short unique suffix for ids, so tests never share a school or a stream."""
    return uuid.uuid4().hex[:8]


@pytest.fixture
def app(settings: Settings) -> Iterator[AuditLog]:
    """The audit log on the store under test, closed afterwards."""
    audit_log = build_audit_log(settings)
    try:
        yield audit_log
    finally:
        audit_log.close()
