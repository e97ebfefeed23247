"""Deciding a batch's commands in stream order, and finding the one that makes it fail.

``decide_in_order`` hands the commands to ``AuditLog.handle_batch`` (one transaction). If
that fails unexpectedly (a bug, a message the code cannot take), the failure is logged and
the batch is halved: the first half is decided before the second, and the search stops at
the first command that fails on its own. So every command before that one is decided, that
one carries the error, and nothing after it is decided: a school's commands are never
decided past one that has to be tried again.

A transient failure (the store or the network) stops the search at once: every command not
yet decided carries it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from eventsourcing.persistence import DataError, PersistenceError

from sferum_audit.application.commands import Command
from sferum_audit.application.service import CommandResult

log = structlog.get_logger("sferum_audit.ingest")

RunSync = Callable[..., Awaitable[Any]]


def is_transient(error: BaseException) -> bool:
    """Errors of the store or the network: retry later, the command itself is fine."""
    if isinstance(error, DataError):
        return False
    if isinstance(error, PersistenceError | ConnectionError | TimeoutError | OSError):
        return True
    if isinstance(error, sqlite3.OperationalError):
        return True
    module = type(error).__module__
    name = type(error).__name__
    return (module.startswith("psycopg") and name in {"OperationalError", "PoolTimeout"}) or (
        module.startswith("sqlalchemy") and name in {"OperationalError", "InterfaceError"}
    )


@dataclass(frozen=True, slots=True)
class Decision:
    """The results of the longest decided prefix, and the error of the command after it."""

    results: list[CommandResult]
    failure: BaseException | None = None


async def decide_in_order(
    run_sync: RunSync,
    handle_batch: Callable[[Sequence[Command]], list[CommandResult]],
    commands: Sequence[Command],
) -> Decision:
    """Decides ``commands`` in order, narrowing an unexpected failure down to one command."""
    try:
        return Decision(await run_sync(handle_batch, commands))
    except Exception as error:
        if is_transient(error):
            return Decision([], error)
        if len(commands) == 1:
            log.error(
                "command fails unexpectedly",
                command_id=commands[0].command_id,
                error=repr(error),
            )
            return Decision([], error)
        log.warning(
            "batch fails unexpectedly; narrowing it down", size=len(commands), error=repr(error)
        )
    middle = len(commands) // 2
    first = await decide_in_order(run_sync, handle_batch, commands[:middle])
    if first.failure is not None:
        return first
    second = await decide_in_order(run_sync, handle_batch, commands[middle:])
    return Decision(first.results + second.results, second.failure)
