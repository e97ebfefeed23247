"""Keeping refused deliveries: one ``RejectedCommand`` record each, payload sealed.

The records are made and saved off the event loop (sealing reads, and may create, subject
keys in the database). One delivery gives one record (its id comes from the delivery key),
so a batch that comes back after its rejections were saved but before its acks got out
saves nothing twice. See ``application.rejections`` for what a record keeps.
"""

from __future__ import annotations

from dataclasses import dataclass

from eventsourcing.persistence import IntegrityError

from sferum_audit.application.rejections import RejectedCommand, new_rejection, subjects_to_key
from sferum_audit.application.service import AuditLog
from sferum_audit.domain.context import CommandContext


@dataclass(frozen=True, slots=True)
class Refusal:
    """What a refused delivery's record is made of."""

    ctx: CommandContext
    delivery_key: str
    school_id: str | None
    command_type: str | None
    command_id: str | None
    subject: str
    error_code: str
    error_message: str
    data: bytes


def rejection_records(app: AuditLog, refusals: list[Refusal]) -> list[RejectedCommand]:
    """The records, payloads sealed; keys destroyed elsewhere are seen first, and the keys
    the batch needs are made in one transaction."""
    keys = app.subject_keys
    keys.refresh_forgotten()
    keys.ensure_keys(subjects_to_key((r.delivery_key, r.data) for r in refusals))
    return [
        new_rejection(
            keys,
            ctx=r.ctx,
            delivery_key=r.delivery_key,
            school_id=r.school_id,
            command_type=r.command_type,
            command_id=r.command_id,
            subject=r.subject,
            error_code=r.error_code,
            error_message=r.error_message,
            data=r.data,
        )
        for r in refusals
    ]


def save_rejections(app: AuditLog, refusals: list[Refusal]) -> None:
    records = rejection_records(app, refusals)
    try:
        app.save(*records)
    except IntegrityError:
        # A redelivery of a batch whose rejections were kept before its acks got out.
        for record in records:
            try:
                app.save(record)
            except IntegrityError:
                continue
