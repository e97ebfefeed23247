"""Writing to the log and reading it raw: ``record``, ``schema``, ``moderate``,
``report-access`` and ``events``.

``record`` takes JSON Lines (the schema of ``parse_command``) from a file or stdin; the
friendly commands build the same commands from flags, for people. ``events`` streams the
log in global order, page by page, so it works on stores of any size.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from itertools import islice
from pathlib import Path
from typing import Annotated, Any, BinaryIO, Final
from uuid import NAMESPACE_URL, uuid4, uuid5

import structlog
import typer
from eventsourcing.persistence import PersistenceError

from sferum_audit.application.authentication import Signature, vouched_command
from sferum_audit.application.bootstrap import build_audit_log
from sferum_audit.application.commands import (
    DEFAULT_LIMITS,
    Command,
    CommandLimits,
    CommandRejected,
    parse_command,
    read_json,
)
from sferum_audit.application.commands import command_json_schema as command_schema
from sferum_audit.application.local_sources import LocalSigner, local_source_id
from sferum_audit.application.logging_setup import bound_command
from sferum_audit.application.service import AuditLog, CommandResult
from sferum_audit.application.settings import Settings
from sferum_audit.cli.times import DATE_ONLY, example, parse_time, zone_name
from sferum_audit.consumers.settings import PipelineSettings
from sferum_audit.domain.regulation import GROUNDS, ROLE_OF_AUTHORITY

BATCH_SIZE = 500
INTERNAL = "internal-error"

log = structlog.get_logger(__name__)


def audit_log(ctx: typer.Context) -> AuditLog:
    """The audit log on the store the global options chose; closed when the command ends."""
    settings = ctx.find_object(Settings) or Settings()
    app = build_audit_log(settings)
    ctx.call_on_close(app.close)
    return app


def local_signer(ctx: typer.Context) -> LocalSigner:
    """This installation's signing keys (created in the data folder on first use)."""
    return LocalSigner.from_settings(ctx.find_object(Settings) or Settings())


def record_signed(ctx: typer.Context, app: AuditLog, command: Command) -> CommandResult:
    """Records one locally signed command, registering the school's local source first if
    needed (a refused registration is the answer: it says why nothing could be signed)."""
    signature = command.credentials.signature if command.credentials else None
    if signature is not None and signature.source_id == local_source_id(command.school_id):
        registration = local_signer(ctx).ensure_registered(app, command.school_id)
        if registration is not None and not registration.accepted:
            return registration
    return app.handle(command)


# -- recording many commands ------------------------------------------------------------------


def refused(command_id: str, error: CommandRejected) -> CommandResult:
    """The result of input that never became a command (bad JSON, schema error)."""
    return CommandResult(command_id, "rejected", (), error.code, error.message)


def parse_line(
    raw: bytes, limits: CommandLimits = DEFAULT_LIMITS, signer: LocalSigner | None = None
) -> Command | CommandResult:
    """A command from one JSON line, or the refusal that names what is wrong with it (never
    an exception, whatever the bytes).

    A signed envelope (``{"source", "timestamp", "signature", "command": "<the exact
    command JSON>"}``) keeps its own signature; any other line is signed by ``signer``,
    the local CLI's source (see ``application.local_sources``)."""
    raw = raw.strip()
    envelope: tuple[bytes, Signature] | None = None
    try:
        envelope = signed_envelope(json_or_none(raw, limits))
        if envelope is not None:
            return vouched_command(envelope[0], envelope[1], datetime.now(UTC), limits)
        command = parse_command(raw, limits)
        if signer is None:
            return command
        signature = signer.signature(raw, command.school_id, command.type)
        return vouched_command(raw, signature, datetime.now(UTC), limits)
    except CommandRejected as error:
        # the id inside an envelope is not trusted either
        return refused("" if envelope is not None else command_id_in(raw, limits), error)


def json_or_none(raw: bytes, limits: CommandLimits) -> Any:
    try:
        return read_json(raw, limits)
    except CommandRejected:
        return None


def command_id_in(raw: bytes, limits: CommandLimits) -> str:
    """The ``command_id`` of a refused line, if it has a readable one."""
    data = json_or_none(raw, limits)
    command_id = data.get("command_id") if isinstance(data, dict) else None
    return command_id[:200] if isinstance(command_id, str) else ""


ENVELOPE_KEYS: Final = frozenset({"source", "timestamp", "signature", "command"})


def signed_envelope(data: Any) -> tuple[bytes, Signature] | None:
    """The command bytes and signature of a signed envelope, or ``None`` for a plain
    command; an envelope with other keys or types is refused."""
    if not isinstance(data, dict) or "signature" not in data or "command" not in data:
        return None
    if set(data) != ENVELOPE_KEYS or not all(isinstance(data[k], str) for k in ENVELOPE_KEYS):
        raise CommandRejected(
            "a signed envelope has exactly the text fields source, timestamp, signature and "
            "command (the exact command JSON)",
            code="invalid-envelope",
        )
    signature = Signature(data["source"], data["timestamp"], data["signature"])
    return data["command"].encode("utf-8"), signature


def read_commands(
    stream: BinaryIO, limits: CommandLimits = DEFAULT_LIMITS, signer: LocalSigner | None = None
) -> Iterator[tuple[int, Command | CommandResult]]:
    """(line number, command or refusal) for every non-blank line of a JSON Lines stream."""
    for number, raw in enumerate(stream, start=1):
        if raw.strip():
            yield number, parse_line(raw, limits, signer)


def record_in_batches(
    app: AuditLog,
    items: Iterable[tuple[int, Command | CommandResult]],
    size: int | None = None,
    signer: LocalSigner | None = None,
) -> Iterator[tuple[int, CommandResult]]:
    """Records the commands ``size`` at a time (one transaction each) and yields every
    item's result in input order; each command is still accepted or refused on its own.

    With ``signer``, a school's first locally signed command is preceded by the local
    source's registration when the store has none; a refused registration is reported at
    the line that needed it."""
    items = iter(items)
    while chunk := list(islice(items, size or BATCH_SIZE)):
        commands = [item for _, item in chunk if not isinstance(item, CommandResult)]
        sent = list(signer.with_registrations(commands, app.source)) if signer else []
        if not sent:
            sent = [(command, False) for command in commands]
        results = iter(decide(app, [command for command, _ in sent]) if sent else ())
        # each command's result, and the refused registration of its source, if any
        outcome: dict[int, tuple[CommandResult, CommandResult | None]] = {}
        refused_registration: CommandResult | None = None
        for command, is_registration in sent:
            result = next(results)
            if is_registration:
                refused_registration = None if result.accepted else result
                continue
            outcome[id(command)] = (result, refused_registration)
            refused_registration = None
        for number, item in chunk:
            if isinstance(item, CommandResult):
                yield number, item
                continue
            result, registration = outcome[id(item)]
            if registration is not None:
                yield number, registration
            with bound_command(item.command_id, item.correlation_id):
                log.debug("command handled", line=number, status=result.status)
            yield number, result


def decide(app: AuditLog, commands: list[Command]) -> list[CommandResult]:
    """``handle_batch``, except that a command that makes the service fail unexpectedly is
    found by halving the chunk and refused alone (``internal-error``), in order, while the
    commands around it are recorded. The store being unreachable still stops ``record``."""
    try:
        return app.handle_batch(commands)
    except (PersistenceError, OSError):
        raise
    except Exception as error:
        if len(commands) == 1:
            log.error("command fails unexpectedly", command_id=commands[0].command_id)
            message = f"the service failed on this command ({type(error).__name__}: {error})"
            return [CommandResult(commands[0].command_id, "rejected", (), INTERNAL, message)]
    middle = len(commands) // 2
    return decide(app, commands[:middle]) + decide(app, commands[middle:])


class Tally:
    """How many commands were recorded, repeated (duplicates) and rejected."""

    def __init__(self) -> None:
        self.counts = {"recorded": 0, "duplicate": 0, "rejected": 0}
        self.events = 0

    def add(self, result: CommandResult) -> None:
        self.counts[result.status] += 1
        if result.status == "recorded":
            self.events += len(result.events)

    def summary(self) -> str:
        c = self.counts
        return (
            f"recorded {c['recorded']} ({self.events} events), "
            f"duplicates {c['duplicate']}, rejected {c['rejected']}"
        )


def rejection_line(number: int, result: CommandResult) -> str:
    """How a rejected line is reported: its number, the error code, the reason."""
    return f"line {number}: {result.error_code}: {result.error_message}"


class RecordFormat(StrEnum):
    """``text`` for people (rejections on stderr, a summary); ``json`` for scripts."""

    text = "text"
    json = "json"


def record(
    ctx: typer.Context,
    file: Annotated[
        str, typer.Argument(help="JSON Lines file of commands, one per line; '-' for stdin.")
    ],
    fmt: Annotated[
        RecordFormat,
        typer.Option("--format", help="text: rejections and a summary; json: a result per line."),
    ] = RecordFormat.text,
) -> None:
    """Records commands from JSON Lines; exits 1 if any line was rejected.

    A plain command line is signed with this installation's local keys (register-school
    and source management by the operator key, the rest by the school's local CLI source,
    registered on first use); a line {"source", "timestamp", "signature", "command"}
    carries its own source's signature over the exact command text. Each line is accepted
    or refused on its own, whatever its bytes; rejections name the line number, the error
    code and the reason, and every other line is still recorded. Recording the same file
    again records nothing new.
    """
    tally = Tally()
    limits = PipelineSettings().command_limits()
    with _open_input(file) as stream:
        app = audit_log(ctx)
        signer = local_signer(ctx)
        lines = read_commands(stream, limits, signer)
        for number, result in record_in_batches(app, lines, None, signer):
            tally.add(result)
            if fmt is RecordFormat.json:
                typer.echo(json.dumps({"line": number, **result.as_dict()}, ensure_ascii=False))
            elif not result.accepted:
                typer.echo(rejection_line(number, result), err=True)
    typer.echo(tally.summary(), err=fmt is RecordFormat.json)
    if tally.counts["rejected"]:
        raise typer.Exit(1)


def _open_input(file: str) -> AbstractContextManager[BinaryIO]:
    """The named file, or stdin (left open) for ``-``."""
    if file == "-":
        return nullcontext(sys.stdin.buffer)
    return Path(file).open("rb")


def schema() -> None:
    """Prints the JSON Schema of the commands that record accepts, one per type."""
    typer.echo(json.dumps(command_schema(), ensure_ascii=False, indent=2))


# -- friendly commands ---------------------------------------------------------------------------


def moment(value: str | None, flag: str) -> str:
    """An ISO 8601 time with a timezone, as the command schema wants it; now if not given.
    Typed times follow the rule of ``cli.times`` (examples in the school's zone); a bare
    date is refused here, since an act happens at a moment, not on a whole day."""
    if value is None:
        return datetime.now(UTC).isoformat()
    day = value.strip()
    if DATE_ONLY.match(day):
        raise typer.BadParameter(
            f"{value!r} has no time and no timezone; give both, e.g. "
            f"{example(day + 'T09:00')} ({zone_name()}) or {day}T09:00Z (UTC)",
            param_hint=flag,
        )
    return parse_time(value, flag).isoformat()


def occurred_at(app: AuditLog, envelope: Envelope) -> str:
    """``--at``; without it, the time the first command under ``--command-id`` occurred (so
    a retry is the same command and answers "already recorded"), else now."""
    if envelope.at is None and envelope.command_id is not None:
        first = app.first_occurred_at(envelope.command_id)
        if first is not None:
            return first.isoformat()
    return moment(envelope.at, "--at")


def derived_id(prefix: str, command_id: str | None) -> str:
    """A new id for what a command creates; derived from ``--command-id`` when given, so a
    retry names the same thing."""
    if command_id is None:
        return f"{prefix}-{uuid4().hex[:12]}"
    return f"{prefix}-{uuid5(NAMESPACE_URL, command_id).hex[:12]}"


@dataclass(frozen=True, slots=True)
class Envelope:
    """What every friendly command gives besides its own fields: school, actor (id, role),
    and the optional command id, time and correlation id."""

    school: str
    actor: tuple[str, str]
    command_id: str | None
    at: str | None
    correlation_id: str | None


def submit(
    ctx: typer.Context, command_type: str, envelope: Envelope, fields: dict[str, Any]
) -> None:
    """Records one command built from flags; prints what was recorded or the refusal, and
    exits 1 on a refusal."""
    app = audit_log(ctx)
    data = {
        "type": command_type,
        "command_id": envelope.command_id or str(uuid4()),
        "correlation_id": envelope.correlation_id,
        "school_id": envelope.school,
        "actor": {"id": envelope.actor[0], "role": envelope.actor[1]},
        "occurred_at": occurred_at(app, envelope),
        **fields,
    }
    try:
        command = local_signer(ctx).vouched({k: v for k, v in data.items() if v is not None})
    except CommandRejected as error:
        result = refused(data["command_id"], error)
    else:
        with bound_command(command.command_id, command.correlation_id):
            result = record_signed(ctx, app, command)
    print_result(command_type, result)
    if not result.accepted:
        raise typer.Exit(1)


def print_result(command_type: str, result: CommandResult) -> None:
    """What a command recorded (event, position) or why it was refused, for a person."""
    if not result.accepted:
        typer.echo(f"refused: {result.error_code}: {result.error_message}", err=True)
        return
    said = "recorded" if result.status == "recorded" else "already recorded (same command id)"
    typer.echo(f"{said}: {command_type}, command {result.command_id}")
    for event in result.events:
        typer.echo(
            f"  position {event.position}: {event.type} "
            f"(aggregate {event.aggregate_id}, version {event.version})"
        )


GROUND_HELP = "Ground: " + ", ".join(sorted(GROUNDS)) + " (sferum-audit regulation)."
School = Annotated[str, typer.Option("--school", help="School id.")]
Chat = Annotated[str, typer.Option("--chat", help="Chat id, e.g. class-5a.")]
Moderator = Annotated[str, typer.Option("--moderator", help="Profile id of the moderator.")]
ActingAs = Annotated[
    str | None,
    typer.Option(
        "--as",
        help="Role the actor acts in; default: the role of the authority "
        "(2.3 administrator, 2.4 teacher, 2.5 class-teacher).",
        show_default=False,
    ),
]
Authority = Annotated[str, typer.Option("--authority", help="Authority: 2.3, 2.4 or 2.5.")]
Ground = Annotated[str, typer.Option("--ground", help=GROUND_HELP)]
Reason = Annotated[str, typer.Option("--reason", help="Why, in words (at most 1000 chars).")]
Member = Annotated[str, typer.Option("--member", help="Profile id of the member.")]
CommandId = Annotated[
    str | None,
    typer.Option("--command-id", help="Idempotency key; default: a new UUID.", show_default=False),
]
At = Annotated[
    str | None,
    typer.Option(
        "--at",
        help="When it happened (ISO 8601 with timezone); default: now, or for a retried "
        "--command-id the time of its first sending.",
        show_default=False,
    ),
]
Correlation = Annotated[
    str | None,
    typer.Option("--correlation-id", help="Ties related commands together.", show_default=False),
]

moderate_app = typer.Typer(
    help="Moderation actions (2.3-2.5) on grounds of 4.2, 'law', 'third-party-rights'."
)


def envelope_of(
    school: str,
    moderator: str,
    as_role: str | None,
    authority: str,
    extras: tuple[str | None, str | None, str | None],
) -> Envelope:
    """A moderator's envelope; the role defaults to the one the authority is exercised in."""
    role = as_role or ROLE_OF_AUTHORITY.get(authority, "teacher")
    return Envelope(school, (moderator, role), *extras)


def _content_action(command_type: str) -> Callable[..., None]:
    def action(
        ctx: typer.Context,
        school: School,
        chat: Chat,
        moderator: Moderator,
        authority: Authority,
        ground: Ground,
        message: Annotated[str, typer.Option("--message", help="Id of the message.")],
        author: Annotated[str, typer.Option("--author", help="Profile id of its author.")],
        reason: Reason,
        excerpt: Annotated[
            str | None,
            typer.Option("--excerpt", help="The offending text, as evidence.", show_default=False),
        ] = None,
        as_role: ActingAs = None,
        command_id: CommandId = None,
        at: At = None,
        correlation_id: Correlation = None,
    ) -> None:
        extras = (command_id, at, correlation_id)
        envelope = envelope_of(school, moderator, as_role, authority, extras)
        fields: dict[str, Any] = {"chat_id": chat, "authority": authority, "ground": ground}
        fields |= {"message_id": message, "author_id": author, "reason": reason, "excerpt": excerpt}
        submit(ctx, command_type, envelope, fields)

    return action


moderate_app.command(
    "remove-content", help="Removes a message from a chat under the moderator's control."
)(_content_action("remove-content"))
moderate_app.command(
    "block-content", help="Blocks a message (hidden, kept as evidence) in a chat."
)(_content_action("block-content"))


@moderate_app.command("block-member")
def block_member(
    ctx: typer.Context,
    school: School,
    chat: Chat,
    moderator: Moderator,
    authority: Authority,
    ground: Ground,
    member: Member,
    reason: Reason,
    as_role: ActingAs = None,
    command_id: CommandId = None,
    at: At = None,
    correlation_id: Correlation = None,
) -> None:
    """Blocks a member: they leave the chat and cannot rejoin until unblocked."""
    envelope = envelope_of(school, moderator, as_role, authority, (command_id, at, correlation_id))
    fields = {"chat_id": chat, "authority": authority, "ground": ground, "reason": reason}
    submit(ctx, "block-member", envelope, fields | {"member_id": member})


@moderate_app.command("unblock-member")
def unblock_member(
    ctx: typer.Context,
    school: School,
    chat: Chat,
    moderator: Moderator,
    authority: Authority,
    member: Member,
    reason: Reason,
    as_role: ActingAs = None,
    command_id: CommandId = None,
    at: At = None,
    correlation_id: Correlation = None,
) -> None:
    """Lifts a block, so the member may rejoin the chat."""
    envelope = envelope_of(school, moderator, as_role, authority, (command_id, at, correlation_id))
    fields = {"chat_id": chat, "authority": authority, "member_id": member, "reason": reason}
    submit(ctx, "unblock-member", envelope, fields)


@moderate_app.command("warn")
def warn(
    ctx: typer.Context,
    school: School,
    chat: Chat,
    moderator: Moderator,
    ground: Ground,
    member: Member,
    reason: Reason,
    authority: Annotated[
        str, typer.Option("--authority", help="Warnings are the class teacher's power (2.5).")
    ] = "2.5",
    as_role: ActingAs = None,
    command_id: CommandId = None,
    at: At = None,
    correlation_id: Correlation = None,
) -> None:
    """The class teacher warns a member about liability for breaking the rules (2.5)."""
    envelope = envelope_of(school, moderator, as_role, authority, (command_id, at, correlation_id))
    fields = {"chat_id": chat, "authority": authority, "ground": ground, "reason": reason}
    submit(ctx, "warn-about-liability", envelope, fields | {"member_id": member})


def report_access(
    ctx: typer.Context,
    school: School,
    reporter: Annotated[str, typer.Option("--reporter", help="Profile id of who reports.")],
    noticed_at: Annotated[
        str, typer.Option("--noticed-at", help="When the access was noticed (ISO 8601).")
    ],
    how: Annotated[str, typer.Option("--how", help="How it was noticed.")],
    description: Annotated[str, typer.Option("--description", help="What happened.")],
    affected: Annotated[
        str | None,
        typer.Option("--affected", help="Affected profile; default: the reporter's own."),
    ] = None,
    as_role: Annotated[
        str | None,
        typer.Option(
            "--as",
            help="student or parent; default: student for one's own account, else parent.",
            show_default=False,
        ),
    ] = None,
    incident: Annotated[
        str | None,
        typer.Option(
            "--incident",
            help="Incident id; default: a new one (derived from --command-id when given).",
            show_default=False,
        ),
    ] = None,
    elzhur_account: Annotated[
        str | None,
        typer.Option("--elzhur-account", help="The ElZhur account concerned.", show_default=False),
    ] = None,
    told_admin_at: Annotated[
        str | None,
        typer.Option("--told-admin-at", help="When the school's administrator was told."),
    ] = None,
    told_operator_at: Annotated[
        str | None,
        typer.Option("--told-operator-at", help="When the operator (info@sferum.ru) was told."),
    ] = None,
    command_id: CommandId = None,
    at: At = None,
    correlation_id: Correlation = None,
) -> None:
    """Reports unauthorised access to an account (4.2.2), by its holder or a parent."""
    affected = affected or reporter
    told = {
        "school-administrator": told_admin_at and moment(told_admin_at, "--told-admin-at"),
        "platform-operator": told_operator_at and moment(told_operator_at, "--told-operator-at"),
    }
    incident_id = incident or derived_id("inc", command_id)
    role = as_role or ("student" if affected == reporter else "parent")
    envelope = Envelope(school, (reporter, role), command_id, at, correlation_id)
    fields = {
        "incident_id": incident_id,
        "affected_profile_id": affected,
        "elzhur_account_id": elzhur_account,
        "noticed_at": moment(noticed_at, "--noticed-at"),
        "how_noticed": how,
        "description": description,
        "told": {party: when for party, when in told.items() if when},
    }
    submit(ctx, "report-unauthorised-access", envelope, fields)
    typer.echo(f"incident id: {incident_id}")


# -- the raw log ---------------------------------------------------------------------------------


def register(app: typer.Typer) -> None:
    """Adds ``record``, ``schema``, ``moderate``, ``report-access`` and ``events``."""
    app.command("record")(record)
    app.command("schema")(schema)
    app.add_typer(moderate_app, name="moderate")
    app.command("report-access")(report_access)
