"""The ``sferum-audit`` command: global options, logging, and every area's subcommands.

The root callback turns the global options into ``Settings`` (options override the
``SFERUM_AUDIT_*`` environment) and leaves them on the context, where each command finds
them with ``ctx.find_object(Settings)``. Failures of any command are reported by
``sferum_audit.cli.errors.GuardedGroup`` as one line on stderr.

Commands are loaded when they run (``LazyGroup``): ``--help`` imports nothing but typer,
and ``audit`` never imports the NATS/FastStream stack that only ``serve``, ``demo`` and
``rejected`` use (about a second of imports; ``scripts/bench_cli_start.py`` measures it).
``COMMANDS`` names each command's module and one-line help; a test checks it against the
commands the modules register.
"""

from __future__ import annotations

import importlib
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final

import typer
import typer.main

from sferum_audit.cli.errors import GuardedGroup

if TYPE_CHECKING:
    from typer._click import Command, Context, HelpFormatter


class LogFormat(StrEnum):
    """The values of ``--log-format`` (``Settings.log_format``), without importing it."""

    auto = "auto"
    console = "console"
    json = "json"


# name: (module in sferum_audit.cli, one line of help), in the order `--help` lists them
COMMANDS: Final[dict[str, tuple[str, str]]] = {
    "record": ("records", "Records commands from JSON Lines; exits 1 if any line was rejected."),
    "schema": ("records", "Prints the JSON Schema of the commands that record accepts."),
    "moderate": ("records", "Moderation actions (2.3-2.5): remove, block, warn, unblock."),
    "report-access": ("records", "Reports unauthorised access to an account (4.2.2)."),
    "incident": ("incidents", "A 4.2.2 report: acknowledge, contain, notify, resolve, dismiss."),
    "regulation": ("regulation", "The order's authorities and grounds, and what each allows."),
    "audit": ("views", "The audit trail: who moderated what, under which section, why."),
    "incidents": ("views", "The incident register (4.2.2): state, times, steps taken."),
    "invitations": ("views", "Invitation links with status and age; --stale for 2.3."),
    "chats": ("views", "Chats with kind, owner, moderators, members and blocked members."),
    "members": ("views", "Members of a chat with their roles, then its blocked members."),
    "links": ("views", "ElZhur account links: the history, or --current."),
    "classes": ("views", "Classes with their class teachers (2.5) and administrators (2.3)."),
    "stats": ("views", "Statistics for the administration (2.3), per school and class."),
    "events": ("events", "The raw log in global order: who did what, when, by which command."),
    "replay": ("views", "Rebuilds the views, checks them, or builds them as of a time."),
    "views": ("views", "The views kept from the log: status and following."),
    "seal": ("integrity_commands", "Signs a checkpoint over the log (tamper evidence)."),
    "verify": ("integrity_commands", "Checks every stored event against the signed checkpoints."),
    "prove": ("integrity_commands", "Writes an inclusion or consistency proof."),
    "check-proof": ("integrity_commands", "Checks a proof file offline with the public key."),
    "public-key": ("integrity_commands", "Prints the log's public (verifier) key."),
    "checkpoint": ("integrity_commands", "Prints a signed checkpoint, for auditors to keep."),
    "forget": ("integrity_commands", "Erases a person's personal data (152-FZ)."),
    "forget-rejected": ("integrity_commands", "Erases the payload of one refused command."),
    "serve": ("pipeline", "Runs the NATS consumers, the relay and the views until SIGTERM."),
    "rejected": ("pipeline", "Commands the ingest refused: why, and the payload."),
    "dead-letters": ("pipeline", "Commands whose every delivery failed, to retry or purge."),
    "demo": ("demo", "Runs the whole pipeline on the sample school and shows the result."),
    "source": ("sources", "Command sources: keys that may sign a school's commands."),
    "operator-key": ("sources", "The deployment operator's trusted public keys."),
    "web": ("web", "The web console for security staff, moderators, administrators."),
    "web-account": ("web", "Console accounts: an administrator creates and disables them."),
    "web-token": ("web", "API tokens for integrations: issue, revoke, list."),
}  # fmt: skip


class LazyGroup(GuardedGroup):
    """The root group: lists ``COMMANDS`` without importing them; imports a command's
    module (and registers everything it holds) the first time the command is used."""

    def list_commands(self, ctx: Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        if cmd_name not in self.commands:
            entry = COMMANDS.get(cmd_name)
            if entry is not None:
                self.load(entry[0], only=cmd_name)
            else:  # a command a module holds but COMMANDS does not name yet
                for module in {m for m, _ in COMMANDS.values()}:
                    self.load(module)
        return self.commands.get(cmd_name)

    def load(self, module_name: str, only: str | None = None) -> None:
        """Registers every command of ``sferum_audit.cli.<module_name>`` on this group, or
        just the command ``only`` when it is a plain command: typer takes some tens of
        milliseconds to build the eleven commands of ``views`` that one run does not use."""
        module = importlib.import_module(f"sferum_audit.cli.{module_name}")
        holder = typer.Typer(rich_markup_mode=None)
        module.register(holder)
        for info in holder.registered_commands if only is not None else ():
            callback = info.callback
            name = info.name or (typer.main.get_command_name(callback.__name__) if callback else "")
            if name == only:
                self.commands[name] = typer.main.get_command_from_info(
                    info,
                    pretty_exceptions_short=holder.pretty_exceptions_short,
                    rich_markup_mode=holder.rich_markup_mode,
                )
                return
        group = typer.main.get_group(holder)
        for name, command in group.commands.items():
            self.commands.setdefault(name, command)

    def format_commands(self, ctx: Context, formatter: HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, text) for name, (_, text) in COMMANDS.items()])


app = typer.Typer(
    name="sferum-audit",
    cls=LazyGroup,
    help="Event-sourced moderation and audit log for school chats on the Sferum platform.",
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals may hold a database password
    rich_markup_mode=None,  # help texts are plain: "[erased]" is a word, not a style tag
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
    """Record and read the audit log of a school's Sferum chats (the regulation's codes:
    `sferum-audit regulation`)."""
    from sferum_audit.application.logging_setup import configure_logging
    from sferum_audit.application.settings import Settings

    overrides: dict[str, Any] = {
        "data_dir": data_dir,
        "database_url": database_url,
        "log_format": log_format.value if log_format else None,
        "log_level": log_level,
    }
    settings = Settings(**{name: value for name, value in overrides.items() if value is not None})
    configure_logging(settings)
    ctx.obj = settings


def run() -> None:
    """The console entry point ``sferum-audit``."""
    app()
