"""Reading the refused commands back from the log (``sferum-audit rejected``).

The reason (code, message, subject, school, command type and id) is always shown; the
payload is opened with its subjects' keys and shown as ``[erased]`` (``payload_state``
``erased``) once any of them is destroyed (see ``application.rejections``). A payload
longer than 64 KiB shows its first 64 KiB (``payload_truncated``) beside the full size
and SHA-256 digest.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sferum_audit.application.rejections import REJECTION_TOPIC, read_payload
from sferum_audit.application.service import AuditLog

PAGE_SIZE = 1000
COLUMNS = (
    "position",
    "rejected_at",
    "school_id",
    "command_type",
    "command_id",
    "error_code",
    "error_message",
    "subject",
    "payload",
    "payload_state",
    "named_persons",
    "payload_size",
    "payload_sha256",
    "payload_truncated",
)


def rejected_commands(
    app: AuditLog,
    *,
    school_id: str | None = None,
    code: str | None = None,
    start: int = 1,
    limit: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Each kept rejection in log order, optionally only one school's or one error code's."""
    keys = app.subject_keys
    keys.refresh_forgotten()  # a key destroyed since this process read it is gone here too
    shown = 0
    while page := app.recorder.select_notifications(start, PAGE_SIZE, topics=[REJECTION_TOPIC]):
        for notification in page:
            event: Any = app.mapper.to_domain_event(notification)
            if school_id is not None and event.school_id != school_id:
                continue
            if code is not None and event.error_code != code:
                continue
            if limit is not None and shown >= limit:
                return
            shown += 1
            payload, state = read_payload(keys, vars(event))
            yield {
                "position": notification.id,
                "rejected_at": event.timestamp,
                "school_id": event.school_id,
                "command_type": event.command_type,
                "command_id": event.command_id,
                "error_code": event.error_code,
                "error_message": event.error_message,
                "subject": event.subject,
                "delivery_key": event.delivery_key,
                "payload": payload,
                "payload_state": state,
                "payload_encoding": event.payload_encoding,
                # Records kept before payloads were bounded have none of these three.
                "payload_size": getattr(event, "payload_size", None),
                "payload_sha256": getattr(event, "payload_sha256", None),
                "payload_truncated": bool(getattr(event, "payload_truncated", False)),
                "named_persons": list(getattr(event, "named_persons", None) or []),
                "actor_id": event.ctx.actor_id,
                "correlation_id": event.ctx.correlation_id,
            }
        if len(page) < PAGE_SIZE:
            return
        start = page[-1].id + 1
