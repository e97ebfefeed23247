"""Moving a message whose tries are used up to the dead-letter stream.

A dead letter keeps the original payload and headers (without ``reply_to``), with
``Nats-Msg-Id`` = ``dead/<delivery key>`` (so a repeated attempt is stored once) and where
it came from, how often it was tried and the last error (``Sferum-*`` headers, see
``consumers.subjects``). ``consumers.dead_letters`` lists and retries them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

from sferum_audit.consumers import subjects as hdr
from sferum_audit.consumers.ingest_parsing import Delivery
from sferum_audit.consumers.subjects import Subjects


class DeadLetterSink(Protocol):
    async def dead_letter(self, subject: str, payload: bytes, headers: dict[str, str]) -> None:
        """Publishes to the dead-letter stream and waits for its PubAck (raises on failure)."""


def dead_letter_headers(delivery: Delivery) -> dict[str, str]:
    headers = {
        key: value
        for key, value in delivery.headers.items()
        if key not in {hdr.MSG_ID, hdr.REPLY_TO}
    }
    headers.update(
        {
            hdr.MSG_ID: f"dead/{delivery.key}",
            hdr.DLQ_SUBJECT: delivery.msg.subject,
            hdr.DLQ_STREAM: delivery.stream or "",
            hdr.DLQ_SEQUENCE: str(delivery.sequence or ""),
            hdr.DLQ_DELIVERIES: str(delivery.tries),
            hdr.DLQ_ERROR: repr(delivery.failure)[:1000],
            hdr.DLQ_FAILED_AT: datetime.now(UTC).isoformat(),
            hdr.DLQ_MSG_ID: delivery.headers.get(hdr.MSG_ID, ""),
        }
    )
    return headers


async def send_to_dead_letters(
    sink: DeadLetterSink, subjects: Subjects, delivery: Delivery
) -> None:
    """Stores the dead letter (raises if the stream did not confirm it)."""
    subject = subjects.dead_letter(delivery.school_id, delivery.command_type)
    await sink.dead_letter(subject, delivery.msg.data, dead_letter_headers(delivery))
