"""Log lines on stderr through structlog: readable on a terminal, JSON for machines.

Every entry point calls ``configure_logging`` once with its settings. stdout stays free for
the output people and scripts read; log lines, including the standard ``logging`` records
of libraries, go to stderr in the same format. ``bound_command`` adds a command's
``command_id`` and ``correlation_id`` to every line logged while it is handled.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import Any

import structlog
from structlog.typing import Processor

from sferum_audit.application.settings import Settings


class LogFormat(StrEnum):
    """How log lines look: ``auto`` is ``console`` on a terminal and ``json`` otherwise."""

    auto = "auto"
    console = "console"
    json = "json"


def resolve_format(log_format: str, is_terminal: bool) -> LogFormat:
    """The concrete format for a configured one; ``ValueError`` names the accepted values."""
    try:
        chosen = LogFormat(log_format.lower())
    except ValueError:
        accepted = ", ".join(f.value for f in LogFormat)
        raise ValueError(
            f"log format must be one of {accepted}, not {log_format!r} (SFERUM_AUDIT_LOG_FORMAT)"
        ) from None
    if chosen is LogFormat.auto:
        return LogFormat.console if is_terminal else LogFormat.json
    return chosen


def resolve_level(log_level: str) -> int:
    """The numeric level of a name such as ``INFO``; ``ValueError`` if there is no such level."""
    names = logging.getLevelNamesMapping()
    level = names.get(log_level.upper())
    if level is None:
        accepted = ", ".join(("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"))
        raise ValueError(
            f"log level must be one of {accepted}, not {log_level!r} (SFERUM_AUDIT_LOG_LEVEL)"
        )
    return level


def configure_logging(settings: Settings) -> None:
    """Sends structlog and standard ``logging`` records to stderr in the configured format.

    Safe to call again (each CLI invocation does): the previous configuration is replaced.
    The stream is looked up at every write, so a replaced ``sys.stderr`` (tests) is honoured.
    """
    level = resolve_level(settings.log_level)
    fmt = resolve_format(settings.log_format, sys.stderr.isatty())
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Processor
    if fmt is LogFormat.json:
        shared.append(structlog.processors.format_exc_info)
        renderer = structlog.processors.JSONRenderer(ensure_ascii=False)
    else:
        # Plain tracebacks: the default rich formatter prints local variables, which may
        # hold a database password.
        renderer = structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback
        )
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )
    handler = _CurrentStderrHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)


@contextmanager
def bound_command(command_id: str, correlation_id: str | None) -> Iterator[None]:
    """Adds the command's ids to every log line written inside the ``with`` block."""
    with structlog.contextvars.bound_contextvars(
        command_id=command_id, correlation_id=correlation_id or command_id
    ):
        yield


def _stderr_logger(*_args: Any) -> structlog.WriteLogger:
    return structlog.WriteLogger(sys.stderr)


class _CurrentStderrHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` is at the time of the record."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:  # logging must never break the command that logs
            self.handleError(record)
