"""Free text in other people's records that names an erased person, found and shredded.

A moderation reason about one pupil may name another ("травля одноклассницы (Секретова
Алиса)"). Free text is sealed under two keys, its subject's and its own record's (see
``personal_data_mapper``), so erasing a person can make exactly the records that name
them unreadable: ``shred_mentions`` opens every free-text field of the log, looks for the
names the person registered with (``domain.erasure.name_variants``: case, ``ё`` and word
order folded), and destroys the text key of each record that names them. Refused
payloads that name them in their text (not at a person place, which ``forget`` reaches by
id) lose their rejection's own key the same way. The stored bytes do not change, so the
Merkle proofs and ``verify`` hold.

What it cannot reach: text stored before free text had keys of its own (no ``text`` part:
it stays readable until its subject is erased; each such record is listed with
``"shredded": false``), a name spelled differently from every registered form, and a
person named without their name (a nickname, "the girl from 5A").
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Mapper, Notification

from sferum_audit.application.personal_data_mapper import event_type
from sferum_audit.application.rejections import (
    REJECTION_TOPIC,
    read_payload,
    rejection_subject,
)
from sferum_audit.application.service import AuditLog
from sferum_audit.domain.erasure import mentions
from sferum_audit.domain.personal_data import NAME_FIELDS, PERSONAL_FIELDS

PAGE_SIZE = 2000


def shred_mentions(app: AuditLog, subject_id: str, variants: Sequence[str]) -> list[dict[str, Any]]:
    """Destroys the text keys of other records whose free text names the person; returns
    one entry per record field (position, event type, aggregate, field, whether shredded)."""
    if not variants:
        return []
    touched: list[dict[str, Any]] = []
    keys = app.subject_keys
    for notification in _notifications(app):
        kind = event_type(notification.topic)
        if notification.topic == REJECTION_TOPIC:
            touched += _rejection(app, notification, subject_id, variants)
            continue
        spec = PERSONAL_FIELDS.get(kind)
        if spec is None:
            continue
        sealed: Any = Mapper.to_domain_event(app.mapper, notification)
        stored = vars(sealed)
        if stored.get(spec.subject_field) == subject_id:
            continue  # their own record: their own key erases it
        fields = [n for n in spec.fields if n not in NAME_FIELDS and stored.get(n) is not None]
        if not fields:
            continue
        opened = vars(app.mapper.to_domain_event(notification))
        for name in fields:
            value = opened.get(name)
            if not isinstance(value, str) or not mentions(value, variants):
                continue
            text = stored[name].get("text") if isinstance(stored[name], dict) else None
            if text is not None:
                keys.destroy(str(text))
            touched.append(
                {
                    "position": notification.id,
                    "event_type": kind,
                    "aggregate_id": str(notification.originator_id),
                    "field": name,
                    "shredded": text is not None,
                }
            )
    return touched


def _rejection(
    app: AuditLog, notification: Notification, subject_id: str, variants: Sequence[str]
) -> list[dict[str, Any]]:
    event: Any = Mapper.to_domain_event(app.mapper, notification)
    state = dict(vars(event))
    if subject_id in (state.get("named_persons") or ()):
        return []  # named by id: their own key already seals a share
    text, payload_state = read_payload(app.subject_keys, state)
    if payload_state == "erased" or not mentions(_unescaped(text), variants):
        return []
    shredded = payload_state == "readable"
    if shredded:
        app.subject_keys.destroy(rejection_subject(UUID(str(notification.originator_id))))
    return [
        {
            "position": notification.id,
            "event_type": "RejectedCommand.Recorded",
            "aggregate_id": str(notification.originator_id),
            "field": "payload",
            "shredded": shredded,
        }
    ]


def _unescaped(text: str) -> str:
    """The payload, and, when it is JSON, the same with its ``\\u`` escapes undone."""
    try:
        return text + "\n" + json.dumps(json.loads(text), ensure_ascii=False)
    except ValueError:
        return text


def _notifications(app: AuditLog) -> Iterator[Notification]:
    head = int(app.recorder.max_notification_id() or 0)
    position = 1
    while position <= head:
        page = app.recorder.select_notifications(position, PAGE_SIZE, stop=head)
        if not page:
            return
        yield from page
        position = page[-1].id + 1
