"""Settling decided deliveries, strictly in stream order: acks, counts, metrics, logs.

A delivery that was recorded, found to be a duplicate, or refused is acked, counted in the
batch's ``BatchReport`` and answered (``answer`` is the processor's way of answering). An ack
that does not get out (NATS unreachable) is logged: the message comes back after
``ack_wait`` and is then answered as a duplicate (or refused again, with the record it
already has), so nothing is decided twice.

``give_back`` naks messages in order, for another owner or a later try.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from nats.errors import Error as NatsError

from sferum_audit.consumers.ingest_parsing import Delivery
from sferum_audit.consumers.ingest_replies import answer_of, correlation_id_of
from sferum_audit.consumers.metrics import Metrics

log = structlog.get_logger("sferum_audit.ingest")

Answer = Callable[[Delivery, dict[str, Any]], Awaitable[None]]


@dataclass
class BatchReport:
    """What one batch came to (for metrics, logs and tests)."""

    recorded: int = 0
    duplicate: int = 0
    rejected: int = 0
    retried: int = 0
    dead_lettered: int = 0
    transient: bool = False
    positions: list[int] = field(default_factory=list)
    # (stored in JetStream at, acked at, last event position) of each recorded command, as
    # UNIX times: the publish-to-recorded lag (and, with a view's position, to the view).
    samples: list[tuple[float, float, int]] = field(default_factory=list)


async def ack(delivery: Delivery) -> bool:
    try:
        await delivery.msg.ack()
    except (NatsError, OSError) as error:
        log.warning(
            "ack not sent; the message comes back and is answered from the record",
            command_id=delivery.command_id,
            error=repr(error),
        )
        return False
    return True


async def settle(
    deliveries: Sequence[Delivery], report: BatchReport, metrics: Metrics, answer: Answer
) -> None:
    """Acks, counts and answers each decided delivery, in order."""
    now = datetime.now(UTC)
    debug = logging.getLogger().isEnabledFor(logging.DEBUG)
    for delivery in deliveries:
        reply = answer_of(delivery)
        await ack(delivery)
        status = reply["status"]
        if status == "recorded":
            count_recorded(delivery, report)
        elif status == "duplicate":
            report.duplicate += 1
        else:
            report.rejected += 1
            code = reply["error"]["code"]
            metrics.rejections.labels(code=code).inc()
            log.info(
                "command rejected",
                command_id=delivery.command_id,
                correlation_id=correlation_id_of(delivery),
                school_id=delivery.school_id,
                command_type=delivery.command_type,
                code=code,
                reason=reply["error"]["message"],
            )
        if debug and status != "rejected":
            log.debug(
                f"command {status}",
                command_id=delivery.command_id,
                correlation_id=correlation_id_of(delivery),
                school_id=delivery.school_id,
                command_type=delivery.command_type,
                positions=[e["position"] for e in reply.get("events", [])],
            )
        metrics.commands.labels(outcome=status).inc()
        if delivery.stored_at is not None:
            metrics.ingest_lag.observe(max(0.0, (now - delivery.stored_at).total_seconds()))
        await answer(delivery, reply)


def count_recorded(delivery: Delivery, report: BatchReport) -> None:
    report.recorded += 1
    if delivery.result is None or not delivery.result.events:
        return
    report.positions.extend(e.position for e in delivery.result.events)
    if delivery.stored_at is not None:
        report.samples.append(
            (delivery.stored_at.timestamp(), time.time(), delivery.result.events[-1].position)
        )


async def give_back(deliveries: Sequence[Delivery], delay: float = 0.0) -> int:
    """Naks the messages in order (``delay`` seconds before each may come back); returns
    how many were naked before NATS stopped answering (the rest return after ack_wait)."""
    given = 0
    for delivery in deliveries:
        try:
            await delivery.msg.nak(delay=delay or None)
        except (NatsError, OSError):
            break
        given += 1
    return given
