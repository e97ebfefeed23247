"""What the ingest answers a publisher that asked (``reply_to`` header): the JSON answer of
one settled delivery, and the correlation id it travels with."""

from __future__ import annotations

from typing import Any

from sferum_audit.consumers import subjects as hdr
from sferum_audit.consumers.ingest_parsing import Delivery


def answer_of(delivery: Delivery) -> dict[str, Any]:
    """``recorded``/``duplicate`` with positions, or ``rejected`` with code and reason."""
    if delivery.result is not None:
        return delivery.result.as_dict()
    assert delivery.rejection is not None
    return {
        "command_id": delivery.command_id,
        "status": "rejected",
        "error": {"code": delivery.rejection.code, "message": delivery.rejection.message},
    }


def dead_letter_answer(delivery: Delivery) -> dict[str, Any]:
    return {
        "command_id": delivery.command_id,
        "status": "dead-lettered",
        "error": {"code": "dead-letter", "message": repr(delivery.failure)[:1000]},
    }


def correlation_id_of(delivery: Delivery) -> str | None:
    if delivery.command is not None:
        return delivery.command.correlation_id or delivery.command.command_id
    return delivery.headers.get(hdr.CORRELATION_ID)
