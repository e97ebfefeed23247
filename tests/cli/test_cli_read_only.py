"""Read commands open the stores read-only, work on a write-protected copy, and refuse a
data folder that holds no store instead of answering from an empty one."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from cli_helpers import Cli, assert_one_line_error, max_position

from sferum_audit.application import store
from sferum_audit.application.bootstrap import build_audit_log
from sferum_audit.application.commands import parse_command
from sferum_audit.application.sample_school import sample_school
from sferum_audit.application.service import AuditLog
from sferum_audit.application.settings import Settings
from sferum_audit.cli.errors import database_error_types


def folder_state(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with a digest of its bytes."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_a_log_opened_for_reading_cannot_write(settings: Settings, app: AuditLog) -> None:
    app.handle_batch([parse_command(c) for c in sample_school("sch-ro")[:3]])
    reader = build_audit_log(settings, read_only=True)
    try:
        assert max_position(reader) == max_position(app)
        command = parse_command(sample_school("sch-ro2")[0])
        with pytest.raises(database_error_types()):
            reader.handle(command)
    finally:
        reader.close()
    assert max_position(app) > 0
    assert app.repository.get  # the writer is untouched


def assert_refused_and_nothing_made(cli: Cli, typo: Path, args: tuple[str, ...]) -> None:
    """``--data-dir typo ARGS`` fails with one error line naming the folder, and makes no
    folder."""
    result = cli("--data-dir", str(typo), *args)

    assert_one_line_error(result, "no event store", str(typo), "does not exist")
    assert not typo.exists()


@pytest.mark.parametrize(
    "args",
    [("audit",), ("incidents",), ("events",), ("verify",), ("replay", "--upto", "3"), ("stats",)],
    ids=lambda a: a[0],
)
def test_a_folder_without_a_store_is_an_error_and_stays_empty(
    sqlite_cli: Cli, tmp_path: Path, args: tuple[str, ...]
) -> None:
    assert_refused_and_nothing_made(sqlite_cli, tmp_path / "sferum-audit-dta", args)


@pytest.mark.parametrize(
    "args",
    [
        ("public-key",),
        ("seal",),
        ("prove", "1"),
        ("forget", "s-1", "--requested-by", "p-1", "--basis", "b", "--school", "s", "--by", "a"),
        ("forget-rejected", "1", "--basis", "b", "--by", "a"),
    ],
    ids=lambda a: a[0],
)
def test_integrity_and_erasure_commands_on_a_folder_without_a_store_make_nothing(
    sqlite_cli: Cli, tmp_path: Path, args: tuple[str, ...]
) -> None:
    assert_refused_and_nothing_made(sqlite_cli, tmp_path / "sferum-audit-dta", args)


def test_listings_on_a_write_protected_copy_change_nothing_and_are_current(
    sqlite_cli: Cli,
    sqlite_audit_log: AuditLog,
    sqlite_school: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The views are behind the log (nothing read them yet): a copy the auditor may not
    write gets them brought up to date in a scratch copy, and not one byte of the data
    folder changes."""
    folder = sqlite_cli.settings.data_dir
    sqlite_audit_log.close()
    monkeypatch.setattr(store, "may_write", lambda path: False)
    before = folder_state(folder)

    audit = sqlite_cli("audit", "-f", "json")
    incidents = sqlite_cli("incidents", "--all", "-f", "json")
    events = sqlite_cli("events", "--limit", "5", "-f", "json")

    assert audit.exit_code == incidents.exit_code == events.exit_code == 0, audit.output
    assert len(json.loads(audit.stdout)) == 13
    assert len(json.loads(incidents.stdout)) == 2
    assert folder_state(folder) == before


def test_views_status_on_a_write_protected_copy_reports_the_lag_and_changes_nothing(
    sqlite_cli: Cli,
    sqlite_audit_log: AuditLog,
    sqlite_school: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = sqlite_cli.settings.data_dir
    head = max_position(sqlite_audit_log)
    sqlite_audit_log.close()
    monkeypatch.setattr(store, "may_write", lambda path: False)
    before = folder_state(folder)

    status = sqlite_cli("views", "status", "-f", "json")

    assert status.exit_code == 0, status.output
    rows = json.loads(status.stdout)
    assert rows
    assert {(r["head"], r["lag"]) for r in rows} == {(head, head)}  # nothing read them yet
    assert folder_state(folder) == before


def test_replay_check_on_a_write_protected_copy_compares_and_changes_nothing(
    sqlite_cli: Cli,
    sqlite_audit_log: AuditLog,
    sqlite_school: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = sqlite_cli.settings.data_dir
    sqlite_audit_log.close()
    assert sqlite_cli("audit").exit_code == 0  # the views are built while it may write
    monkeypatch.setattr(store, "may_write", lambda path: False)
    before = folder_state(folder)

    result = sqlite_cli("replay", "--check")

    assert result.exit_code == 0, result.output
    assert "views match a rebuild" in result.stderr
    assert folder_state(folder) == before


def test_the_event_store_is_opened_with_a_read_only_uri(
    sqlite_settings: Settings, sqlite_audit_log: AuditLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    writable = store.persistence_environment(sqlite_settings, read_only=True)
    monkeypatch.setattr(store, "may_write", lambda path: False)
    pending = store.persistence_environment(sqlite_settings, read_only=True)  # WAL not empty
    sqlite_audit_log.close()  # the last writer leaves: its write-ahead log is folded in
    protected = store.persistence_environment(sqlite_settings, read_only=True)

    assert writable["SQLITE_DBNAME"].endswith("events.sqlite?mode=ro")
    assert writable["CREATE_TABLE"] == "n"
    assert protected["SQLITE_DBNAME"].endswith("events.sqlite?mode=ro&immutable=1")
    assert pending["SQLITE_DBNAME"] == writable["SQLITE_DBNAME"]  # immutable would miss it
