"""The ingest's batch reads change no decision (PostgreSQL, where they are used).

``IngestAuditLog`` checks versions in bulk, hands current cached aggregates to a batch
without copying and writes saved ones back. These tests compare it with the plain
``AuditLog`` and put it next to another writer and a failing save.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import OperationalError

from sferum_audit.application.bootstrap import build_audit_log
from sferum_audit.application.commands import parse_command
from sferum_audit.application.service import AuditLog
from sferum_audit.application.settings import Settings
from sferum_audit.consumers.command_mix import school_commands
from sferum_audit.consumers.ingest_app import IngestAuditLog, build_ingest_audit_log

pytestmark = pytest.mark.postgres


@pytest.fixture
def ingest(postgres_settings: Settings) -> Iterator[IngestAuditLog]:
    app = build_ingest_audit_log(postgres_settings)
    assert app.prefetch_enabled
    yield app
    app.close()


@pytest.fixture
def plain(postgres_settings: Settings) -> Iterator[AuditLog]:
    app = build_audit_log(postgres_settings)
    yield app
    app.close()


def batches(commands: list[dict[str, Any]], size: int) -> Iterator[list[Any]]:
    parsed = [parse_command(c) for c in commands]
    for start in range(0, len(parsed), size):
        yield parsed[start : start + size]


def test_it_uses_the_applications_tables(ingest: IngestAuditLog, plain: AuditLog) -> None:
    first = school_commands("tables")[0]
    [result] = ingest.handle_batch([parse_command(first)])
    assert result.status == "recorded"
    assert plain.recorder.max_notification_id() == ingest.recorder.max_notification_id()
    assert plain.handle(parse_command(first)).status == "duplicate"


def test_it_decides_like_the_plain_application(
    ingest: IngestAuditLog, postgres_settings: Settings, unique: str
) -> None:
    schools = [school_commands(f"s{n}-{unique}", students=3, moderations=6) for n in range(3)]
    mixed = [c for row in zip(*schools, strict=False) for c in row]
    # Repeats and refusals inside and across batches.
    mixed += mixed[:10]
    add_member = next(c for c in mixed if c["type"] == "add-member")
    mixed.insert(20, dict(add_member, command_id=f"bad-{unique}", chat_id="nope"))
    outcome = [
        (r.status, len(r.events))
        for batch in batches(mixed, 17)
        for r in ingest.handle_batch(batch)
    ]
    reference_settings = postgres_settings.model_copy(
        update={"database_schema": None, "data_dir": postgres_settings.data_dir / "ref"}
    )
    # The reference runs on a schema of its own (same commands, same batches).
    schema = f"r_{uuid.uuid4().hex[:12]}"
    url = postgres_settings.database_url
    assert url is not None
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        reference = build_audit_log(
            reference_settings.model_copy(update={"database_schema": schema})
        )
        expected = [
            (r.status, len(r.events))
            for batch in batches(mixed, 17)
            for r in reference.handle_batch(batch)
        ]
        reference.close()
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    assert outcome == expected
    assert ("rejected", 0) in outcome
    assert any(status == "duplicate" for status, _ in outcome)


def test_another_writer_is_seen_by_the_next_batch(
    ingest: IngestAuditLog, plain: AuditLog, unique: str
) -> None:
    school = school_commands(f"s-{unique}", students=1, moderations=0)
    for batch in batches(school[:4], 10):
        assert all(r.accepted for r in ingest.handle_batch(batch))
    admin = school[1]["actor"]["id"]
    at = school[3]["occurred_at"]
    envelope = {
        "school_id": school[0]["school_id"],
        "actor": {"id": admin, "role": "administrator"},
        "occurred_at": at,
    }
    new_admin = f"adm2-{unique}"  # appointed from the teaching staff (2.2, 2.3)
    for command in (
        {"type": "register-profile", "profile_id": new_admin, "role": "teacher"}
        | {"display_name": "Второй администратор"},
        {"type": "admit-person", "person_id": new_admin, "roster_role": "staff"},
        {"type": "appoint-administrator", "person_id": new_admin, "order_ref": "No. 2"},
    ):
        command |= envelope | {"command_id": f"{command['type']}-{unique}"}
        assert plain.handle(parse_command(command)).status == "recorded"  # not via the ingest
    by_new_admin = dict(
        school[1],
        command_id=f"class-{unique}",
        class_id="6b",
        name="6Б",
        actor={"id": new_admin, "role": "administrator"},
        occurred_at=at,
    )
    [result] = ingest.handle_batch([parse_command(by_new_admin)])
    assert result.status == "recorded", result.error_message
    assert admin != f"adm2-{unique}"


def test_a_failed_save_leaves_no_half_changed_aggregate_in_the_cache(
    ingest: IngestAuditLog, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    school = school_commands(f"s-{unique}", students=2, moderations=0)
    setup, rest = school[:3], school[3:]
    assert all(r.accepted for r in ingest.handle_batch([parse_command(c) for c in setup]))
    original = ingest.events.put
    calls = {"n": 0}

    def failing_put(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return original(*args, **kwargs)

    monkeypatch.setattr(ingest.events, "put", failing_put)
    parsed = [parse_command(c) for c in rest]
    with pytest.raises(OperationalError):
        ingest.handle_batch(parsed)
    results = ingest.handle_batch(parsed)  # the redelivery
    assert [r.status for r in results] == ["recorded"] * len(rest)
    again = ingest.handle_batch(parsed)
    assert [r.status for r in again] == ["duplicate"] * len(rest)
