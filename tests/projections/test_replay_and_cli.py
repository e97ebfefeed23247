"""``replay`` (rebuild and swap, --check, --upto/--as-of) and the listing commands."""

from __future__ import annotations

import csv
import io
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner, Result
from views_history import record

from sferum_audit.application.service import AuditLog
from sferum_audit.application.settings import Settings
from sferum_audit.cli.views import register
from sferum_audit.projections import queries
from sferum_audit.projections.database import ViewsDatabase
from sferum_audit.projections.replay import digests, rebuild
from sferum_audit.projections.runner import ViewRunner
from sferum_audit.projections.tables import SPECS


def cli_env(settings: Settings) -> dict[str, str]:
    env = {
        "SFERUM_AUDIT_DATA_DIR": str(settings.data_dir),
        "SFERUM_AUDIT_VIEWS_URL": "",
        "COLUMNS": "400",  # a wide terminal: the table shows whole cells
    }
    if settings.database_url:
        env["SFERUM_AUDIT_DATABASE_URL"] = settings.database_url
        env["SFERUM_AUDIT_DATABASE_SCHEMA"] = settings.database_schema or ""
    return env


@pytest.fixture
def run(settings: Settings) -> Any:
    app = typer.Typer()
    register(app)

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(app, list(args), env=cli_env(settings))

    return invoke


def table_names(views: ViewsDatabase) -> set[str]:
    import sqlalchemy as sa

    with views.reading() as conn:
        return set(sa.inspect(conn).get_table_names())


# -- rebuild, check, as of ------------------------------------------------------------------------


def test_rebuild_swaps_in_identical_tables(current: ViewsDatabase, recorded: AuditLog) -> None:
    names = ViewRunner(recorded, current).names
    before = digests(current, current.live, names)
    result = rebuild(recorded, current)
    assert result.digests == before
    assert result.position == recorded.recorder.max_notification_id()
    tables = table_names(current)
    assert {spec.name for spec in SPECS} <= tables
    assert not [name for name in tables if "__" in name]  # no build tables left behind


def test_fast_decoding_gives_the_mapper_rows(recorded: AuditLog, settings: Settings) -> None:
    found = []
    for fast in (True, False):
        db = ViewsDatabase.sqlite_file(settings.data_dir / f"views-fast-{fast}.sqlite")
        runner = ViewRunner(recorded, db, fast_decode=fast)
        runner.ensure_tables()
        runner.catch_up()
        found.append(digests(db, db.live, runner.names))
        db.dispose()
    assert found[0] == found[1]


def test_replay_prints_digests_and_check_passes(run: Any, recorded: AuditLog) -> None:
    replayed = run("replay", "--format", "json")
    assert replayed.exit_code == 0, replayed.output
    rows = json.loads(replayed.stdout)
    assert [r["view"] for r in rows] == [
        "current_state", "invitations", "audit_trail", "incidents", "statistics",
    ]  # fmt: skip
    assert all(len(r["sha256"]) == 64 for r in rows)
    checked = run("replay", "--check", "--format", "json")
    assert checked.exit_code == 0, checked.output
    assert {r["view"]: r["sha256"] for r in json.loads(checked.stdout)} == {
        r["view"]: r["sha256"] for r in rows if r["view"] != "statistics"
    }


def test_check_names_the_view_and_row_of_a_corrupted_row(
    run: Any, current: ViewsDatabase, recorded: AuditLog, school: str
) -> None:
    with current.writing() as conn:
        conn.exec_driver_sql(
            "UPDATE audit_trail SET ground='4.2.6' WHERE action='liability-warned'"
        )
    position = queries.audit_rows(current, queries.AuditFilter(action="liability-warned"))[0][
        "position"
    ]
    checked = run("replay", "--check")
    assert checked.exit_code == 1
    assert "view audit_trail" in checked.stderr
    assert f"row ({position},)" in checked.stderr
    assert "'4.2.6'" in checked.stderr
    assert "view current_state" not in checked.stderr
    assert run("replay", "audit_trail").exit_code == 0  # a rebuild repairs it
    assert run("replay", "--check").exit_code == 0


def test_check_catches_a_missing_row(run: Any, current: ViewsDatabase, school: str) -> None:
    with current.writing() as conn:
        conn.exec_driver_sql(
            "DELETE FROM cs_members WHERE profile_id=%s" % ("?" if current.is_sqlite else "%s"),
            (f"{school}-p1",),
        )
    checked = run("replay", "--check")
    assert checked.exit_code == 1
    assert "view current_state: table cs_members" in checked.stderr
    assert "live None" in checked.stderr


def test_as_recorded_at_a_time_shows_the_chat_when_the_removal_was_recorded(
    run: Any, app: AuditLog, history: list[dict[str, Any]], settings: Settings, school: str
) -> None:
    cut = next(i for i, c in enumerate(history) if c["type"] == "remove-content") + 1
    record(app, history[:cut])
    removal = queries  # the moment an auditor asks about: just after the removal
    moment = datetime.now(UTC)
    position_then = app.recorder.max_notification_id()
    time.sleep(0.05)
    record(app, history[cut:])
    replayed = run("replay", "--as-recorded-at", moment.isoformat(), "--format", "json")
    assert replayed.exit_code == 0, replayed.output
    snapshot = settings.data_dir / f"views-asof-{position_then}.sqlite"
    assert str(snapshot) in replayed.stderr
    then = run("members", "class-5a", "--views-at", str(position_then), "--format", "json")
    now = run("members", "class-5a", "--format", "json")
    assert then.exit_code == now.exit_code == 0, then.output + now.output
    members_then = {(m["profile_id"], m["status"]) for m in json.loads(then.stdout)}
    members_now = {(m["profile_id"], m["status"]) for m in json.loads(now.stdout)}
    assert members_then == {
        (f"{school}-s1", "member"),
        (f"{school}-s2", "member"),
        (f"{school}-t1", "member"),
    }
    assert members_now == set()
    by_file = run("audit", "--views-at", str(snapshot), "--format", "json")
    assert [r["action"] for r in json.loads(by_file.stdout)] == ["content-removed"]
    # the snapshot equals views caught up to exactly that position
    db = ViewsDatabase.sqlite_file(Path(settings.data_dir) / "views-then.sqlite")
    runner = ViewRunner(app, db)
    runner.ensure_tables()
    runner.catch_up(upto=position_then)
    expected = digests(db, db.live, runner.names)
    db.dispose()
    rows = {r["view"]: r["sha256"] for r in json.loads(replayed.stdout)}
    assert {k: v for k, v in rows.items() if k in expected} == expected
    assert removal is queries


def test_as_of_a_time_by_when_things_happened(
    run: Any, recorded: AuditLog, history: list[dict[str, Any]], school: str
) -> None:
    """The whole history was recorded just now, but --as-of asks when acts happened."""
    removal = next(c for c in history if c["type"] == "remove-content")
    moment = datetime.fromisoformat(removal["occurred_at"])
    replayed = run("replay", "--as-of", moment.isoformat(), "--format", "json")
    assert replayed.exit_code == 0, replayed.output
    notifications = recorded.recorder.select_notifications(1, 10_000)
    position = next(n.id for n in notifications if "ContentRemoved" in n.topic)
    assert f"every act up to position {position}" in replayed.stderr
    audit = run("audit", "--views-at", str(position), "--format", "json")
    assert [r["action"] for r in json.loads(audit.stdout)] == ["content-removed"]
    # by recording time the same moment (in 2024) is before anything was recorded
    recorded_then = run("replay", "--as-recorded-at", moment.isoformat())
    assert recorded_then.exit_code == 1
    assert "nothing had been recorded by" in recorded_then.stderr
    assert "use --as-of" in recorded_then.stderr


def test_as_of_before_anything_happened_says_so(run: Any, recorded: AuditLog) -> None:
    early = run("replay", "--as-of", "2024-12-01")
    assert early.exit_code == 1
    assert "nothing had happened by 2024-12-01 23:59" in early.stderr
    assert "the first act in the log happened at 2024-12-02 10:01" in early.stderr  # +02:00
    naive = run("replay", "--as-of", "2024-12-02T10:00")
    assert naive.exit_code == 2
    assert "has no timezone" in naive.stderr


def test_upto_a_position_and_a_missing_snapshot(run: Any, recorded: AuditLog) -> None:
    assert run("replay", "--upto", "10").exit_code == 0
    assert run("chats", "--views-at", "10", "--format", "json").exit_code == 0
    missing = run("chats", "--views-at", "11")
    assert missing.exit_code == 2
    assert "replay --upto 11" in missing.stderr


# -- listings -------------------------------------------------------------------------------------


def test_audit_filters(run: Any, recorded: AuditLog, school: str) -> None:
    def positions(*args: str) -> list[str]:
        result = run("audit", "--format", "jsonl", *args)
        assert result.exit_code == 0, result.output
        return [json.loads(line)["action"] for line in result.stdout.splitlines()]

    everything = positions("--school", school)
    assert len(everything) == 5
    assert positions("--school", school, "--authority", "2.5") == [
        "content-removed",
        "liability-warned",
    ]
    assert positions("--school", school, "--ground", "law") == ["content-blocked"]
    assert positions("--moderator", f"{school}-admin") == [
        "content-blocked",
        "member-blocked",
        "member-unblocked",
    ]
    assert positions("--target", f"{school}-s1") == ["content-blocked"]
    assert positions("--school", school, "--action", "member-blocked") == ["member-blocked"]
    assert len(positions("--school", school, "--chat", "class-5a")) == 5
    assert positions("--school", school, "--chat", "olymp") == []
    assert positions(
        "--school", school, "--since", "2024-12-02T08:25:00+00:00", "--until", "2024-12-02T08:26Z"
    ) == ["liability-warned", "content-blocked"]
    # a bare date is a day in the school's zone: --until through its end
    assert len(positions("--school", school, "--since", "2024-12-02", "--until", "2024-12-02")) == 5
    assert positions("--school", school, "--since", "2024-12-03") == []
    assert positions("--school", school, "--limit", "2", "--newest-first") == [
        "member-unblocked",
        "member-blocked",
    ]
    bad = run("audit", "--since", "yesterday")
    assert bad.exit_code == 2


def test_audit_exports_hold_exactly_the_table_rows(
    run: Any, recorded: AuditLog, school: str
) -> None:
    args = ("audit", "--school", school, "--authority", "2.3")
    as_json = json.loads(run(*args, "--format", "json").stdout)
    as_jsonl = [json.loads(line) for line in run(*args, "--format", "jsonl").stdout.splitlines()]
    as_csv = list(csv.DictReader(io.StringIO(run(*args, "--format", "csv").stdout)))
    table = run(*args, "--format", "table").stdout
    assert as_json == as_jsonl
    assert len(as_json) == len(as_csv) == 3
    for from_json, from_csv in zip(as_json, as_csv, strict=True):
        assert {k: "" if v is None else str(v) for k, v in from_json.items()} == from_csv
    for row in as_json:
        assert str(row["position"]) in table
        assert row["action"] in table
    assert sum(1 for line in table.splitlines() if school in line) >= 3


def test_listing_commands_catch_up_and_format(
    run: Any, recorded: AuditLog, school: str, settings: Settings
) -> None:
    status = run("views", "status", "--format", "json")
    lags = {r["view"]: r for r in json.loads(status.stdout)}
    head = recorded.recorder.max_notification_id()
    assert lags["audit_trail"]["lag"] == head  # nobody has applied the log yet
    chats = json.loads(run("chats", "--school", school, "--format", "json").stdout)
    assert len(chats) == 7
    status = json.loads(run("views", "status", "--format", "json").stdout)
    assert {r["lag"] for r in status} == {0}
    incidents = json.loads(run("incidents", "--all", "--format", "json").stdout)
    assert {i["incident_id"] for i in incidents} == {"inc-1", "inc-2"}
    first = next(i for i in incidents if i["incident_id"] == "inc-1")
    assert first["provenance"]["links"][0]["action"] == "linked"
    open_only = json.loads(run("incidents", "--format", "json").stdout)
    assert [i["incident_id"] for i in open_only] == ["inc-2"]
    overdue = run(
        "incidents", "--overdue", "--ack-deadline-hours", "1", "--now", "2024-12-03T00:00Z",
        "--format", "json",
    )  # fmt: skip
    assert [i["incident_id"] for i in json.loads(overdue.stdout)] == ["inc-2"]
    stale = run("invitations", "--stale", "0", "--format", "json")
    assert json.loads(stale.stdout) == []
    links = json.loads(run("links", "--profile", f"{school}-s1", "--format", "json").stdout)
    assert [link["action"] for link in links] == ["linked", "unlinked"]
    current_links = run("links", "--current", "--school", school, "--format", "csv")
    assert f"{school}-ej-t1" in current_links.stdout
    stats = run("stats", "--school", school, "--totals", "--format", "json")
    assert {"metric": "incidents", "key": "resolved", "value": 1}.items() <= next(
        r for r in json.loads(stats.stdout) if r["metric"] == "incidents" and r["key"] == "resolved"
    ).items()
    classes = run("classes", "--school", school)
    assert "5a" in classes.stdout
    members = run("members", "parents-5a", "--school", school)
    assert f"{school}-p1" in members.stdout
