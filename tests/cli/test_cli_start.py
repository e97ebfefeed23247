"""The CLI starts without the ingest stack: commands load when they run, and the table of
commands ``--help`` lists is the set the modules register."""

from __future__ import annotations

import subprocess
import sys

import typer
import typer.main
from cli_helpers import Cli

from sferum_audit.cli.main import COMMANDS, LazyGroup, app


def registered_commands() -> set[str]:
    group = typer.main.get_command(app)
    assert isinstance(group, LazyGroup)
    for module in {m for m, _ in COMMANDS.values()}:
        group.load(module)
    return set(group.commands)


def test_the_listed_commands_are_exactly_the_registered_ones() -> None:
    assert registered_commands() == set(COMMANDS)


def test_help_lists_every_command(sqlite_cli: Cli) -> None:
    result = sqlite_cli("--help", COLUMNS="200")

    assert result.exit_code == 0
    shown = " ".join(result.stdout.split())
    for name, (_, text) in COMMANDS.items():
        assert f" {name} {text}" in shown


def modules_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after ``code``."""
    probe = f"{code}\nimport sys\nprint('\\n'.join(sys.modules))"
    done = subprocess.run(  # this interpreter, our own code
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True
    )
    return set(done.stdout.split())


def test_starting_and_reading_do_not_import_the_ingest_stack(sqlite_cli: Cli) -> None:
    started = modules_after("import sferum_audit.cli.main")
    read = modules_after(
        "from sferum_audit.cli.main import app\n"
        "try:\n    app(['regulation'])\nexcept SystemExit:\n    pass"
    )

    for loaded in (started, read):
        assert "faststream" not in loaded
        assert "nats" not in loaded
        assert "sferum_audit.application.commands" not in loaded
    assert "sqlalchemy" not in started
    assert "sferum_audit.cli.regulation" in read
    assert isinstance(app, typer.Typer)
