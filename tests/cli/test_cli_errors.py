"""Every failure of ``sferum-audit`` is one line on stderr and a non-zero exit, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import Cli, assert_one_line_error

from sferum_audit.application.settings import Settings
from sferum_audit.cli import records
from sferum_audit.cli.errors import EXIT_BUG, EXIT_USAGE, describe


def test_an_unreachable_postgresql_is_one_line_error(sqlite_cli: Cli) -> None:
    url = "postgresql://auditor:secret-password@127.0.0.1:1/audit"

    result = sqlite_cli("--database-url", url, "events")

    line = assert_one_line_error(result, "database unavailable", "127.0.0.1", "port 1")
    assert "secret-password" not in line
    assert "sqlalche.me" not in line  # the driver's own message, not a wrapper's


def test_an_unknown_postgresql_host_is_one_line_error(sqlite_cli: Cli) -> None:
    result = sqlite_cli("events", SFERUM_AUDIT_DATABASE_URL="postgresql://db.invalid:5432/x")

    assert_one_line_error(result, "database unavailable", "db.invalid")


def test_a_database_url_that_is_not_postgresql_is_one_line_error(sqlite_cli: Cli) -> None:
    result = sqlite_cli("--database-url", "mysql://localhost/audit", "events")

    assert_one_line_error(result, "must be a postgresql:// URL")


def test_a_bad_flag_value_is_one_line_usage_error(sqlite_cli: Cli) -> None:
    result = sqlite_cli("events", "--format", "xml")

    assert_one_line_error(result, "'--format'", "'xml'", "events --help", exit_code=EXIT_USAGE)


def test_an_unknown_option_is_one_line_usage_error(sqlite_cli: Cli) -> None:
    result = sqlite_cli("record", "-", "--colour")

    assert_one_line_error(result, "--colour", exit_code=EXIT_USAGE)


def test_a_bad_setting_in_the_environment_names_its_variable(sqlite_cli: Cli) -> None:
    result = sqlite_cli("events", SFERUM_AUDIT_CONFLICT_RETRIES="many")

    assert_one_line_error(result, "SFERUM_AUDIT_CONFLICT_RETRIES", "integer")


def test_an_unknown_log_format_in_the_environment_is_one_line_error(sqlite_cli: Cli) -> None:
    result = sqlite_cli("events", SFERUM_AUDIT_LOG_FORMAT="xml")

    assert_one_line_error(result, "SFERUM_AUDIT_LOG_FORMAT", "'auto'", "'json'")


def test_a_bug_says_so_in_one_line_with_its_own_exit_code(
    sqlite_cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(settings: Settings) -> None:
        raise RuntimeError("wires crossed")

    monkeypatch.setattr(records, "build_audit_log", broken)

    result = sqlite_cli("report-access", "--school", "s", "--reporter", "p", "--noticed-at",
                        "2024-12-02T10:00Z", "--how", "h", "--description", "d")  # fmt: skip

    assert_one_line_error(
        result, "unexpected error", "RuntimeError", "wires crossed", exit_code=EXIT_BUG
    )


def test_a_data_folder_that_cannot_be_created_is_one_line_error(
    sqlite_cli: Cli, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")

    result = sqlite_cli("--data-dir", str(blocker / "data"), "events")

    assert_one_line_error(result, str(blocker))


def test_no_arguments_show_the_commands(sqlite_cli: Cli) -> None:
    result = sqlite_cli()

    assert "record" in result.output
    assert "events" in result.output
    assert "Traceback" not in result.output


def test_the_data_dir_option_overrides_the_environment(sqlite_cli: Cli, tmp_path: Path) -> None:
    chosen, ignored = tmp_path / "chosen", tmp_path / "ignored"

    record = ("moderate", "warn", "--school", "s", "--chat", "c", "--moderator", "t",
              "--ground", "4.2.4", "--member", "m", "--reason", "r")  # fmt: skip

    result = sqlite_cli("--data-dir", str(chosen), *record, SFERUM_AUDIT_DATA_DIR=str(ignored))
    read = sqlite_cli("--data-dir", str(chosen), "events", SFERUM_AUDIT_DATA_DIR=str(ignored))

    assert result.exit_code == 1, result.output  # refused: no such school; the store is made
    assert read.exit_code == 0, read.output
    assert (chosen / "events.sqlite").exists()
    assert not ignored.exists()


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ValueError("bad\nvalue"), "bad value"),
        (FileNotFoundError(2, "No such file or directory", "x.jsonl"), "x.jsonl: No such file"),
        (PermissionError("denied"), "denied"),
    ],
)
def test_expected_errors_are_described_on_one_line(error: Exception, expected: str) -> None:
    described = describe(error)

    assert described is not None
    message, code = described
    assert expected in message
    assert "\n" not in message
    assert code == 1


def test_unexpected_errors_are_not_described_as_expected() -> None:
    assert describe(KeyError("x")) is None
