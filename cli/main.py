"""The ``sferum-audit`` command: global options, logging, and every area's subcommands.

The root callback turns the global options into ``Settings`` (options override the
``SFERUM_AUDIT_*`` environment) and leaves them on the context, where each command finds
them with ``ctx.find_object(Settings)``. Failures of any command are reported by
``sferum_audit.cli.errors.GuardedGroup`` as one line on stderr.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from sferum_audit.application.logging_setup import LogFormat, configure_logging
from sferum_audit.application.settings import Settings
from sferum_audit.cli import demo, events, integrity_commands, pipeline, records, sources, views
from sferum_audit.cli import web as web_cli
from sferum_audit.cli.errors import GuardedGroup

app = typer.Typer(
    name="sferum-audit",
    cls=GuardedGroup,
    help="Event-sourced moderation and audit log for school chats on the Sferum platform.",
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals may hold a database password
)


@app.callback(no_args_is_help=True)
def main(
    ctx: typer.Context,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="Folder of the embedded SQLite store (env SFERUM_AUDIT_DATA_DIR).",
            show_default=False,
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="PostgreSQL URL of the event store (env SFERUM_AUDIT_DATABASE_URL).",
            show_default=False,
        ),
    ] = None,
    log_format: Annotated[
        LogFormat | None,
        typer.Option(
            "--log-format",
            help="Log lines on stderr: console, json, or auto (env SFERUM_AUDIT_LOG_FORMAT).",
            show_default=False,
        ),
    ] = None,
    log_level: Annotated[
        str | None,
        typer.Option(
            "--log-level",
            help="DEBUG, INFO, WARNING, ERROR (env SFERUM_AUDIT_LOG_LEVEL).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Record and read the audit log of a school's Sferum chats (regulation: REGULATION.md)."""
    overrides: dict[str, Any] = {
        "data_dir": data_dir,
        "database_url": database_url,
        "log_format": log_format.value if log_format else None,
        "log_level": log_level,
    }
    settings = Settings(**{name: value for name, value in overrides.items() if value is not None})
    configure_logging(settings)
    ctx.obj = settings


records.register(app)
events.register(app)
demo.register(app)
views.register(app)
pipeline.register(app)
integrity_commands.register(app)
web_cli.register(app)
sources.register_commands(app)


def run() -> None:
    """The console entry point ``sferum-audit``."""
    app()
