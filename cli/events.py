"""``sferum-audit events``: the raw log in global order, streamed in pages, in every format."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Annotated, Any
from uuid import UUID

import typer
from eventsourcing.persistence import StoredEvent

from sferum_audit.application.service import AuditLog, event_type_of
from sferum_audit.application.settings import Settings
from sferum_audit.application.store import locate_events
from sferum_audit.cli.output import ColumnsOption, Listing, OutputFormat, WideOption
from sferum_audit.cli.stores import reading_log

PAGE_SIZE = 1000
RECEIPT_PREFIX = "CommandReceipt."  # Recorded and Refused: bookkeeping, hidden by default
EVENT_COLUMNS = (
    "position",
    "recorded_at",
    "occurred_at",
    "type",
    "aggregate_id",
    "version",
    "actor_id",
    "actor_role",
    "command_id",
    "correlation_id",
    "data",
)
EVENTS = Listing(
    "Events",
    EVENT_COLUMNS,
    default=("position", "occurred_at", "type", "actor_id", "command_id"),
    drop=("command_id",),
    labels={"position": "#", "occurred_at": "happened", "actor_id": "actor"},
    empty="no event matches",
)
ENVELOPE_FIELDS = frozenset(
    {"originator_id", "originator_version", "originator_topic", "timestamp", "ctx"}
)


def type_matches(event_type: str, topic: str, wanted: Sequence[str]) -> bool:
    """``--type`` names the type (``Chat.ContentRemoved``), a suffix of it at a dot
    (``ContentRemoved``), or the whole topic."""
    return any(
        event_type == name or event_type.endswith("." + name) or topic == name for name in wanted
    )


def known_event_types() -> list[str]:
    """Every event type an aggregate of this product records (``Chat.ContentRemoved`` ...),
    found from the aggregate classes, so a new event is known without a list to update."""
    import importlib
    import pkgutil

    from eventsourcing.domain import CanMutateAggregate

    import sferum_audit.domain as domain
    from sferum_audit.domain.base import AuditedAggregate

    for module in pkgutil.iter_modules(domain.__path__):
        importlib.import_module(f"sferum_audit.domain.{module.name}")
    importlib.import_module("sferum_audit.application.receipts")
    importlib.import_module("sferum_audit.application.rejections")
    found: set[str] = set()
    pending = list(AuditedAggregate.__subclasses__())
    while pending:
        aggregate = pending.pop()
        pending.extend(aggregate.__subclasses__())
        for name, member in vars(aggregate).items():
            is_event = isinstance(member, type) and issubclass(member, CanMutateAggregate)
            if is_event and name != "Event":
                found.add(f"{aggregate.__name__}.{name}")
    return sorted(found)


def check_types(wanted: Sequence[str]) -> None:
    """Each ``--type`` must name a known event type (or its last part)."""
    known = known_event_types()
    for name in wanted:
        if not any(type_matches(k, "", [name]) or name.endswith(":" + k) for k in known):
            raise typer.BadParameter(
                f"{name!r} is no event type; valid: {', '.join(known)}", param_hint="--type"
            )


def log_in_order(app: AuditLog, start: int) -> Iterator[tuple[int, StoredEvent]]:
    """(position, stored event) of the whole log from ``start``, read in pages."""
    while page := app.recorder.select_notifications(start, PAGE_SIZE):
        for notification in page:
            yield notification.id, notification
        if len(page) < PAGE_SIZE:
            return
        start = page[-1].id + 1


def aggregate_in_order(app: AuditLog, aggregate_id: UUID) -> Iterator[tuple[int, StoredEvent]]:
    """(position, stored event) of one aggregate, read in pages without scanning the log."""
    after: int | None = None
    while page := app.recorder.select_events(aggregate_id, gt=after, limit=PAGE_SIZE):
        refs = [(aggregate_id, stored.originator_version) for stored in page]
        located = locate_events(app.recorder, refs)
        for stored in page:
            yield located[(aggregate_id, stored.originator_version)][0], stored
        if len(page) < PAGE_SIZE:
            return
        after = page[-1].originator_version


def event_row(app: AuditLog, position: int, stored: StoredEvent) -> dict[str, Any]:
    """One row of ``events``: the envelope every event has, and its own fields as ``data``."""
    event = app.mapper.to_domain_event(stored)
    context = getattr(event, "ctx", None)
    return {
        "position": position,
        "recorded_at": getattr(event, "timestamp", None),
        "occurred_at": context.occurred_at if context else None,
        "type": event_type_of(stored.topic),
        "aggregate_id": event.originator_id,
        "version": event.originator_version,
        "actor_id": context.actor_id if context else None,
        "actor_role": context.actor_role if context else None,
        "command_id": context.command_id if context else None,
        "correlation_id": context.correlation_id if context else None,
        "data": {k: v for k, v in vars(event).items() if k not in ENVELOPE_FIELDS},
    }


def select_rows(
    app: AuditLog,
    aggregate: UUID | None,
    types: Sequence[str],
    start: int,
    limit: int | None,
    include_receipts: bool,
) -> Iterator[dict[str, Any]]:
    """The rows ``events`` shows, decoded only once they pass the filters."""
    source = aggregate_in_order(app, aggregate) if aggregate else log_in_order(app, start)
    shown = 0
    for position, stored in source:
        event_type = event_type_of(stored.topic)
        if position < start:
            continue
        if types and not type_matches(event_type, stored.topic, types):
            continue
        if event_type.startswith(RECEIPT_PREFIX) and not (include_receipts or types):
            continue
        yield event_row(app, position, stored)
        shown += 1
        if shown == limit:
            return


def events(
    ctx: typer.Context,
    aggregate: Annotated[
        UUID | None,
        typer.Option("--aggregate", help="Only this aggregate's events.", show_default=False),
    ] = None,
    types: Annotated[
        list[str] | None,
        typer.Option(
            "--type", help="Only events of this type, e.g. Chat.ContentRemoved (repeatable)."
        ),
    ] = None,
    start: Annotated[
        int, typer.Option("--from", min=1, help="First position to show (inclusive).")
    ] = 1,
    limit: Annotated[
        int | None,
        typer.Option("--limit", min=1, help="At most this many events.", show_default=False),
    ] = None,
    include_receipts: Annotated[
        bool, typer.Option("--include-receipts", help="Also show command receipts.")
    ] = False,
    fmt: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="table, json, jsonl or csv.")
    ] = OutputFormat.table,
    columns: ColumnsOption = None,
    wide: WideOption = False,
) -> None:
    """The raw log in global order: who did what, when, by which command; --wide adds
    each event's own fields (``data``) as indented lines."""
    EVENTS.table_columns(columns, wide)
    check_types(types or [])
    app = reading_log(ctx.find_object(Settings) or Settings())
    ctx.call_on_close(app.close)
    rows = select_rows(app, aggregate, types or [], start, limit, include_receipts)
    EVENTS.emit(rows, fmt, columns=columns, wide=wide)


def register(app: typer.Typer) -> None:
    """Adds ``events`` to the root command."""
    app.command("events")(events)
