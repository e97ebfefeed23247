"""Running ``sferum-audit`` in-process against one store, and checking what it printed."""

from __future__ import annotations

import json
from typing import Any

from cli_environment import cli_environment
from typer.testing import CliRunner, Result

from sferum_audit.application.service import AuditLog
from sferum_audit.application.settings import Settings
from sferum_audit.cli.main import app as cli_app


class Cli:
    """Runs ``sferum-audit ARGS`` in-process against one store."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | bytes | None = None, **env: str | None) -> Result:
        return self.runner.invoke(
            cli_app, list(args), input=input, env=cli_environment(self.settings) | env
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


AT = "2024-12-02T08:00:00+02:00"


def command(command_id: str, type_: str, school: str, actor: str, role: str, **fields: Any) -> str:
    """One command as a JSON line, dated ``AT``."""
    data = {
        "command_id": command_id,
        "type": type_,
        "school_id": school,
        "actor": {"id": actor, "role": role},
        "occurred_at": AT,
        **fields,
    }
    return json.dumps(data, ensure_ascii=False)


def register(school: str) -> str:
    """``register-school`` for ``school`` by its director, administered by ``<school>-adm``."""
    return command(
        f"{school}-1",
        "register-school",
        school,
        "director",
        "school-administration",
        name="Школа",
        order_ref="приказ № 1",
        first_administrator_id=f"{school}-adm",
    )
