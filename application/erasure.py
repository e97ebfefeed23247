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

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from sferum_audit.application.commands import ErasePersonalData
from sferum_audit.application.rejections import (
    REJECTION_TOPIC,
    RejectedCommand,
    rejection_subject,
    rejections_naming,
)
from sferum_audit.application.service import AuditLog, CommandResult
from sferum_audit.domain.context import CommandContext
from sferum_audit.domain.erasure import ErasureNotPermitted
from sferum_audit.domain.errors import DomainError
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
