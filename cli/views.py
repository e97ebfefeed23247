"""CLI commands over the views: the audit trail, incidents, invitations, chats, members,
account links, statistics; ``replay`` to rebuild or check them; ``views status`` for lag.

Every listing first applies what the log holds beyond the views (so the answer is
current), unless ``--views-at`` points it at a snapshot built by ``replay --upto/--as-of``.
Settings come from the environment (``SFERUM_AUDIT_DATA_DIR``, ``SFERUM_AUDIT_DATABASE_URL``,
``SFERUM_AUDIT_VIEWS_URL`` ...).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from sferum_audit.application.bootstrap import build_audit_log
from sferum_audit.application.service import AuditLog
from sferum_audit.application.settings import Settings
from sferum_audit.cli.output import OutputFormat, emit
from sferum_audit.projections import queries
from sferum_audit.projections.database import ViewsDatabase
from sferum_audit.projections.registry import ALL_NAMES, STATISTICS, resolve_names
from sferum_audit.projections.replay import (
    as_of_path,
    build_as_of,
    check,
    position_at,
    rebuild,
)
from sferum_audit.projections.runner import ViewRunner
from sferum_audit.projections.settings import ViewsSettings
from sferum_audit.projections.statistics import STAT_COLUMNS, school_totals, statistics

FormatOption = Annotated[
    OutputFormat, typer.Option("--format", "-f", help="table, json, jsonl or csv.")
]
ViewsAtOption = Annotated[
    str | None,
    typer.Option(
        "--views-at",
        help="Read a snapshot instead of the live views: a file, or a position built by "
        "`replay --upto POSITION` (<data_dir>/views-asof-POSITION.sqlite).",
    ),
]
SchoolOption = Annotated[str | None, typer.Option("--school", help="Only this school.")]

INCIDENT_COLUMNS = (
    "school_id", "incident_id", "state", "reporter_id", "reporter_relation",
    "affected_profile_id", "elzhur_account_id", "reported_at", "told_school_administrator_at",
    "told_platform_operator_at", "acknowledged_at", "hours_to_acknowledge", "first_contained_at",
    "closed_at", "hours_to_resolve", "hours_open", "containment_steps", "provenance",
)  # fmt: skip
INVITATION_COLUMNS = (
    "school_id", "invitation_id", "chat_id", "role", "issuer_id", "issuer_role", "issued_at",
    "expires_at", "status", "status_at", "redeemed_by", "age_days", "past_expiry",
)  # fmt: skip
CHAT_COLUMNS = (
    "school_id", "chat_id", "kind", "title", "class_id", "owner_id", "moderators", "members",
    "members_by_role", "blocked", "archived",
)  # fmt: skip
MEMBER_COLUMNS = (
    "school_id", "chat_id", "profile_id", "display_name", "role", "status", "via",
    "invitation_id", "joined_at", "note",
)  # fmt: skip
LINK_COLUMNS = (
    "position", "school_id", "profile_id", "profile_role", "action", "elzhur_account_id",
    "reason", "actor_id", "occurred_at", "recorded_at",
)  # fmt: skip
CURRENT_LINK_COLUMNS = (
    "school_id", "profile_id", "role", "elzhur_account_id", "linked_at", "left_school",
)  # fmt: skip


def parse_time(text: str) -> datetime:
    """ISO 8601 date or time; without an offset it is taken as UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"not an ISO 8601 date or time: {text!r}") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def settings_of(ctx: typer.Context) -> Settings:
    """The root command's settings (global options over the environment), or the
    environment's when this command runs on its own."""
    found = ctx.find_object(Settings)
    return found if isinstance(found, Settings) else Settings()


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


@contextmanager
def opened_views(ctx: typer.Context, views_at: str | None = None) -> Iterator[ViewsDatabase]:
    """The live views caught up with the log, or the snapshot ``views_at`` names."""
    settings = settings_of(ctx)
    if views_at is not None:
        path = (
            as_of_path(settings.data_dir, int(views_at)) if views_at.isdigit() else Path(views_at)
        )
        if not path.exists():
            hint = f"; build it with `sferum-audit replay --upto {views_at}`"
            raise _fail(f"no views snapshot at {path}{hint if views_at.isdigit() else ''}")
        db = ViewsDatabase.sqlite_file(path)
    else:
        options = ViewsSettings()
        db = ViewsDatabase.from_settings(settings, options)
        runner = ViewRunner(build_audit_log(settings), db, page_size=options.views_page_size)
        runner.ensure_tables()
        runner.catch_up()
    try:
        yield db
    finally:
        db.dispose()


class RateColumn(ProgressColumn):
    """Events per second."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("…" if speed is None else f"{speed:,.0f} ev/s", style="progress.data.speed")


@contextmanager
def progress_bar(description: str, total: int) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on stderr; yields a callback taking the position reached."""
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(description, total=max(total, 1))

        def advance(position: int) -> None:
            bar.update(task, completed=position)

        yield advance
        bar.update(task, completed=max(total, 1))


def statistics_digest(db: ViewsDatabase) -> str:
    rows = statistics(db)
    text = "\n".join(json.dumps(r, sort_keys=True, ensure_ascii=False) for r in rows)
    return hashlib.sha256(text.encode()).hexdigest()


# -- listing commands ---------------------------------------------------------------------------


def audit_command(
    ctx: typer.Context,
    moderator: Annotated[str | None, typer.Option(help="Moderator (actor) id.")] = None,
    chat: Annotated[str | None, typer.Option(help="Chat id.")] = None,
    target: Annotated[str | None, typer.Option(help="Member or message author id.")] = None,
    authority: Annotated[str | None, typer.Option(help="2.3, 2.4 or 2.5.")] = None,
    ground: Annotated[str | None, typer.Option(help="4.2.x, law, third-party-rights.")] = None,
    action: Annotated[
        str | None,
        typer.Option(
            help="content-removed, content-blocked, member-blocked, member-unblocked, "
            "liability-warned."
        ),
    ] = None,
    since: Annotated[str | None, typer.Option(help="Happened at or after (ISO 8601).")] = None,
    until: Annotated[str | None, typer.Option(help="Happened at or before (ISO 8601).")] = None,
    school: SchoolOption = None,
    limit: Annotated[int | None, typer.Option(help="At most this many rows.")] = None,
    newest_first: Annotated[bool, typer.Option("--newest-first", help="Newest first.")] = False,
    fmt: FormatOption = OutputFormat.table,
    views_at: ViewsAtOption = None,
) -> None:
    """The audit trail: one row per moderation action, filtered; exports hold exactly the
    rows the table shows."""
    flt = queries.AuditFilter(
        moderator=moderator,
        chat=chat,
        target=target,
        authority=authority,
        ground=ground,
        action=action,
        since=parse_time(since) if since else None,
        until=parse_time(until) if until else None,
        school=school,
    )
    with opened_views(ctx, views_at) as db:
        rows = queries.audit_rows(db, flt, limit=limit, newest_first=newest_first)
    emit(rows, fmt, queries.AUDIT_COLUMNS, title="Audit trail")


def incidents_command(
    ctx: typer.Context,
    open_: Annotated[bool, typer.Option("--open", help="Only open incidents (default).")] = False,
    all_: Annotated[bool, typer.Option("--all", help="Closed incidents too.")] = False,
    overdue: Annotated[
        bool, typer.Option("--overdue", help="Only those unacknowledged past the deadline.")
    ] = False,
    ack_deadline_hours: Annotated[
        float, typer.Option(help="Hours within which a report must be acknowledged.")
    ] = 24.0,
    school: SchoolOption = None,
    fmt: FormatOption = OutputFormat.table,
    views_at: ViewsAtOption = None,
    now: Annotated[str | None, typer.Option(help="Evaluate ages at this time.")] = None,
) -> None:
    """The incident register (4.2.2), with the provenance of each affected account."""
    if open_ and all_:
        raise _fail("--open and --all exclude each other")
    moment = parse_time(now) if now else datetime.now(UTC)
    with opened_views(ctx, views_at) as db:
        rows = queries.incidents(
            db,
            moment,
            open_only=not all_,
            overdue_after=timedelta(hours=ack_deadline_hours) if overdue else None,
            school=school,
        )
    emit(rows, fmt, INCIDENT_COLUMNS, title="Access incidents")


def invitations_command(
    ctx: typer.Context,
    stale: Annotated[
        float | None, typer.Option(help="Only links still unused after this many days.")
    ] = None,
    status: Annotated[
        str | None, typer.Option(help="issued, redeemed, annulled or expired.")
    ] = None,
    school: SchoolOption = None,
    fmt: FormatOption = OutputFormat.table,
    views_at: ViewsAtOption = None,
    now: Annotated[str | None, typer.Option(help="Evaluate ages at this time.")] = None,
) -> None:
    """Invitation links with status and age; --stale DAYS lists those 2.3 says to annul."""
    moment = parse_time(now) if now else datetime.now(UTC)
    with opened_views(ctx, views_at) as db:
        rows = queries.invitations(db, moment, stale_days=stale, status=status, school=school)
    emit(rows, fmt, INVITATION_COLUMNS, title="Invitations")


def chats_command(
    ctx: typer.Context,
    school: SchoolOption = None,
    fmt: FormatOption = OutputFormat.table,
    views_at: ViewsAtOption = None,
) -> None:
    """Chats with kind, owner, moderators, members by role and blocked members."""
    with opened_views(ctx, views_at) as db:
        rows = queries.chats(db, school)
    emit(rows, fmt, CHAT_COLUMNS, title="Chats")


def members_command(
    ctx: typer.Context,
    chat: Annotated[str, typer.Argument(help="Chat id, e.g. class-5a.")],
    school: SchoolOption = None,
    fmt: FormatOption = OutputFormat.table,
    views_at: ViewsAtOption = None,
) -> None:
    """Members of a chat with their roles, then its blocked members."""
    with opened_views(ctx, views_at) as db:
        rows = queries.members(db, chat, school)
    emit(rows, fmt, MEMBER_COLUMNS, title=f"Members of {chat}")


def links_command(
    ctx: typer.Context,
    profile: Annotated[str | None, typer.Option(help="Only this profile.")] = None,
    school: SchoolOption = None,
    current: Annotated[
        bool, typer.Option("--current", help="The link each profile has now, not the history.")
    ] = False,
    fmt: FormatOption = OutputFormat.table,
    views_at: ViewsAtOption = None,
) -> None:
    """ElZhur account links: the full history of links and unlinks (or --current)."""
    with opened_views(ctx, views_at) as db:
        if current:
            rows = [
                r
                for r in queries.profiles(db, school)
                if profile is None or r["profile_id"] == profile
            ]
            emit(rows, fmt, CURRENT_LINK_COLUMNS, title="Profiles and their links")
            return
        rows = queries.links(db, profile, school)
    emit(rows, fmt, LINK_COLUMNS, title="Account link history")


def classes_command(
    ctx: typer.Context,
    school: SchoolOption = None,
    fmt: FormatOption = OutputFormat.table,
    views_at: ViewsAtOption = None,
) -> None:
    """Classes with their class teachers (2.5) and the school's administrators (2.3)."""
    with opened_views(ctx, views_at) as db:
        rows = queries.classes(db, school)
    columns = ("school_id", "class_id", "name", "class_teacher_id", "teacher_assigned_at",
               "administrators")  # fmt: skip
    emit(rows, fmt, columns, title="Classes")


def stats_command(
    ctx: typer.Context,
    school: SchoolOption = None,
    totals: Annotated[bool, typer.Option("--totals", help="Sum each school's classes.")] = False,
    fmt: FormatOption = OutputFormat.table,
    views_at: ViewsAtOption = None,
) -> None:
    """Statistics for the administration (2.3): per school and class."""
    with opened_views(ctx, views_at) as db:
        rows = statistics(db, school)
    emit(school_totals(rows) if totals else rows, fmt, STAT_COLUMNS, title="Statistics")


# -- replay and status --------------------------------------------------------------------------


def replay_command(
    ctx: typer.Context,
    views: Annotated[
        list[str] | None,
        typer.Argument(help=f"Views to rebuild (default all): {', '.join(ALL_NAMES)}."),
    ] = None,
    upto: Annotated[
        int | None, typer.Option(help="Rebuild the state as of this log position, aside.")
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Rebuild the state as of this recorded time, aside."),
    ] = None,
    check_: Annotated[
        bool,
        typer.Option(
            "--check", help="Rebuild aside, compare with the live views, exit 1 on any difference."
        ),
    ] = False,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Rebuilds views from the log into fresh tables and swaps them in; prints digests."""
    settings = settings_of(ctx)
    options = ViewsSettings()
    try:
        names = resolve_names(views)
    except ValueError as error:
        raise _fail(str(error)) from None
    if sum(x is not None for x in (upto, as_of)) + check_ > 1:
        raise _fail("--upto, --as-of and --check exclude each other")
    app = build_audit_log(settings)
    head = int(app.recorder.max_notification_id() or 0)
    page = options.views_page_size
    if upto is not None or as_of is not None:
        position = upto if upto is not None else position_at(app, parse_time(str(as_of)))
        position = min(position, head)
        path = as_of_path(settings.data_dir, position)
        with progress_bar(f"views as of {position}", position) as advance:
            result = build_as_of(app, path, position, progress=advance, page_size=page)
        snapshot = ViewsDatabase.sqlite_file(path)
        try:
            stats_digest = statistics_digest(snapshot)
        finally:
            snapshot.dispose()
        typer.echo(f"views as of position {position} written to {path}", err=True)
        _emit_digests(result.digests, stats_digest, position, fmt)
        return
    db = ViewsDatabase.from_settings(settings, options)
    try:
        if check_:
            with progress_bar("checking", head) as advance:
                outcome = check(app, db, names, progress=advance, page_size=page)
            _emit_digests(outcome.digests, None, outcome.position, fmt)
            for difference in outcome.differences:
                typer.echo(f"DIFFERENCE {difference.describe()}", err=True)
            if not outcome.ok:
                raise typer.Exit(1)
            typer.echo(f"views match a rebuild at position {outcome.position}", err=True)
            return
        with progress_bar("replaying", head) as advance:
            result = rebuild(app, db, names, progress=advance, page_size=page)
        rate = result.events / result.seconds if result.seconds else 0.0
        typer.echo(
            f"rebuilt {', '.join(names)} to position {result.position} in "
            f"{result.seconds:.1f} s ({rate:,.0f} ev/s) and swapped them in",
            err=True,
        )
        whole = set(resolve_names(None)) <= set(names)
        _emit_digests(
            result.digests, statistics_digest(db) if whole else None, result.position, fmt
        )
    finally:
        db.dispose()


def _emit_digests(
    digests: dict[str, str], stats_digest: str | None, position: int, fmt: OutputFormat
) -> None:
    rows: list[dict[str, Any]] = [
        {"view": view, "position": position, "sha256": digest} for view, digest in digests.items()
    ]
    if stats_digest is not None:
        rows.append({"view": STATISTICS, "position": position, "sha256": stats_digest})
    emit(rows, fmt, ("view", "position", "sha256"), title="View digests")


def status_command(ctx: typer.Context, fmt: FormatOption = OutputFormat.table) -> None:
    """Each view's position, the log's head, and how far behind the view is."""
    settings = settings_of(ctx)
    db = ViewsDatabase.from_settings(settings)
    try:
        runner = ViewRunner(build_audit_log(settings), db)
        runner.ensure_tables()
        rows = [lag.as_dict() for lag in runner.lag()]
    finally:
        db.dispose()
    emit(rows, fmt, ("view", "position", "head", "lag"), title="Views")


def follow_command(ctx: typer.Context) -> None:
    """Keeps the views current until interrupted (the service does this by itself)."""
    settings = settings_of(ctx)
    options = ViewsSettings()
    db = ViewsDatabase.from_settings(settings, options)
    app: AuditLog = build_audit_log(settings)
    runner = ViewRunner(app, db, page_size=options.views_page_size)
    runner.ensure_tables()
    stop = threading.Event()
    typer.echo("following the log; Ctrl-C stops", err=True)
    try:
        runner.follow(stop, options.views_poll_interval)
    except KeyboardInterrupt:
        stop.set()
    finally:
        db.dispose()


def register(app: typer.Typer) -> None:
    """Adds this module's commands to the root `sferum-audit` command."""
    app.command("audit")(audit_command)
    app.command("incidents")(incidents_command)
    app.command("invitations")(invitations_command)
    app.command("chats")(chats_command)
    app.command("members")(members_command)
    app.command("links")(links_command)
    app.command("classes")(classes_command)
    app.command("stats")(stats_command)
    app.command("replay")(replay_command)
    views = typer.Typer(help="The views kept from the log: status and following.")
    views.command("status")(status_command)
    views.command("follow")(follow_command)
    app.add_typer(views, name="views")
