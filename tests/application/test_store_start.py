"""Several instances starting at once on a new store all come up."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from sferum_audit.application.bootstrap import build_audit_log
from sferum_audit.application.settings import Settings


def postgres_url_or_skip() -> str:
    url = os.environ.get("SFERUM_AUDIT_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("SFERUM_AUDIT_TEST_POSTGRES_URL is not set")
    return url


@pytest.fixture
def fresh_postgres_schemas() -> Iterator[list[str]]:
    import psycopg

    url = postgres_url_or_skip()
    schemas: list[str] = []
    yield schemas
    with psycopg.connect(url, autocommit=True) as conn:
        for schema in schemas:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def start_together(settings: Settings, instances: int = 4) -> list[BaseException]:
    failures: list[BaseException] = []

    def start() -> None:
        try:
            build_audit_log(settings).close()
        except BaseException as error:  # collected for the assertion
            failures.append(error)

    threads = [threading.Thread(target=start) for _ in range(instances)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return failures


@pytest.mark.postgres
def test_instances_starting_together_on_a_new_postgres_schema_all_start(
    fresh_postgres_schemas: list[str], tmp_path: Path
) -> None:
    import psycopg

    url = postgres_url_or_skip()
    failures: list[BaseException] = []
    for attempt in range(8):
        schema = f"t_start_{uuid.uuid4().hex[:12]}"
        fresh_postgres_schemas.append(schema)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        settings = Settings(
            data_dir=tmp_path / f"data-{attempt}", database_url=url, database_schema=schema
        )
        failures += start_together(settings)
    assert failures == []


def test_instances_starting_together_on_a_new_sqlite_store_all_start(tmp_path: Path) -> None:
    failures: list[BaseException] = []
    for attempt in range(30):  # the race was lost about once in thirty starts
        failures += start_together(Settings(data_dir=tmp_path / f"data-{attempt}"))
    assert failures == []
