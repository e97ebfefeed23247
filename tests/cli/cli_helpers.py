"""Running ``sferum-audit`` in-process against one store, and checking what it printed."""

from __future__ import annotations

import json
from typing import Any

from typer.testing import CliRunner, Result

from sferum_audit.application.service import AuditLog
from sferum_audit.application.settings import Settings
from sferum_audit.cli.main import app as cli_app


def environment(settings: Settings) -> dict[str, str | None]:
    """The variables that point the CLI at ``settings``' store (``None`` unsets one).

    The store reaches the CLI through the ``SFERUM_AUDIT_*`` environment, as in
    production; PostgreSQL tests pass their own schema that way too.
    """
    return {
        "SFERUM_AUDIT_DATA_DIR": str(settings.data_dir),
        "SFERUM_AUDIT_DATABASE_URL": settings.database_url,
        "SFERUM_AUDIT_DATABASE_SCHEMA": settings.database_schema,
        "SFERUM_AUDIT_LOG_FORMAT": "json",
        "SFERUM_AUDIT_LOG_LEVEL": "WARNING",
        "COLUMNS": "200",
    }


class Cli:
    """Runs ``sferum-audit ARGS`` in-process against one store."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | bytes | None = None, **env: str | None) -> Result:
        return self.runner.invoke(
            cli_app, list(args), input=input, env=environment(self.settings) | env
        )


def assert_one_line_error(result: Result, *fragments: str, exit_code: int = 1) -> str:
    """The command failed with ``exit_code`` and one ``error:`` line on stderr naming
    every fragment; no traceback anywhere."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == exit_code, (result.exit_code, result.output)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def max_position(app: AuditLog) -> int:
    """The position of the last event in the log (0 if it is empty)."""
    return app.recorder.max_notification_id() or 0


def jsonl(text: str) -> list[dict[str, Any]]:
    """The objects of a JSON Lines text."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]
