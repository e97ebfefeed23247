"""Erasure of a person's personal data: record it, then destroy their key.

The order matters: the erasure event is saved first, so the log never lacks the record of
a destruction that happened; destroying a key twice is harmless, so a failed run is
simply run again with the same ``command_id``.

Destroying a person's key also makes every refused command's payload that names them
unreadable (each is sealed under all the keys of the people it names, see
``application.rejections``); ``erase`` says which ones. A refused payload that names
nobody the service can tell (bytes that are not JSON, or personal data at an unexpected
place) is erased on its own by ``erase_rejected_payload``, the same way: record, then
destroy the rejection's own key.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from sferum_audit.application.commands import ErasePersonalData
from sferum_audit.application.rejections import (
    REJECTION_TOPIC,
    RejectedCommand,
    rejection_subject,
    rejections_naming,
)
from sferum_audit.application.service import AuditLog, CommandResult, RecordedEvent
from sferum_audit.domain.context import CommandContext
from sferum_audit.domain.erasure import ErasureNotPermitted, name_variants
from sferum_audit.domain.errors import DomainError
from sferum_audit.domain.personal_data import ERASED
from sferum_audit.domain.profile import Profile
from sferum_audit.domain.school import School


@dataclass(frozen=True, slots=True)
class ErasureOutcome:
    """What ``erase`` did: the recorded command result, whether a key was destroyed now,
    and the log positions of the refused commands whose payloads named the person (all
    unreadable once the key is gone)."""

    result: CommandResult
    key_destroyed_now: bool
    rejected_payloads: tuple[int, ...] = ()


def erase(app: AuditLog, command: ErasePersonalData) -> ErasureOutcome:
    """Records the erasure and destroys the subject's key; refused commands destroy nothing."""
    result = app.handle(command)
    if not result.accepted:
        return ErasureOutcome(result, key_destroyed_now=False)
    destroyed = app.subject_keys.destroy(command.subject_id)
    rejected = tuple(rejections_naming(app, command.subject_id))
    return ErasureOutcome(result, key_destroyed_now=destroyed, rejected_payloads=rejected)


def keep_refused(app: AuditLog, command: ErasePersonalData, result: CommandResult) -> UUID:
    """Keeps a refused erasure that did not come over NATS (``forget``) the way the ingest
    keeps every refused command: in ``rejected``, its payload sealed, with code and
    message. The delivery key ``cli/<command id>`` makes a rerun find the same record."""
    from sferum_audit.application.rejections import new_rejection, subjects_to_key

    delivery_key = f"cli/{command.command_id}"
    data = command.model_dump_json(exclude_none=True).encode()
    keys = app.subject_keys
    keys.refresh_forgotten()
    keys.ensure_keys(subjects_to_key([(delivery_key, data)]))
    record = new_rejection(
        keys,
        ctx=command.context(),
        delivery_key=delivery_key,
        school_id=command.school_id,
        command_type=command.type,
        command_id=command.command_id,
        subject=f"cli.forget.{command.school_id}",
        error_code=result.error_code or "rejected",
        error_message=result.error_message or "",
        data=data,
    )
    with contextlib.suppress(IntegrityError):  # kept by an earlier run of the same command
        app.save(record)
    return record.id


# -- the follow-up: everything an erasure does after it is recorded -----------------------------

log = logging.getLogger("sferum_audit.erasure")


@dataclass(frozen=True, slots=True)
class ErasedMessage:
    """A message erased from one of the service's NATS streams."""

    stream: str
    sequence: int
    subject: str


class MessageEraser(Protocol):
    """The NATS side of an erasure (``consumers.dead_letters.StreamEraser``)."""

    def erase_naming(
        self, person_id: str, variants: Sequence[str]
    ) -> Awaitable[list[ErasedMessage]]:
        """Erases every message still held that names the person (by id, or by one of
        their ``name_variants``), except erasure commands."""

    def drop_erasure(self, command_id: str) -> Awaitable[list[ErasedMessage]]:
        """Erases the erasure command's own message (the last step, so a failure before
        leaves it to be redelivered) and drops what retention removed from the files."""


ProveErasure = Callable[[RecordedEvent | None, Path], dict[str, Any]]
"""Seals the log and writes the erasure event's inclusion proof beside the act (``forget``
passes one; a running service's sealer seals the event shortly after)."""


class ErasureNotFinished(Exception):
    """A step that must succeed before the act is written failed (NATS unreachable, say);
    the erasure is recorded, and running the same command again finishes it."""


@dataclass
class ErasureReport:
    """What ``finish_erasure`` did; the act lists the same."""

    erasure_id: str
    subject_id: str
    key_destroyed_now: bool = False
    act_path: Path | None = None
    act_written_now: bool = False
    rejected_payloads: tuple[int, ...] = ()
    free_text: list[dict[str, Any]] = field(default_factory=list)
    messages: list[ErasedMessage] = field(default_factory=list)
    messages_problem: str | None = None
    cleaned: list[str] = field(default_factory=list)


async def finish_erasure(
    app: AuditLog,
    command: ErasePersonalData,
    result: CommandResult,
    *,
    messages: MessageEraser | None = None,
    messages_required: bool = True,
    run_sync: Callable[..., Awaitable[Any]] = asyncio.to_thread,
    prove: ProveErasure | None = None,
    operator_name: str | None = None,
    rebuild_views: bool = True,
) -> ErasureReport:
    """Everything an accepted erasure does once it is recorded, the same whether it came
    through ``forget`` or over NATS, and safe to run again (a redelivery, a rerun, a
    second instance): each step skips what is already done.

    1. the names the person registered with are read while their key still opens them;
    2. free text in other records naming them is shredded (``shred_free_text``);
    3. messages still held in the NATS streams naming them are erased (``messages``);
       when that fails and ``messages_required`` (the ingest), ``ErasureNotFinished``
       is raised before anything else, so the redelivery does it all (with the names:
       the key is still there);
    4. the destruction act and log extract are written once, as ``<erasure id>.json``
       and ``.txt`` under ``<data_dir>/erasures/`` (the first writer wins, atomically);
    5. the person's key is destroyed (and the key-encryption key rotated, see
       ``subject_keys``);
    6. as-of view snapshots are removed, the views rebuilt, SQLite write-ahead logs
       checkpointed and truncated (``projections.erasure_cleanup``);
    7. the erasure command's own message, if it came over NATS, is erased last.
    """
    subject_id = command.subject_id
    report = ErasureReport(command.erasure_id, subject_id)
    variants = await run_sync(registered_name_variants, app, subject_id)
    report.free_text = await run_sync(shred_free_text, app, subject_id, variants)
    if messages is not None:
        try:
            report.messages = await messages.erase_naming(subject_id, variants)
        except Exception as error:
            if messages_required:
                raise ErasureNotFinished(f"messages naming {subject_id}: {error!r}") from error
            report.messages_problem = str(error) or repr(error)
    report.rejected_payloads = tuple(await run_sync(rejections_naming_list, app, subject_id))
    key_alive = await run_sync(app.subject_keys.key_for_reading, subject_id)
    report.key_destroyed_now = key_alive is not None
    await run_sync(_write_act, app, command, result, report, prove, operator_name)
    await run_sync(app.subject_keys.destroy, subject_id)
    report.cleaned = await run_sync(_clean_up, app, rebuild_views)
    if messages is not None and report.messages_problem is None:
        try:
            report.messages += await messages.drop_erasure(command.command_id)
        except Exception as error:  # the ack removes it anyway; the erasure is complete
            log.warning("erasure command's own message not erased: %r", error)
    log.info(
        "erasure finished: erasure_id=%s free_text=%d messages=%d",
        command.erasure_id,
        len(report.free_text),
        len(report.messages),
    )
    return report


def registered_name_variants(app: AuditLog, subject_id: str) -> tuple[str, ...]:
    """The forms of the name the person registered with (none once their key is gone)."""
    try:
        profile: Any = app.repository.get(Profile.create_id(subject_id))
    except AggregateNotFoundError:
        return ()
    name = getattr(profile, "display_name", None)
    if not isinstance(name, str) or name == ERASED:
        return ()
    return name_variants([name])


def shred_free_text(
    app: AuditLog, subject_id: str, variants: Sequence[str]
) -> list[dict[str, Any]]:
    """Destroys the keys of the free-text fields in other records that name the person
    (see ``personal_data_mapper``); returns each record touched."""
    from sferum_audit.application.free_text import shred_mentions

    return shred_mentions(app, subject_id, variants)


def rejections_naming_list(app: AuditLog, subject_id: str) -> list[int]:
    return list(rejections_naming(app, subject_id))


def _data_dir(app: AuditLog) -> Path | None:
    settings = getattr(app, "settings", None)
    return None if settings is None else Path(settings.data_dir)


def _write_act(
    app: AuditLog,
    command: ErasePersonalData,
    result: CommandResult,
    report: ErasureReport,
    prove: ProveErasure | None,
    operator_name: str | None,
) -> None:
    # The documents are the integrity package's; imported here, where they are used.
    from sferum_audit.integrity.erasure_act import (
        file_stem,
        log_extract,
        new_act,
        school_name,
        write_act_once,
    )

    data_dir = _data_dir(app)
    if data_dir is None:
        return
    folder = data_dir / "erasures"
    stem = file_stem(command.erasure_id)
    if (folder / f"{stem}.json").exists():
        report.act_path = folder / f"{stem}.json"
        return
    recorded = next((e for e in result.events if e.type == "Erasure.Recorded"), None)
    integrity: dict[str, Any] = {}
    if prove is not None:
        try:
            integrity = prove(recorded, folder / stem)
        except ValueError as exc:  # evidence or proof problems: reported, not fatal
            integrity = {"problem": str(exc)}
    elif recorded is not None:
        integrity = {
            "position": recorded.position,
            "note": "sealed by the running service; prove with "
            f"`sferum-audit prove {recorded.position}`",
        }
    act = new_act(
        act_id=command.erasure_id,
        school_id=command.school_id,
        operator_name=operator_name or school_name(app, command.school_id),
        subject_id=command.subject_id,
        requested_by=command.requested_by,
        administrator_id=command.actor.id,
        reason=command.basis,
        destroyed_at=command.occurred_at,
        erasure_event=recorded.as_dict() if recorded else {},
        key_destroyed_now=report.key_destroyed_now,
        system=str(integrity.get("system", "sferum-audit")),
        extract=log_extract(app, command.subject_id),
    )
    act.integrity = integrity
    act.free_text_records = list(report.free_text)
    act.messages_erased = [vars_of(m) for m in report.messages]
    if report.messages_problem:
        act.messages_erased.append({"problem": report.messages_problem})
    act.rejected_payloads = list(report.rejected_payloads)
    report.act_path, report.act_written_now = write_act_once(folder, act)


def vars_of(message: ErasedMessage) -> dict[str, Any]:
    return {"stream": message.stream, "sequence": message.sequence, "subject": message.subject}


def _clean_up(app: AuditLog, rebuild_views: bool) -> list[str]:
    from sferum_audit.projections.erasure_cleanup import clean_up_after_erasure

    settings = getattr(app, "settings", None)
    if settings is None:
        return []
    return clean_up_after_erasure(app, settings, rebuild_views=rebuild_views)


class UnknownRejection(DomainError):
    """The position does not hold a kept rejection."""

    code = "unknown-rejection"


@dataclass(frozen=True, slots=True)
class RejectedPayloadErasure:
    """What ``erase_rejected_payload`` did: which record, and whether its key went now."""

    rejection_id: UUID
    position: int | None
    key_destroyed_now: bool


def rejection_at(app: AuditLog, position: int) -> UUID:
    """The id of the rejection recorded at log ``position``, or ``UnknownRejection``."""
    found = app.recorder.select_notifications(position, 1, stop=position)
    if not found or found[0].topic != REJECTION_TOPIC:
        raise UnknownRejection(f"position {position} does not hold a rejected command")
    return UUID(str(found[0].originator_id))


def erase_rejected_payload(
    app: AuditLog,
    rejection_id: UUID,
    *,
    by: str,
    basis: str,
    now: datetime | None = None,
) -> RejectedPayloadErasure:
    """Records that one refused payload is erased, by whom and why, then destroys the
    rejection's own key, so the payload is unreadable whoever it names.

    When the rejection's school is in the log, ``by`` must be one of its administrators
    (the operator of the personal data, as for ``forget``); a rejection whose school is
    unknown (its subject named none, or an unregistered one) is erased on the operator's
    word, and the record says who gave it. Running it again destroys nothing more.
    """
    try:
        rejection: Any = app.repository.get(rejection_id)
    except AggregateNotFoundError:
        raise UnknownRejection(f"no rejected command {rejection_id}") from None
    assert isinstance(rejection, RejectedCommand)
    school = _school(app, rejection.school_id)
    if school is not None and not school.is_administrator(by):
        raise ErasureNotPermitted(
            f"{by} is not an administrator of school {rejection.school_id}: personal data "
            "is destroyed by a platform administrator of the school (2.3)"
        )
    command_id = f"forget-rejected-{rejection_id}"
    ctx = CommandContext(
        actor_id=by,
        actor_role="administrator",
        occurred_at=now or datetime.now(UTC),
        command_id=command_id,
        correlation_id=command_id,
    )
    version = rejection.version
    rejection.erase_payload(ctx, basis)
    position = None
    if rejection.version != version:
        recordings = app.save(rejection)
        position = recordings[-1].notification.id
    destroyed = app.subject_keys.destroy(rejection_subject(rejection_id))
    return RejectedPayloadErasure(rejection_id, position, destroyed)


def _school(app: AuditLog, school_id: str | None) -> School | None:
    if not school_id:
        return None
    try:
        school: Any = app.repository.get(School.create_id(school_id))
    except AggregateNotFoundError:
        return None
    return school if isinstance(school, School) else None
