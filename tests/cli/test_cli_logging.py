"""Log lines go to stderr, as JSON or for a console, carrying the command's ids."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import structlog
from cli_helpers import Cli, jsonl

from sferum_audit.application.logging_setup import (
    LogFormat,
    bound_command,
    configure_logging,
    resolve_format,
    resolve_level,
)
from sferum_audit.application.settings import Settings

REGISTER = {
    "command_id": "log-1",
    "correlation_id": "request-9",
    "type": "register-school",
    "school_id": "log-school",
    "actor": {"id": "director", "role": "school-administration"},
    "occurred_at": "2024-12-02T08:00:00+02:00",
    "name": "Школа",
    "order_ref": "приказ № 1",
    "first_administrator_id": "adm",
}


def test_recording_logs_json_lines_with_command_and_correlation_ids_on_stderr(
    sqlite_cli: Cli,
) -> None:
    result = sqlite_cli(
        "--log-level", "DEBUG", "--log-format", "json", "record", "-", input=json.dumps(REGISTER)
    )

    assert result.exit_code == 0, result.output
    [line] = [entry for entry in jsonl(result.stderr) if entry["event"] == "command handled"]
    assert line["command_id"] == "log-1"
    assert line["correlation_id"] == "request-9"
    assert line["level"] == "debug"
    assert "command handled" not in result.stdout


def test_debug_lines_are_hidden_at_the_default_level(sqlite_cli: Cli) -> None:
    result = sqlite_cli("--log-level", "INFO", "record", "-", input=json.dumps(REGISTER))

    assert result.exit_code == 0
    assert "command handled" not in result.stderr


def test_console_format_writes_readable_lines(sqlite_cli: Cli) -> None:
    result = sqlite_cli(
        "--log-level", "DEBUG", "--log-format", "console", "record", "-", input=json.dumps(REGISTER)
    )

    [line] = [entry for entry in result.stderr.splitlines() if "command handled" in entry]
    assert "command_id=log-1" in line
    assert not line.startswith("{")


@pytest.mark.parametrize(
    ("configured", "terminal", "chosen"),
    [
        ("auto", True, LogFormat.console),
        ("auto", False, LogFormat.json),
        ("JSON", True, LogFormat.json),
        ("console", False, LogFormat.console),
    ],
)
def test_auto_means_console_on_a_terminal_and_json_otherwise(
    configured: str, terminal: bool, chosen: LogFormat
) -> None:
    assert resolve_format(configured, terminal) is chosen


def test_unknown_formats_and_levels_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="SFERUM_AUDIT_LOG_FORMAT"):
        resolve_format("xml", False)
    with pytest.raises(ValueError, match="SFERUM_AUDIT_LOG_LEVEL"):
        resolve_level("loud")
    assert resolve_level("warning") == 30


def test_bound_command_ids_reach_library_and_application_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(Settings(data_dir=tmp_path, log_format="json", log_level="INFO"))
    import logging

    with bound_command("cmd-5", None):
        structlog.get_logger("app").info("handled")
        logging.getLogger("some.library").warning("slow query")
    structlog.get_logger("app").info("after")

    lines = jsonl(capsys.readouterr().err)
    assert [(e["event"], e.get("command_id"), e.get("correlation_id")) for e in lines] == [
        ("handled", "cmd-5", "cmd-5"),
        ("slow query", "cmd-5", "cmd-5"),
        ("after", None, None),
    ]
