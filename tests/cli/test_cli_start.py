"""The CLI starts without the ingest stack: commands load when they run, and the table of
commands ``--help`` lists is the set the modules register."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from contextlib import closing

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


def test_reading_the_audit_trail_on_sqlite_does_not_import_the_postgresql_driver(
    sqlite_cli: Cli, sqlite_school: str
) -> None:
    data_dir = str(sqlite_cli.settings.data_dir)
    read = modules_after(
        "import os\n"
        f"os.environ['SFERUM_AUDIT_DATA_DIR'] = {data_dir!r}\n"
        "from sferum_audit.cli.main import app\n"
        "try:\n    app(['audit', '--limit', '1'])\nexcept SystemExit as done:\n"
        "    assert not done.code, done.code"
    )

    assert "sferum_audit.projections.audit_trail" in read
    assert "psycopg" not in read


def listing_modules(cli: Cli) -> set[str]:
    """The modules a fresh ``sferum-audit audit`` holds once it has answered."""
    data_dir = str(cli.settings.data_dir)
    return modules_after(
        "import os\n"
        f"os.environ['SFERUM_AUDIT_DATA_DIR'] = {data_dir!r}\n"
        "from sferum_audit.cli.main import app\n"
        "try:\n    app(['audit', '--limit', '1'])\nexcept SystemExit as done:\n"
        "    assert not done.code, done.code"
    )


CATCH_UP_MACHINERY = (
    "sferum_audit.projections.runner",
    "sferum_audit.application.bootstrap",
    "sferum_audit.application.service",
)


def test_a_listing_catches_up_views_behind_the_log_and_then_reads_them_without_doing_so(
    sqlite_cli: Cli, sqlite_school: str
) -> None:
    behind = listing_modules(sqlite_cli)  # the sample school is not in the views yet
    current = listing_modules(sqlite_cli)

    assert set(CATCH_UP_MACHINERY) <= behind
    assert set(CATCH_UP_MACHINERY).isdisjoint(current)
    assert "sferum_audit.projections.queries" in current


def test_views_missing_a_column_this_version_reads_are_caught_up_before_listing(
    sqlite_cli: Cli, sqlite_school: str
) -> None:
    assert sqlite_cli("audit").exit_code == 0  # views at the head of the log
    views = sqlite_cli.settings.data_dir / "views.sqlite"
    with closing(sqlite3.connect(views)) as conn:
        conn.execute(
            'ALTER TABLE audit_trail DROP COLUMN "source_id"'
        )  # as an older version left it
        conn.commit()

    loaded = listing_modules(sqlite_cli)

    assert "sferum_audit.projections.runner" in loaded
    with closing(sqlite3.connect(views)) as conn:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(audit_trail)")}
    assert "source_id" in columns
