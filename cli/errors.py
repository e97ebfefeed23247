"""The one place where a failure becomes one line on stderr and an exit code, never a traceback.

Every command of ``sferum-audit`` runs inside ``GuardedGroup.main``: a broken rule, a bad
file, bad JSON, a wrong flag value or an unreachable database is reported as a single line
a person can act on. Only a bug (an exception nobody expected) says so; its traceback is
logged at DEBUG level (``--log-level DEBUG``).
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import typer
from typer._click import exceptions as click_exceptions  # typer vendors click here
from typer.core import TyperGroup

if TYPE_CHECKING:
    from pydantic import ValidationError

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_BUG = 70  # EX_SOFTWARE: an internal error


def one_line(text: str) -> str:
    """``text`` with its lines joined and runs of whitespace collapsed."""
    return " ".join(text.split())


def database_error_types() -> tuple[type[BaseException], ...]:
    """Errors of the database drivers in use; a driver never imported raised nothing."""
    from eventsourcing.persistence import PersistenceError

    found: list[type[BaseException]] = [sqlite3.Error, PersistenceError]
    for module_name, class_name in (
        ("psycopg", "Error"),
        ("psycopg_pool", "PoolTimeout"),
        ("sqlalchemy.exc", "SQLAlchemyError"),
    ):
        module = sys.modules.get(module_name)
        if module is not None:
            found.append(getattr(module, class_name))
    return tuple(found)


def describe_database_error(error: BaseException) -> str:
    """What went wrong with the database, without the driver's wrapping or any URL."""
    cause = getattr(error, "orig", None) or error  # SQLAlchemy wraps the driver's error
    text = one_line(str(cause)) or type(cause).__name__
    names = {cls.__name__ for cls in (*type(error).__mro__, *type(cause).__mro__)}
    if names & {"OperationalError", "InterfaceError", "PoolTimeout"}:
        return (
            f"database unavailable: {text} "
            "(check --database-url / SFERUM_AUDIT_DATABASE_URL, or --data-dir)"
        )
    return f"database error: {text}"


def describe_settings_error(error: ValidationError) -> str:
    """Names the environment variable (or the option) of each bad setting."""
    problems = (
        f"SFERUM_AUDIT_{'_'.join(map(str, p['loc'])).upper()}: {p['msg']}"
        for p in error.errors(include_url=False)
    )
    return "invalid setting " + "; ".join(problems)


def describe(error: BaseException) -> tuple[str, int] | None:
    """The line to print and the exit code for an expected failure; ``None`` for a bug.

    The libraries are imported here, when something failed, not when the CLI starts."""
    from pydantic import ValidationError

    from sferum_audit.application.commands import describe_validation_error
    from sferum_audit.application.settings import Settings
    from sferum_audit.domain.errors import DomainError

    if isinstance(error, click_exceptions.UsageError):
        hint = ""
        if error.ctx is not None:
            hint = f" (see '{error.ctx.command_path} --help')"
        return one_line(error.format_message()) + hint, error.exit_code
    if isinstance(error, click_exceptions.ClickException):
        return one_line(error.format_message()), error.exit_code
    if isinstance(error, click_exceptions.Abort):
        return "aborted", EXIT_FAILED
    if isinstance(error, DomainError):
        return f"{error.code}: {one_line(error.message)}", EXIT_FAILED
    if isinstance(error, database_error_types()):
        return describe_database_error(error), EXIT_FAILED
    if isinstance(error, ValidationError):
        if error.title == Settings.__name__:
            return describe_settings_error(error), EXIT_FAILED
        return f"invalid {error.title}: {describe_validation_error(error)}", EXIT_FAILED
    if isinstance(error, OSError):
        if error.strerror and error.filename is not None:
            return f"{error.filename}: {error.strerror}", EXIT_FAILED
        return one_line(str(error)) or type(error).__name__, EXIT_FAILED
    if isinstance(error, ValueError):
        return one_line(str(error)), EXIT_FAILED
    return None


def report(error: BaseException) -> int:
    """Prints the one line for ``error`` on stderr and returns the exit code to use."""
    import structlog

    described = describe(error)
    if described is None:
        if structlog.is_configured():
            structlog.get_logger(__name__).debug("unexpected error", exc_info=error)
        message = (
            f"unexpected error ({type(error).__name__}): {one_line(str(error))}; "
            "this is a bug, rerun with --log-level DEBUG to see where it happened"
        )
        described = message, EXIT_BUG
    message, code = described
    typer.echo(f"error: {message}", err=True)
    return code


class GuardedGroup(TyperGroup):
    """The root command group: runs the command line and turns any failure into one line."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            result = super().main(
                args=args,
                prog_name=prog_name,
                complete_var=complete_var,
                standalone_mode=False,
                windows_expand_args=windows_expand_args,
                **extra,
            )
            code = result if isinstance(result, int) else 0
        except click_exceptions.NoArgsIsHelpError as error:
            error.show()
            code = error.exit_code
        except Exception as error:
            code = report(error)
        if standalone_mode:
            sys.exit(code)
        return code
