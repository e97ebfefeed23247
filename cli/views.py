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
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sferum_audit.application.settings import Settings
from sferum_audit.cli.output import ColumnsOption, Listing, OutputFormat, WideOption, emit
from sferum_audit.cli.stores import current_views, reading_log, stored_views
from sferum_audit.cli.times import local, parse_time, zone_name
from sferum_audit.domain.regulation import GROUNDS, MODERATION_AUTHORITIES
from sferum_audit.projections import queries
from sferum_audit.projections.audit_trail import ACTIONS
from sferum_audit.projections.database import ViewsDatabase
from sferum_audit.projections.registry import ALL_NAMES, STATISTICS, resolve_names
from sferum_audit.projections.settings import ViewsSettings
from sferum_audit.projections.statistics import STAT_COLUMNS, school_totals, statistics

if TYPE_CHECKING:
    from sferum_audit.application.service import AuditLog

# Listings import only what reading the views needs: the application, the view runner,
# the replay and rich's progress bars are imported by the commands that use them (see
# cli.stores; `scripts/bench_cli_start.py` measures the start).

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
NowOption = Annotated[
    str | None,
    typer.Option(
        "--now",
        help="Evaluate ages at this time (ISO 8601 with offset, or a date: its end).",
        show_default=False,
    ),
]

AUDIT = Listing(
    "Audit trail",
    (*queries.audit_columns(), *queries.AUDIT_NAMES),
    default=("position", "occurred_at", "chat_id", "action", "moderator_name", "authority",
             "ground", "target_name", "reason"),
    drop=("chat_id", "target_name", "position"),
    labels={"position": "#", "occurred_at": "when", "chat_id": "chat", "moderator_name": "who",
            "authority": "under", "target_name": "whom", "moderator_id": "who (id)",
            "target_id": "whom (id)"},
    empty="no moderation action matches",
)  # fmt: skip
INCIDENTS = Listing(
    "Access incidents (4.2.2)",
    ("school_id", "incident_id", "state", "reporter_id", "reporter_relation",
     "affected_profile_id", "elzhur_account_id", "reported_at", "told_school_administrator_at",
     "told_platform_operator_at", "acknowledged_at", "hours_to_acknowledge",
     "first_contained_at", "closed_at", "hours_to_resolve", "hours_open", "containment_steps",
     "provenance"),
    default=("incident_id", "state", "reported_at", "reporter_id", "affected_profile_id",
             "hours_to_acknowledge", "hours_to_resolve", "hours_open", "containment_steps"),
    drop=("containment_steps", "reporter_id", "hours_open"),
    labels={"incident_id": "incident", "reported_at": "reported", "reporter_id": "by",
            "affected_profile_id": "account of", "hours_to_acknowledge": "ack,h",
            "hours_to_resolve": "resolve,h", "hours_open": "open,h",
            "containment_steps": "steps taken"},
    empty="no incident matches",
)  # fmt: skip
INVITATIONS = Listing(
    "Invitation links",
    ("school_id", "invitation_id", "chat_id", "role", "issuer_id", "issuer_role", "issued_at",
     "expires_at", "status", "status_at", "redeemed_by", "age_days", "past_expiry"),
    default=("invitation_id", "chat_id", "role", "issuer_id", "issued_at", "status",
             "redeemed_by", "age_days"),
    drop=("redeemed_by", "issuer_id", "role"),
    labels={"invitation_id": "link", "chat_id": "chat", "issuer_id": "issued by",
            "issued_at": "issued", "redeemed_by": "used by", "age_days": "days"},
    empty="no invitation link matches",
)  # fmt: skip
CHATS = Listing(
    "Chats",
    ("school_id", "chat_id", "kind", "title", "class_id", "owner_id", "moderators", "members",
     "members_by_role", "blocked", "archived"),
    default=("chat_id", "kind", "title", "owner_id", "moderators", "members", "blocked"),
    drop=("moderators", "owner_id", "blocked"),
    labels={"chat_id": "chat", "owner_id": "owner"},
    empty="no chat recorded",
)  # fmt: skip
MEMBERS = Listing(
    "Members",
    ("school_id", "chat_id", "profile_id", "display_name", "role", "status", "via",
     "invitation_id", "joined_at", "note"),
    default=("profile_id", "display_name", "role", "status", "via", "joined_at", "note"),
    drop=("via", "joined_at"),
    labels={"profile_id": "profile", "display_name": "name", "joined_at": "joined"},
    empty="the chat has no members and no blocked members",
)  # fmt: skip
LINKS = Listing(
    "Account link history",
    ("position", "school_id", "profile_id", "profile_role", "action", "elzhur_account_id",
     "reason", "actor_id", "occurred_at", "recorded_at"),
    default=("position", "occurred_at", "profile_id", "action", "elzhur_account_id", "actor_id",
             "reason"),
    drop=("reason", "position"),
    labels={"position": "#", "occurred_at": "when", "profile_id": "profile",
            "elzhur_account_id": "ElZhur account", "actor_id": "by"},
    empty="no account link matches",
)  # fmt: skip
CURRENT_LINKS = Listing(
    "Profiles and their links",
    ("school_id", "profile_id", "role", "elzhur_account_id", "linked_at", "left_school"),
    default=("profile_id", "role", "elzhur_account_id", "linked_at", "left_school"),
    labels={"profile_id": "profile", "elzhur_account_id": "ElZhur account",
            "linked_at": "linked", "left_school": "left"},
    empty="no profile matches",
)  # fmt: skip
CLASSES = Listing(
    "Classes",
    ("school_id", "class_id", "name", "class_teacher_id", "teacher_assigned_at",
     "administrators"),
    default=("class_id", "name", "class_teacher_id", "teacher_assigned_at", "administrators"),
    drop=("administrators", "teacher_assigned_at"),
    labels={"class_id": "class", "class_teacher_id": "class teacher (2.5)",
            "teacher_assigned_at": "since", "administrators": "administrators (2.3)"},
    empty="no class recorded",
)  # fmt: skip
STATS = Listing(
    "Statistics",
    STAT_COLUMNS,
    default=("school_id", "class_id", "metric", "key", "value"),
    labels={"school_id": "school", "class_id": "class"},
    empty="nothing recorded",
)
# kept for callers of the column tuples
INCIDENT_COLUMNS = INCIDENTS.columns
INVITATION_COLUMNS = INVITATIONS.columns
CHAT_COLUMNS = CHATS.columns
MEMBER_COLUMNS = MEMBERS.columns
LINK_COLUMNS = LINKS.columns
CURRENT_LINK_COLUMNS = CURRENT_LINKS.columns


def settings_of(ctx: typer.Context) -> Settings:
    """The root command's settings (global options over the environment), or the
    environment's when this command runs on its own."""
    found = ctx.find_object(Settings)
    return found if isinstance(found, Settings) else Settings()


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


def checked(error: queries.InvalidFilter) -> typer.BadParameter:
    """An invalid filter as the usage error it is (exit 2, with the valid values)."""
    return typer.BadParameter(
        f"{error.value!r} matches nothing; valid: {', '.join(error.valid) or 'none recorded yet'}",
        param_hint=error.option,
    )


@contextmanager
def opened_views(ctx: typer.Context, views_at: str | None = None) -> Iterator[ViewsDatabase]:
    """The live views caught up with the log, or the snapshot ``views_at`` names."""
    settings = settings_of(ctx)
    if views_at is not None:
        from sferum_audit.projections.replay import as_of_path  # see above

        path = (
            as_of_path(settings.data_dir, int(views_at)) if views_at.isdigit() else Path(views_at)
        )
        if not path.exists():
            hint = f"; build it with `sferum-audit replay --upto {views_at}`"
            raise _fail(f"no views snapshot at {path}{hint if views_at.isdigit() else ''}")
        db = ViewsDatabase.sqlite_file(path, read_only=True)
        try:
            yield db
        finally:
            db.dispose()
        return
    with current_views(settings) as db:
        yield db


@contextmanager
def read_views(
    ctx: typer.Context, views_at: str | None, school: str | None
) -> Iterator[ViewsDatabase]:
    """``opened_views`` with ``--school`` checked and invalid filters turned into usage
    errors that list the valid values."""
    with opened_views(ctx, views_at) as db:
        try:
            queries.check_school(db, school)
            yield db
        except queries.InvalidFilter as error:
            raise checked(error) from None


@contextmanager
def progress_bar(description: str, total: int) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on stderr; yields a callback taking the position reached."""
    from rich.console import Console  # only replays draw progress
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

    class RateColumn(ProgressColumn):
        """Events per second."""

        def render(self, task: Task) -> Text:
            speed = task.finished_speed or task.speed
            shown = "…" if speed is None else f"{speed:,.0f} ev/s"
            return Text(shown, style="progress.data.speed")

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


def time_option(value: str | None, flag: str, *, end_of_day: bool = False) -> datetime | None:
    return parse_time(value, flag, end_of_day=end_of_day) if value else None


# -- listing commands ---------------------------------------------------------------------------


def audit_command(
    ctx: typer.Context,
    moderator: Annotated[str | None, typer.Option(help="Moderator (actor) id.")] = None,
    chat: Annotated[str | None, typer.Option(help="Chat id.")] = None,
    target: Annotated[str | None, typer.Option(help="Member or message author id.")] = None,
    authority: Annotated[
        str | None, typer.Option(help=f"{', '.join(sorted(MODERATION_AUTHORITIES))}.")
    ] = None,
    ground: Annotated[str | None, typer.Option(help=f"{', '.join(sorted(GROUNDS))}.")] = None,
    action: Annotated[str | None, typer.Option(help=f"{', '.join(ACTIONS)}.")] = None,
    since: Annotated[
        str | None,
        typer.Option(
            help="Happened at or after (ISO 8601 with offset, or a date: from its start)."
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(help="Happened at or before (ISO 8601 with offset, or a date: to its end)."),
    ] = None,
    school: SchoolOption = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many rows.")] = None,
    newest_first: Annotated[bool, typer.Option("--newest-first", help="Newest first.")] = False,
    fmt: FormatOption = OutputFormat.table,
    columns: ColumnsOption = None,
    wide: WideOption = False,
    views_at: ViewsAtOption = None,
) -> None:
    """The audit trail: one row per moderation action, who did it, under which section
    (authority) and on which ground; exports hold every field."""
    flt = queries.AuditFilter(
        moderator=moderator,
        chat=chat,
        target=target,
        authority=authority,
        ground=ground,
        action=action,
        since=time_option(since, "--since"),
        until=time_option(until, "--until", end_of_day=True),
        school=school,
    )
    AUDIT.table_columns(columns, wide)
    try:
        flt.check()
    except queries.InvalidFilter as error:
        raise checked(error) from None
    with read_views(ctx, views_at, school) as db:
        if chat is not None:  # a mistyped chat is an error, not an empty trail
            queries.check_chat(db, chat, school, "--chat")
        rows = queries.audit_rows(db, flt, limit=limit, newest_first=newest_first)
    filters = flt.describe()
    empty = f"{AUDIT.empty}{' ' + filters if filters else ''}"
    AUDIT.emit(rows, fmt, columns=columns, wide=wide, empty=empty)


def incidents_command(
    ctx: typer.Context,
    open_: Annotated[bool, typer.Option("--open", help="Only open incidents (default).")] = False,
    all_: Annotated[bool, typer.Option("--all", help="Closed incidents too.")] = False,
    overdue: Annotated[
        bool, typer.Option("--overdue", help="Only those unacknowledged past the deadline.")
    ] = False,
    ack_deadline_hours: Annotated[
        float, typer.Option(min=0, help="Hours within which a report must be acknowledged.")
    ] = 24.0,
    school: SchoolOption = None,
    fmt: FormatOption = OutputFormat.table,
    columns: ColumnsOption = None,
    wide: WideOption = False,
    views_at: ViewsAtOption = None,
    now: NowOption = None,
) -> None:
    """The incident register (4.2.2): state, times to acknowledge and resolve, steps
    taken; --wide adds the affected account's provenance."""
    if open_ and all_:
        raise _fail("--open and --all exclude each other")
    INCIDENTS.table_columns(columns, wide)
    moment = time_option(now, "--now", end_of_day=True) or datetime.now(UTC)
    with read_views(ctx, views_at, school) as db:
        rows = queries.incidents(
            db,
            moment,
            open_only=not all_,
            overdue_after=timedelta(hours=ack_deadline_hours) if overdue else None,
            school=school,
        )
    if overdue:
        empty = f"no open incident is unacknowledged after {ack_deadline_hours:g} hours"
    elif not all_:
        empty = "no open incident (--all shows closed ones too)"
    else:
        empty = INCIDENTS.empty
    INCIDENTS.emit(rows, fmt, columns=columns, wide=wide, empty=empty)


def invitations_command(
    ctx: typer.Context,
    stale: Annotated[
        float | None, typer.Option(min=0, help="Only links still unused after this many days.")
    ] = None,
    status: Annotated[
        str | None, typer.Option(help=f"{', '.join(queries.INVITATION_STATUSES)}.")
    ] = None,
    school: SchoolOption = None,
    fmt: FormatOption = OutputFormat.table,
    columns: ColumnsOption = None,
    wide: WideOption = False,
    views_at: ViewsAtOption = None,
    now: NowOption = None,
) -> None:
    """Invitation links with status and age; --stale DAYS lists those 2.3 says to annul."""
    INVITATIONS.table_columns(columns, wide)
    moment = time_option(now, "--now", end_of_day=True) or datetime.now(UTC)
    with read_views(ctx, views_at, school) as db:
        rows = queries.invitations(db, moment, stale_days=stale, status=status, school=school)
    empty = f"no link unused after {stale:g} days" if stale is not None else INVITATIONS.empty
    INVITATIONS.emit(rows, fmt, columns=columns, wide=wide, empty=empty)


def chats_command(
    ctx: typer.Context,
    school: SchoolOption = None,
    fmt: FormatOption = OutputFormat.table,
    columns: ColumnsOption = None,
    wide: WideOption = False,
    views_at: ViewsAtOption = None,
) -> None:
    """Chats with kind, owner, moderators, members by role and blocked members."""
    CHATS.table_columns(columns, wide)
    with read_views(ctx, views_at, school) as db:
        rows = queries.chats(db, school)
    CHATS.emit(rows, fmt, columns=columns, wide=wide)


def members_command(
    ctx: typer.Context,
    chat: Annotated[str, typer.Argument(help="Chat id, e.g. class-5a.")],
    school: SchoolOption = None,
    fmt: FormatOption = OutputFormat.table,
    columns: ColumnsOption = None,
    wide: WideOption = False,
    views_at: ViewsAtOption = None,
) -> None:
    """Members of a chat with their roles, then its blocked members."""
    MEMBERS.table_columns(columns, wide)
    with read_views(ctx, views_at, school) as db:
        queries.check_chat(db, chat, school)
        rows = queries.members(db, chat, school)
    MEMBERS.emit(rows, fmt, columns=columns, wide=wide, title=f"Members of {chat}")


def links_command(
    ctx: typer.Context,
    profile: Annotated[str | None, typer.Option(help="Only this profile.")] = None,
    school: SchoolOption = None,
    current: Annotated[
        bool, typer.Option("--current", help="The link each profile has now, not the history.")
    ] = False,
    fmt: FormatOption = OutputFormat.table,
    columns: ColumnsOption = None,
    wide: WideOption = False,
    views_at: ViewsAtOption = None,
) -> None:
    """ElZhur account links: the full history of links and unlinks (or --current)."""
    listing = CURRENT_LINKS if current else LINKS
    listing.table_columns(columns, wide)
    with read_views(ctx, views_at, school) as db:
        if current:
            rows = [
                r
                for r in queries.profiles(db, school)
                if profile is None or r["profile_id"] == profile
            ]
        else:
            rows = queries.links(db, profile, school)
    listing.emit(rows, fmt, columns=columns, wide=wide)


def classes_command(
    ctx: typer.Context,
    school: SchoolOption = None,
    fmt: FormatOption = OutputFormat.table,
    columns: ColumnsOption = None,
    wide: WideOption = False,
    views_at: ViewsAtOption = None,
) -> None:
    """Classes with their class teachers (2.5) and the school's administrators (2.3)."""
    CLASSES.table_columns(columns, wide)
    with read_views(ctx, views_at, school) as db:
        rows = queries.classes(db, school)
    CLASSES.emit(rows, fmt, columns=columns, wide=wide)


def stats_command(
    ctx: typer.Context,
    school: SchoolOption = None,
    totals: Annotated[bool, typer.Option("--totals", help="Sum each school's classes.")] = False,
    fmt: FormatOption = OutputFormat.table,
    views_at: ViewsAtOption = None,
) -> None:
    """Statistics for the administration (2.3), per school and class: people on the roster
    (each pupil once), memberships of chats (a pupil in three chats counts three), linked
    accounts, invitations, moderation actions and incidents."""
    with read_views(ctx, views_at, school) as db:
        rows = statistics(db, school)
    STATS.emit(school_totals(rows) if totals else rows, fmt)


# -- replay and status --------------------------------------------------------------------------


def replay_command(
    ctx: typer.Context,
    views: Annotated[
        list[str] | None,
        typer.Argument(help=f"Views to rebuild (default all): {', '.join(ALL_NAMES)}."),
    ] = None,
    upto: Annotated[
        int | None,
        typer.Option(min=0, help="Build the state as of this log position, aside."),
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Build the state as it was at this time, by when things happened (ISO 8601 "
            "with offset, or a date: its end), aside.",
        ),
    ] = None,
    as_recorded_at: Annotated[
        str | None,
        typer.Option(
            "--as-recorded-at",
            help="Build the state as the log stood at this time, by when events were "
            "recorded, aside.",
        ),
    ] = None,
    check_: Annotated[
        bool,
        typer.Option(
            "--check", help="Rebuild aside, compare with the live views, exit 1 on any difference."
        ),
    ] = False,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Rebuilds views from the log into fresh tables and swaps them in; prints digests.

    --upto, --as-of and --as-recorded-at leave the live views alone and build a snapshot
    into <data_dir>/views-asof-POSITION.sqlite, which the listings read with --views-at."""
    from sferum_audit.projections.replay import as_of_path, build_as_of, rebuild

    settings = settings_of(ctx)
    options = ViewsSettings()
    try:
        names = resolve_names(views)
    except ValueError as error:
        raise _fail(str(error)) from None
    if sum(x is not None for x in (upto, as_of, as_recorded_at)) + check_ > 1:
        raise _fail("--upto, --as-of, --as-recorded-at and --check exclude each other")
    app = reading_log(settings)
    ctx.call_on_close(app.close)
    head = int(app.recorder.max_notification_id() or 0)
    page = options.views_page_size
    if upto is not None or as_of is not None or as_recorded_at is not None:
        if as_of is not None:
            position = cut_by_occurrence(app, time_option(as_of, "--as-of", end_of_day=True))
        elif as_recorded_at is not None:
            when = time_option(as_recorded_at, "--as-recorded-at", end_of_day=True)
            position = cut_by_recording(app, when)
        else:
            position = min(int(upto or 0), head)
        path = as_of_path(settings.data_dir, position)
        with progress_bar(f"views as of {position}", position) as advance:
            result = build_as_of(app, path, position, progress=advance, page_size=page)
        snapshot = ViewsDatabase.sqlite_file(path, read_only=True)
        try:
            stats_digest = statistics_digest(snapshot)
        finally:
            snapshot.dispose()
        typer.echo(
            f"views as of position {position} written to {path}; read them with "
            f"--views-at {position}",
            err=True,
        )
        _emit_digests(result.digests, stats_digest, position, fmt)
        return
    if check_:
        with stored_views(settings) as db:  # an auditor's write-protected copy stays as it is
            check_views(app, db, names, head, page, fmt)
        return
    db = ViewsDatabase.from_settings(settings, options)
    try:
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


def check_views(
    app: AuditLog, db: ViewsDatabase, names: list[str], head: int, page: int, fmt: OutputFormat
) -> None:
    """``replay --check``: compares ``db`` with a rebuild; exit 1 naming each difference."""
    from sferum_audit.projections.replay import check

    with progress_bar("checking", head) as advance:
        outcome = check(app, db, names, progress=advance, page_size=page)
    _emit_digests(outcome.digests, None, outcome.position, fmt)
    for difference in outcome.differences:
        typer.echo(f"DIFFERENCE {difference.describe()}", err=True)
    if not outcome.ok:
        raise typer.Exit(1)
    typer.echo(f"views match a rebuild at position {outcome.position}", err=True)


def cut_by_occurrence(app: AuditLog, when: datetime | None) -> int:
    """The position for ``--as-of``; says on stderr what the cut holds, and fails with the
    reason when nothing had happened by then."""
    from sferum_audit.projections.replay import position_occurred_by

    assert when is not None
    cut = position_occurred_by(app, when)
    shown = f"{local(when)} {zone_name()}"
    if cut.position == 0:
        first = (
            f"; the first act in the log happened at {local(cut.first_occurred)}"
            if cut.first_occurred
            else "; the log is empty"
        )
        raise _fail(f"error: nothing had happened by {shown}{first}", 1)
    typer.echo(
        f"as of {shown}, by when things happened: every act up to position {cut.position}",
        err=True,
    )
    if cut.later_inside:
        typer.echo(
            f"note: {cut.later_inside} events before position {cut.position} happened after "
            f"{shown} (recorded out of order); the snapshot holds them too",
            err=True,
        )
    return cut.position


def cut_by_recording(app: AuditLog, when: datetime | None) -> int:
    """The position for ``--as-recorded-at``; fails with the reason when nothing had been
    recorded by then."""
    from sferum_audit.projections.replay import first_recorded, position_at

    assert when is not None
    position = position_at(app, when)
    if position == 0:
        first = first_recorded(app)
        said = (
            f"; the first event was recorded at {local(first)} {zone_name()} (to ask about "
            "when acts happened, use --as-of)"
            if first
            else "; the log is empty"
        )
        raise _fail(f"error: nothing had been recorded by {local(when)} {zone_name()}{said}", 1)
    return position


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
    from sferum_audit.projections.runner import ViewRunner

    settings = settings_of(ctx)
    app = reading_log(settings)
    ctx.call_on_close(app.close)
    with stored_views(settings) as db:  # a write-protected copy is left as it is
        runner = ViewRunner(app, db)
        runner.ensure_tables()
        rows = [lag.as_dict() for lag in runner.lag()]
    emit(rows, fmt, ("view", "position", "head", "lag"), title="Views")


def follow_command(ctx: typer.Context) -> None:
    """Keeps the views current until interrupted (the service does this by itself)."""
    from sferum_audit.application.bootstrap import build_audit_log
    from sferum_audit.projections.runner import ViewRunner

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
