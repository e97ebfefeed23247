"""The ingest: one pulled batch of command messages in, recorded events and acks out.

For each batch, in the order JetStream delivered it:

1. every message is parsed with the command schema; bytes that are not a command (bad
   JSON, schema errors, a subject that names another school or type) are refused; the
   command keeps its bytes and signature headers (``Sferum-Source``, ``-Timestamp``,
   ``-Signature``), which the application checks before deciding it;
2. the valid commands are recorded together by ``AuditLog.handle_batch`` (one
   transaction), each accepted or refused on its own; a refused command does not take
   its batch down;
3. refused deliveries are kept as ``RejectedCommand`` records, the original payload sealed
   under the keys of the people it names (see ``application.rejections``);
4. every message that was recorded, found to be a duplicate, or refused is acked, and a
   publisher that asked for an answer (``reply_to`` header) gets one.

An accepted erasure command destroys the person's key once it is recorded, and then has
the dead letters whose payloads name the person deleted (``purge_dead_letters``, see
``consumers.dead_letters``); if either fails, the command is redelivered (as a duplicate,
it does both again).

When the store cannot be reached, nothing is acked: each message is negatively acked with
the configured backoff and the consumer pauses as long, so later commands of a school do
not overtake earlier ones. A message whose deliveries are used up goes to the dead-letter
stream (and is kept there) before it is terminated. An unexpected error (a bug, a poison
message) is narrowed down by halving the batch, so only the message that causes it is
retried and, in the end, dead-lettered.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog
from eventsourcing.persistence import DataError, IntegrityError, PersistenceError
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.errors import NotJSMessageError

from sferum_audit.application.authentication import signature_from_headers, vouched_command
from sferum_audit.application.commands import Command, CommandRejected
from sferum_audit.application.rejections import (
    RejectedCommand,
    new_rejection,
    subjects_to_key,
    system_context,
)
from sferum_audit.application.service import AuditLog, CommandResult
from sferum_audit.consumers import subjects as hdr
from sferum_audit.consumers.metrics import Metrics
from sferum_audit.consumers.settings import PipelineSettings
from sferum_audit.consumers.subjects import Subjects
from sferum_audit.domain.context import CommandContext

log = structlog.get_logger("sferum_audit.ingest")

ERASE_COMMAND = "erase-personal-data"


def is_transient(error: BaseException) -> bool:
    """Errors of the store or the network: retry later, the command itself is fine."""
    if isinstance(error, DataError):
        return False
    if isinstance(error, PersistenceError | ConnectionError | TimeoutError | OSError):
        return True
    if isinstance(error, sqlite3.OperationalError):
        return True
    module = type(error).__module__
    name = type(error).__name__
    return (module.startswith("psycopg") and name in {"OperationalError", "PoolTimeout"}) or (
        module.startswith("sqlalchemy") and name in {"OperationalError", "InterfaceError"}
    )


class Transport(Protocol):
    """What the ingest sends besides acks: answers and dead letters."""

    async def reply(self, subject: str, payload: bytes, headers: dict[str, str]) -> None: ...

    async def dead_letter(self, subject: str, payload: bytes, headers: dict[str, str]) -> None:
        """Publishes to the dead-letter stream and waits for its PubAck (raises on failure)."""


@dataclass
class Delivery:
    """One message of a batch as the ingest sees it."""

    msg: Msg
    index: int
    stream: str | None
    sequence: int | None
    deliveries: int
    stored_at: datetime | None
    key: str
    school_id: str | None
    command_type: str | None
    command: Command | None = None
    rejection: CommandRejected | None = None
    result: CommandResult | None = None
    failure: BaseException | None = None

    @property
    def headers(self) -> dict[str, str]:
        return self.msg.headers or {}

    @property
    def command_id(self) -> str | None:
        if self.command is not None:
            return self.command.command_id
        return self.headers.get(hdr.MSG_ID)


@dataclass
class BatchReport:
    """What one batch came to (for metrics, logs and tests)."""

    recorded: int = 0
    duplicate: int = 0
    rejected: int = 0
    retried: int = 0
    dead_lettered: int = 0
    transient: bool = False
    pause: float = 0.0
    positions: list[int] = field(default_factory=list)
    # (stored in JetStream at, acked at, last event position) of each recorded command, as
    # UNIX times: the publish-to-recorded lag (and, with a view's position, to the view).
    samples: list[tuple[float, float, int]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Refusal:
    """What a refused delivery's record is made of; it is sealed and saved off the event
    loop, since sealing reads (and may create) subject keys in the database."""

    ctx: CommandContext
    delivery_key: str
    school_id: str | None
    command_type: str | None
    command_id: str | None
    subject: str
    error_code: str
    error_message: str
    data: bytes


class IngestProcessor:
    """Turns pulled batches into recorded commands, rejections, acks and answers."""

    def __init__(
        self,
        app: AuditLog,
        settings: PipelineSettings,
        transport: Transport,
        *,
        metrics: Metrics | None = None,
        stream_key: str | None = None,
        stopping: asyncio.Event | None = None,
        on_recorded: Callable[[], None] | None = None,
        run_sync: Callable[..., Awaitable[Any]] | None = None,
        purge_dead_letters: Callable[[str], Awaitable[list[int]]] | None = None,
    ) -> None:
        """``purge_dead_letters`` deletes the dead letters naming a person and returns their
        sequences; without it (no dead-letter stream, as in memory) nothing is purged."""
        self.app = app
        self.settings = settings
        self.subjects = Subjects(settings.subject_prefix)
        self.transport = transport
        self.metrics = metrics or Metrics()
        self.stream_key = stream_key or settings.commands_stream
        self.stopping = stopping or asyncio.Event()
        self.on_recorded = on_recorded
        self._run_sync = run_sync or asyncio.to_thread
        self._purge_dead_letters = purge_dead_letters

    # -- the batch --------------------------------------------------------------------------

    async def process(self, messages: Sequence[Msg]) -> BatchReport:
        """Handles one batch completely: every message ends acked, nak'ed or dead-lettered."""
        started = time.perf_counter()
        report = BatchReport()
        deliveries = [self._delivery(i, msg) for i, msg in enumerate(messages)]
        heartbeat = asyncio.create_task(self._keep_alive(messages))
        try:
            valid = [d for d in deliveries if d.command is not None]
            if valid:
                await self._record(valid)
            await self._destroy_erased_keys(deliveries)
            await self._keep_rejections(deliveries)
        finally:
            heartbeat.cancel()
        await self._settle(deliveries, report)
        self.metrics.batches.inc()
        self.metrics.batch_seconds.observe(time.perf_counter() - started)
        if report.recorded and self.on_recorded is not None:
            self.on_recorded()
        log.info(
            "batch handled",
            size=len(messages),
            recorded=report.recorded,
            duplicate=report.duplicate,
            rejected=report.rejected,
            retried=report.retried,
            dead_lettered=report.dead_lettered,
            seconds=round(time.perf_counter() - started, 4),
        )
        if report.pause > 0:
            await self._pause(report.pause)
        return report

    def _delivery(self, index: int, msg: Msg) -> Delivery:
        stream = sequence = stored_at = None
        deliveries = 1
        try:
            metadata = msg.metadata
        except NotJSMessageError:
            digest = hashlib.sha256(msg.subject.encode() + b"\0" + msg.data).hexdigest()[:32]
            key = f"memory/{(msg.headers or {}).get(hdr.MSG_ID, '')}/{digest}"
        else:
            stream, sequence = metadata.stream, metadata.sequence.stream
            deliveries, stored_at = metadata.num_delivered, metadata.timestamp
            key = f"{self.stream_key}/{sequence}"
        school_id, command_type = self.subjects.split_stored(msg.subject)
        delivery = Delivery(
            msg, index, stream, sequence, deliveries, stored_at, key, school_id, command_type
        )
        try:
            # The signature is checked when the command is decided (application layer); a
            # refusal there flows into the kept rejections like any other.
            command = vouched_command(
                msg.data, signature_from_headers(msg.headers), stored_at or datetime.now(UTC)
            )
        except CommandRejected as error:
            delivery.rejection = error
            return delivery
        mismatch = self._subject_mismatch(delivery, command)
        if mismatch:
            delivery.rejection = CommandRejected(mismatch, code="subject-mismatch")
            delivery.school_id, delivery.command_type = command.school_id, command.type
            return delivery
        delivery.command = command
        delivery.school_id, delivery.command_type = command.school_id, command.type
        return delivery

    def _subject_mismatch(self, delivery: Delivery, command: Command) -> str | None:
        """A command must travel on its own school's and type's subject: the partition, and so
        the order of the school's commands, is chosen by the subject."""
        if delivery.school_id is not None and delivery.school_id != command.school_id:
            return (
                f"published for school {delivery.school_id!r} but the command is for "
                f"school {command.school_id!r}"
            )
        if delivery.command_type is not None and delivery.command_type != command.type:
            return f"published as {delivery.command_type!r} but the command is a {command.type!r}"
        return None

    # -- recording --------------------------------------------------------------------------

    async def _record(self, deliveries: list[Delivery]) -> None:
        outcome = await self._apply(deliveries)
        for delivery in deliveries:
            value = outcome[delivery.index]
            if isinstance(value, BaseException):
                delivery.failure = value
            else:
                delivery.result = value

    async def _apply(self, deliveries: list[Delivery]) -> dict[int, CommandResult | BaseException]:
        """Records the commands; on an unexpected error, halves the batch to find the one
        command that causes it (the halves are applied in order)."""
        commands = [d.command for d in deliveries if d.command is not None]
        try:
            results = await self._run_sync(self.app.handle_batch, commands)
        except Exception as error:
            if is_transient(error) or len(deliveries) == 1:
                if not is_transient(error):
                    log.error(
                        "command fails unexpectedly",
                        command_id=deliveries[0].command_id,
                        error=repr(error),
                    )
                return {d.index: error for d in deliveries}
            log.warning("batch fails unexpectedly; narrowing it down", error=repr(error))
            middle = len(deliveries) // 2
            first = await self._apply(deliveries[:middle])
            stopped = next(
                (v for v in first.values() if isinstance(v, BaseException) and is_transient(v)),
                None,
            )
            if stopped is not None:
                return {**first, **{d.index: stopped for d in deliveries[middle:]}}
            return {**first, **(await self._apply(deliveries[middle:]))}
        return {d.index: r for d, r in zip(deliveries, results, strict=True)}

    async def _destroy_erased_keys(self, deliveries: list[Delivery]) -> None:
        """An erasure is recorded first, then the subject's key is destroyed (as
        ``application.erasure.erase`` does) and the dead letters naming them are deleted,
        which their plain-text payloads leave no other way to erase; a repeat destroys
        nothing more."""
        for delivery in deliveries:
            command, result = delivery.command, delivery.result
            if command is None or result is None or command.type != ERASE_COMMAND:
                continue
            if not result.accepted:
                continue
            subject_id = str(getattr(command, "subject_id", ""))
            try:
                await self._run_sync(self.app.subject_keys.destroy, subject_id)
                purged = await self._purge(subject_id)
            except Exception as error:
                log.warning(
                    "erasure not finished (key or dead letters); redelivery follows",
                    command_id=command.command_id,
                    error=repr(error),
                )
                delivery.result, delivery.failure = None, error
                continue
            if purged:
                log.info(
                    "dead letters naming an erased person deleted",
                    command_id=command.command_id,
                    erasure_id=getattr(command, "erasure_id", None),
                    sequences=purged,
                )

    async def _purge(self, subject_id: str) -> list[int]:
        if self._purge_dead_letters is None:
            return []
        return await self._purge_dead_letters(subject_id)

    async def _keep_rejections(self, deliveries: list[Delivery]) -> None:
        refusals = [self._refusal(d) for d in deliveries]
        kept = [r for r in refusals if r is not None]
        if not kept:
            return
        try:
            await self._run_sync(self._save_rejections, kept)
        except Exception as error:
            for delivery in deliveries:
                if delivery.rejection is not None or (
                    delivery.result is not None and not delivery.result.accepted
                ):
                    delivery.failure = error

    def _refusal(self, delivery: Delivery) -> Refusal | None:
        if delivery.rejection is not None:
            code, message = delivery.rejection.code, delivery.rejection.message
            ctx = system_context(delivery.key)
        elif (
            delivery.result is not None
            and not delivery.result.accepted
            and not delivery.result.repeat  # refused before: already kept and published
        ):
            assert delivery.command is not None
            code = delivery.result.error_code or "rejected"
            message = delivery.result.error_message or ""
            ctx = delivery.command.context()
        else:
            return None
        return Refusal(
            ctx=ctx,
            delivery_key=delivery.key,
            school_id=delivery.school_id,
            command_type=delivery.command_type,
            command_id=delivery.command_id,
            subject=delivery.msg.subject,
            error_code=code,
            error_message=message,
            data=delivery.msg.data,
        )

    def _rejection_records(self, refusals: list[Refusal]) -> list[RejectedCommand]:
        """The records, payloads sealed; keys destroyed elsewhere are seen first, and the
        keys the batch needs are made in one transaction."""
        keys = self.app.subject_keys
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

    def _save_rejections(self, refusals: list[Refusal]) -> None:
        records = self._rejection_records(refusals)
        try:
            self.app.save(*records)
        except IntegrityError:
            # A redelivery of a batch whose rejections were kept before its acks got out.
            for record in records:
                try:
                    self.app.save(record)
                except IntegrityError:
                    continue

    # -- acks, answers, retries ---------------------------------------------------------------

    async def _settle(self, deliveries: list[Delivery], report: BatchReport) -> None:
        now = datetime.now(UTC)
        debug = logging.getLogger().isEnabledFor(logging.DEBUG)
        for delivery in deliveries:
            if delivery.failure is not None:
                await self._retry_or_dead_letter(delivery, report)
                continue
            answer = self._answer(delivery)
            await delivery.msg.ack()
            status = answer["status"]
            if status in ("recorded", "duplicate") and debug:
                log.debug(
                    f"command {status}",
                    command_id=delivery.command_id,
                    correlation_id=self._correlation_id(delivery),
                    school_id=delivery.school_id,
                    command_type=delivery.command_type,
                    positions=[e["position"] for e in answer.get("events", [])],
                )
            if status == "recorded":
                report.recorded += 1
                if delivery.result is not None and delivery.result.events:
                    report.positions.extend(e.position for e in delivery.result.events)
                    if delivery.stored_at is not None:
                        report.samples.append(
                            (
                                delivery.stored_at.timestamp(),
                                time.time(),
                                delivery.result.events[-1].position,
                            )
                        )
            elif status == "duplicate":
                report.duplicate += 1
            else:
                report.rejected += 1
                code = answer["error"]["code"]
                self.metrics.rejections.labels(code=code).inc()
                log.info(
                    "command rejected",
                    command_id=delivery.command_id,
                    correlation_id=self._correlation_id(delivery),
                    school_id=delivery.school_id,
                    command_type=delivery.command_type,
                    code=code,
                    reason=answer["error"]["message"],
                )
            self.metrics.commands.labels(outcome=status).inc()
            if delivery.stored_at is not None:
                self.metrics.ingest_lag.observe(
                    max(0.0, (now - delivery.stored_at).total_seconds())
                )
            await self._send_answer(delivery, answer)

    def _answer(self, delivery: Delivery) -> dict[str, Any]:
        if delivery.result is not None:
            return delivery.result.as_dict()
        assert delivery.rejection is not None
        return {
            "command_id": delivery.command_id,
            "status": "rejected",
            "error": {"code": delivery.rejection.code, "message": delivery.rejection.message},
        }

    @staticmethod
    def _correlation_id(delivery: Delivery) -> str | None:
        if delivery.command is not None:
            return delivery.command.correlation_id or delivery.command.command_id
        return delivery.headers.get(hdr.CORRELATION_ID)

    async def _send_answer(self, delivery: Delivery, answer: dict[str, Any]) -> None:
        reply_to = delivery.headers.get(hdr.REPLY_TO)
        if not reply_to:
            return
        headers = {}
        if correlation := delivery.headers.get(hdr.CORRELATION_ID):
            headers[hdr.CORRELATION_ID] = correlation
        try:
            await self.transport.reply(reply_to, json.dumps(answer).encode(), headers)
        except (NatsError, OSError) as error:  # the answer is a courtesy; the record stands
            log.warning("answer not sent", command_id=delivery.command_id, error=repr(error))

    async def _retry_or_dead_letter(self, delivery: Delivery, report: BatchReport) -> None:
        assert delivery.failure is not None
        transient = is_transient(delivery.failure)
        report.transient = report.transient or transient
        if delivery.deliveries >= self.settings.max_deliveries:
            try:
                await self._dead_letter(delivery)
            except Exception as error:
                log.error(
                    "dead letter not stored; will be redelivered",
                    command_id=delivery.command_id,
                    error=repr(error),
                )
            else:
                await delivery.msg.term()
                report.dead_lettered += 1
                self.metrics.dead_letters.inc()
                self.metrics.commands.labels(outcome="dead_lettered").inc()
                await self._send_answer(
                    delivery,
                    {
                        "command_id": delivery.command_id,
                        "status": "dead-lettered",
                        "error": {"code": "dead-letter", "message": repr(delivery.failure)},
                    },
                )
                return
        delay = self.settings.delay_after(delivery.deliveries)
        await delivery.msg.nak(delay=delay)
        report.retried += 1
        if transient:
            report.pause = max(report.pause, delay)
            self.metrics.transient_failures.inc()
        self.metrics.commands.labels(outcome="retried").inc()
        log.warning(
            "command not recorded; redelivery follows",
            command_id=delivery.command_id,
            delivery=delivery.deliveries,
            delay=delay,
            error=repr(delivery.failure),
        )

    async def _dead_letter(self, delivery: Delivery) -> None:
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
                hdr.DLQ_DELIVERIES: str(delivery.deliveries),
                hdr.DLQ_ERROR: repr(delivery.failure)[:1000],
                hdr.DLQ_FAILED_AT: datetime.now(UTC).isoformat(),
                hdr.DLQ_MSG_ID: delivery.headers.get(hdr.MSG_ID, ""),
            }
        )
        subject = self.subjects.dead_letter(delivery.school_id, delivery.command_type)
        await self.transport.dead_letter(subject, delivery.msg.data, headers)
        log.warning(
            "command dead-lettered",
            command_id=delivery.command_id,
            correlation_id=self._correlation_id(delivery),
            deliveries=delivery.deliveries,
            error=repr(delivery.failure),
        )

    async def _keep_alive(self, messages: Sequence[Msg]) -> None:
        """Tells JetStream a long batch is still being worked on, so it is not redelivered."""
        interval = max(self.settings.ack_wait / 3, 0.5)
        while True:
            await asyncio.sleep(interval)
            for msg in messages:
                try:
                    await msg.in_progress()
                except (NotJSMessageError, NatsError):
                    return

    async def _pause(self, seconds: float) -> None:
        """Holds the consumer while its naked messages wait for redelivery, so newer commands
        of the same schools do not overtake them; SIGTERM ends the wait."""
        try:
            await asyncio.wait_for(self.stopping.wait(), timeout=seconds)
        except TimeoutError:
            return
