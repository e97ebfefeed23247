"""``sferum-audit demo``: loads the sample school and shows what the log now knows about it.

The summary reads the aggregates themselves from the repository (their keys come from the
sample's commands and the domain's ``create_id`` functions), so it needs no read models.
Loading is idempotent: a second run records nothing and says so.
"""

from __future__ import annotations

import asyncio
import json
import sys
import textwrap
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, TextIO, cast
from urllib.parse import urlsplit
from uuid import UUID

import typer
from eventsourcing.application import AggregateNotFoundError
from rich.console import Console
from rich.text import Text

from sferum_audit.application.handlers import all_chat_ids
from sferum_audit.application.local_sources import LocalSigner, local_source_id
from sferum_audit.application.logging_setup import configure_logging
from sferum_audit.application.sample_school import sample_school
from sferum_audit.application.service import AuditLog
from sferum_audit.application.settings import Settings
from sferum_audit.cli.output import OutputFormat, console_width, emit
from sferum_audit.cli.records import (
    Tally,
    audit_log,
    parse_line,
    record_in_batches,
    rejection_line,
)
from sferum_audit.cli.views import AUDIT, INCIDENTS, opened_views
from sferum_audit.domain.access_incident import AccessIncident
from sferum_audit.domain.base import AuditedAggregate
from sferum_audit.domain.chat import Chat
from sferum_audit.domain.invitation import ISSUED, Invitation
from sferum_audit.domain.profile import Profile
from sferum_audit.domain.school import School
from sferum_audit.projections import queries

MODERATION_EVENTS = {
    "ContentRemoved": "content removed",
    "ContentBlocked": "content blocked",
    "MemberBlocked": "member blocked",
    "MemberUnblocked": "member unblocked",
    "LiabilityWarned": "warned about liability",
}
STALE_AFTER = timedelta(days=3)


def demo(
    ctx: typer.Context,
    school_id: Annotated[str, typer.Option("--school", help="Id of the sample school.")] = (
        "sch-58"
    ),
    seed: Annotated[int, typer.Option("--seed", help="Seed of names and incidents.")] = 58,
    direct: Annotated[
        bool,
        typer.Option(
            "--direct",
            help="Record in this process instead of through an embedded NATS JetStream.",
        ),
    ] = False,
) -> None:
    """Runs the whole pipeline on the embedded default: the sample school (a week of chats,
    moderation and incidents) is published as commands to an embedded NATS JetStream,
    consumed, recorded, the views built, and the audit trail and incident register shown."""
    settings = ctx.find_object(Settings) or Settings()
    if settings.log_level == "INFO":  # per-batch and sealing lines would bury the summary
        configure_logging(settings.model_copy(update={"log_level": "WARNING"}))
    commands = sample_school(school_id, seed=seed)
    console = Console()
    console.print(Text(f"Store: {describe_store(settings)}"))
    app = audit_log(ctx)
    head_before = app.recorder.max_notification_id() or 0
    unregistered = app.source(local_source_id(school_id)) is None
    if direct:
        tally = load_directly(app, settings, commands)
    else:  # the log grew by the events plus one receipt per recorded command
        tally, _ = load_through_nats(settings, school_id, seed)
        head_after = app.recorder.max_notification_id() or 0
        tally.events = head_after - head_before - tally.counts["recorded"]
    # registering the local CLI source took two positions: its event and its receipt
    bootstrap = 2 if unregistered and app.source(local_source_id(school_id)) else 0
    tally.events -= 0 if direct else bootstrap
    registration = f" + {bootstrap} for registering the local CLI source" if bootstrap else ""
    if tally.counts["recorded"] == 0 and tally.counts["duplicate"]:
        console.print(
            f"already loaded: {tally.counts['duplicate']} duplicates, nothing new recorded"
        )
    else:
        console.print(f"loaded {len(commands)} sample commands: {tally.summary()}")
        head = app.recorder.max_notification_id() or 0
        console.print(
            Text(
                f"(a command records one or more events; each recorded command also leaves "
                f"a receipt, which makes a repeated command id a duplicate: "
                f"{tally.events} events + {tally.counts['recorded']} receipts{registration} = "
                f"{tally.events + tally.counts['recorded'] + bootstrap} new positions; the log now "
                f"ends at position {head})"
            )
        )
    Summary(app, school_id, commands, console).show()
    show_views(ctx, school_id)
    console.print(Text(f"\n{seal(settings, app)}"))
    if tally.counts["rejected"]:
        raise typer.Exit(1)


def seal(settings: Settings, app: AuditLog) -> str:
    """Signs a checkpoint over the whole log, so `sferum-audit verify` passes right away."""
    from sferum_audit.integrity.sealer import Sealer
    from sferum_audit.integrity.settings import IntegritySettings

    sealer = Sealer(app.recorder, settings.data_dir, IntegritySettings())
    try:
        result = sealer.run_once(force=True)
    finally:
        sealer.close()
    if result.alarm is not None:
        raise ValueError(f"sealing stopped: {result.alarm}")
    return f"{result.describe()}; check it with `sferum-audit verify`"


def load_directly(app: AuditLog, settings: Settings, commands: list[dict[str, Any]]) -> Tally:
    """Records the sample through the application in this process, signed as ``record``
    signs plain lines."""
    tally = Tally()
    signer = LocalSigner.from_settings(settings)
    numbered = (
        (n, parse_line(json.dumps(c, ensure_ascii=False).encode(), signer=signer))
        for n, c in enumerate(commands, start=1)
    )
    for number, result in record_in_batches(app, numbered, None, signer):
        tally.add(result)
        if not result.accepted:
            typer.echo(f"sample command {rejection_line(number, result)}", err=True)
    return tally


def load_through_nats(settings: Settings, school_id: str, seed: int) -> tuple[Tally, int]:
    """Publishes the sample to an embedded nats-server, consumes and records it, and stops
    everything again; the sample's tally, and the log positions the local source's
    registration took (its event and its receipt)."""
    from sferum_audit.consumers.demo import run_pipeline_demo

    report = asyncio.run(run_pipeline_demo(settings, school_id=school_id, seed=seed))
    if not report.ok:
        raise ValueError(
            f"the pipeline did not settle: {report.recorded + report.duplicate} of "
            f"{report.published} commands handled"
        )
    typer.echo(
        f"published {report.published} commands to embedded NATS at {report.nats_url}; "
        f"relayed {report.events_published} events outbound (every position of the log, "
        f"receipts included, up to position {report.log_position})"
    )
    if report.sources_registered:
        typer.echo(
            f"registered the local CLI source for {report.sources_registered} school(s), "
            "signed by the operator key in the data folder"
        )
    tally = Tally()  # the sample's commands only, without the source registrations
    tally.counts.update(
        recorded=report.recorded - report.sources_registered,
        duplicate=report.duplicate
        + report.duplicates_at_publish
        - (report.bootstrap_published - report.sources_registered),
        rejected=report.rejected + report.dead_lettered,
    )
    return tally, 2 * report.sources_registered


def show_views(ctx: typer.Context, school_id: str) -> None:
    """The audit trail and the incident register, read from the views built from the log."""
    with opened_views(ctx) as db:
        audit = queries.audit_rows(db, queries.AuditFilter(school=school_id))
        incidents = queries.incidents(db, datetime.now(UTC), school=school_id)
    AUDIT.emit(audit, OutputFormat.table, title="Audit trail (from the views)")
    INCIDENTS.emit(incidents, OutputFormat.table, title="Incident register (4.2.2)")
    hint = (
        "the same listings: sferum-audit audit, sferum-audit incidents (more columns: "
        "--wide or --columns; every field: --format json, jsonl or csv)"
    )
    typer.echo("\n".join(textwrap.wrap(hint, width=console_width(sys.stdout))))


def describe_store(settings: Settings) -> str:
    """Where the events are, without a password."""
    if settings.database_url:
        url = urlsplit(settings.database_url)
        schema = f", schema {settings.database_schema}" if settings.database_schema else ""
        return f"PostgreSQL {url.hostname}:{url.port or 5432}/{url.path.lstrip('/')}{schema}"
    return f"SQLite {settings.event_store_path}"


class Summary:
    """Reads the sample school's aggregates and prints them as tables."""

    def __init__(
        self, app: AuditLog, school_id: str, commands: list[dict[str, Any]], console: Console
    ) -> None:
        self.app = app
        self.school_id = school_id
        self.commands = commands
        self.console = console
        self.names: dict[str, str] = {}

    def of_type(self, command_type: str) -> Iterator[dict[str, Any]]:
        return (c for c in self.commands if c["type"] == command_type)

    def find(self, aggregate_id: UUID) -> Any:
        try:
            return self.app.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None

    def name(self, profile_id: str | None) -> str:
        """A person's display name, or their id if they have no profile (e.g. the system)."""
        if profile_id is None:
            return ""
        if profile_id not in self.names:
            profile = self.find(Profile.create_id(profile_id))
            self.names[profile_id] = profile.display_name if profile else profile_id
        return self.names[profile_id]

    def show(self) -> None:
        school: School | None = self.find(School.create_id(self.school_id))
        if school is None:
            self.console.print(Text(f"school {self.school_id} is not recorded"))
            return
        admins = ", ".join(self.name(a) for a in sorted(school.state.administrators))
        self.console.print(Text(f"\n{school.name}, {school.order_ref}", style="bold"))
        self.console.print(Text(f"Platform administrators (2.3): {admins}"))
        self.table(
            "Classes and class teachers (2.5)",
            ("class", "class teacher"),
            ((c.name, self.name(c.class_teacher_id)) for c in school.state.classes.values()),
        )
        chats = [self.find(Chat.create_id(self.school_id, c)) for c in all_chat_ids(school)]
        self.table(
            "Chats",
            ("chat", "kind", "title", "members", "blocked"),
            (
                (c.chat_id, c.kind, c.title, str(len(c.members)), str(len(c.blocked)))
                for c in chats
                if c is not None
            ),
        )
        self.show_invitations_and_links()
        self.show_moderation([c for c in chats if c is not None])
        self.show_incidents()

    def show_invitations_and_links(self) -> None:
        statuses: Counter[str] = Counter()
        issued_at = {c["invitation_id"]: c["occurred_at"] for c in self.of_type("issue-invitation")}
        week_end = datetime.fromisoformat(self.commands[-1]["occurred_at"])
        for invitation_id, at in issued_at.items():
            invitation = self.find(Invitation.create_id(self.school_id, invitation_id))
            if invitation is None:
                continue
            statuses[invitation.status] += 1
            if invitation.status == ISSUED and week_end - datetime.fromisoformat(at) > STALE_AFTER:
                statuses[f"stale (unused over {STALE_AFTER.days} days)"] += 1
        rows = ((status, str(count)) for status, count in sorted(statuses.items()))
        self.table("Invitations by status", ("status", "count"), rows)
        profiles = [
            self.find(Profile.create_id(c["profile_id"])) for c in self.of_type("register-profile")
        ]
        linked = sum(1 for p in profiles if p is not None and p.elzhur_account_id)
        self.console.print(f"Account links to ElZhur: {linked} of {len(profiles)} profiles")

    def show_moderation(self, chats: list[Chat]) -> None:
        actions = []
        for chat in chats:
            for event in self.app.repository.event_store.get(chat.id):
                kind = type(event).__name__
                if kind in MODERATION_EVENTS and isinstance(event, AuditedAggregate.Event):
                    actions.append((event.ctx.occurred_at, chat.chat_id, kind, vars(event)))
        rows = []
        for at, chat_id, kind, data in sorted(actions, key=lambda a: a[0]):
            ctx = data["ctx"]
            whom = data.get("author_id") or data.get("member_id")
            rows.append(
                (
                    at.strftime("%a %d.%m %H:%M"),
                    self.name(ctx.actor_id),
                    data["authority"],
                    data.get("ground") or "",
                    MODERATION_EVENTS[kind],
                    chat_id,
                    self.name(whom),
                    data["reason"],
                )
            )
        columns = ("when", "who", "authority", "ground", "action", "chat", "whom", "reason")
        self.table("Moderation actions of the week", columns, rows)

    def show_incidents(self) -> None:
        rows = []
        for command in self.of_type("report-unauthorised-access"):
            incident = self.find(AccessIncident.create_id(self.school_id, command["incident_id"]))
            if incident is None:
                continue
            rows.append(
                (
                    incident.incident_id,
                    incident.state,
                    self.name(incident.reporter_id),
                    self.name(incident.affected_profile_id),
                    ", ".join(sorted(incident.told)),
                    ", ".join(incident.containment_steps),
                )
            )
        columns = ("incident", "state", "reported by", "account of", "told", "containment")
        self.table("Unauthorised-access reports (4.2.2)", columns, rows)

    def table(self, title: str, columns: Iterable[str], rows: Iterable[Iterable[str]]) -> None:
        """A table laid out as the listings are (``cli.output``): fitted to the terminal,
        wrapped between words, data escaped; never a word broken in the middle."""
        names = tuple(columns)
        records = [dict(zip(names, row, strict=True)) for row in rows]
        self.console.print(Text(f"\n{title}", style="bold"))  # not a table title: never wrapped
        if not records:
            self.console.print("nothing recorded")
            return
        out = cast(TextIO, self.console.file)  # rich types it IO[str]; it is a text stream
        emit(records, OutputFormat.table, names, out=out)


def register(app: typer.Typer) -> None:
    """Adds ``demo``."""
    app.command("demo")(demo)
