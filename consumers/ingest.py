"""The ingest: one pulled batch of command messages in, recorded events and acks out.

A batch comes from one partition, in stream order, and is worked through in that order:

1. every message is read (``ingest_parsing``): bytes that are not a command (too large,
   too deep, too long a number, bad JSON, schema errors, a subject that names another
   school or type) are refused with a code and a reason; reading never raises;
2. the valid commands are decided together by ``AuditLog.handle_batch`` (one transaction),
   each accepted or refused on its own (``ingest_decision``); an unexpected error is logged
   and the batch halved until the one command that causes it is found;
3. refused deliveries are kept as ``RejectedCommand`` records, the original payload sealed
   under the keys of the people it names (``ingest_rejections``);
4. every delivery that was recorded, found to be a duplicate, or refused is acked in order,
   and a publisher that asked for an answer (``reply_to`` header) gets one
   (``ingest_settling``, ``ingest_replies``).

**A partition never moves past a command being retried.** When a command fails (the store
is unreachable, or it makes the service fail), everything before it is settled, and it and
everything after it in the batch are held here, undecided, while JetStream is told they are
in progress: after the backoff they are tried again, in the same order. Once its tries
(``max_deliveries``, JetStream's deliveries included) are used up it goes to the
dead-letter stream (``ingest_dead_letters``) and the rest of the batch goes on. A store
outage counts a try for every held message, so a batch held through a long outage is
dead-lettered in stream order, not one message per backoff. No newer command is fetched
meanwhile, since the partition handles one batch at a time; if the partition is handed
over or the service stops, the held messages are naked in order and come back first.

Every message thus ends in exactly one of recorded (or duplicate), rejected, or
dead-lettered.

An accepted erasure command, once recorded, is finished by ``application.erasure``'s
``finish_erasure`` (the same as ``forget``); if that fails, the command is redelivered
(as a duplicate, it finishes what was left).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import structlog
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.errors import NotJSMessageError

from sferum_audit.application.commands import (
    CommandLimits,
    ErasePersonalData,
)
from sferum_audit.application.erasure import MessageEraser, finish_erasure
from sferum_audit.application.rejections import (
    system_context,
)
from sferum_audit.application.service import AuditLog
from sferum_audit.consumers import subjects as hdr
from sferum_audit.consumers.ingest_dead_letters import send_to_dead_letters
from sferum_audit.consumers.ingest_decision import decide_in_order, is_transient
from sferum_audit.consumers.ingest_parsing import Delivery, partition_of_batch, read_delivery
from sferum_audit.consumers.ingest_rejections import Refusal, save_rejections
from sferum_audit.consumers.ingest_replies import dead_letter_answer
from sferum_audit.consumers.ingest_settling import BatchReport, give_back, settle
from sferum_audit.consumers.metrics import Metrics
from sferum_audit.consumers.settings import PipelineSettings
from sferum_audit.consumers.subjects import Subjects

__all__ = ["BatchReport", "Delivery", "IngestProcessor", "Refusal", "Transport", "is_transient"]

log = structlog.get_logger("sferum_audit.ingest")

HOLD_STEP = 0.05


class Transport(Protocol):
    """What the ingest sends besides acks: answers and dead letters."""

    async def reply(self, subject: str, payload: bytes, headers: dict[str, str]) -> None: ...

    async def dead_letter(self, subject: str, payload: bytes, headers: dict[str, str]) -> None:
        """Publishes to the dead-letter stream and waits for its PubAck (raises on failure)."""


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
        purge_dead_letters: MessageEraser | None = None,
    ) -> None:
        """``purge_dead_letters`` erases the messages naming a person from the service's
        streams (see ``consumers.dead_letters.erase_naming``); without it (no streams, as
        in memory) nothing is erased there."""
        self.app = app
        self.settings = settings
        self.subjects = Subjects(settings.subject_prefix)
        self.limits = settings.command_limits()
        self.transport = transport
        self.metrics = metrics or Metrics()
        self.stream_key = stream_key or settings.commands_stream
        self.stopping = stopping or asyncio.Event()
        self.on_recorded = on_recorded
        self._run_sync = run_sync or asyncio.to_thread
        self._purge_dead_letters = purge_dead_letters
        self._released: set[int] = set()

    # -- partitions being handed over ---------------------------------------------------------

    def release(self, partition: int) -> None:
        """The partition is being handed over (or restarted): stop holding its messages."""
        self._released.add(partition)

    def resume(self, partition: int) -> None:
        self._released.discard(partition)

    def _must_let_go(self, partition: int | None) -> bool:
        return self.stopping.is_set() or (partition is not None and partition in self._released)

    # -- the batch --------------------------------------------------------------------------

    async def process(self, messages: Sequence[Msg]) -> BatchReport:
        """Handles one batch completely: every message ends acked, dead-lettered, or (when
        the partition is let go mid-retry) naked in order for whoever consumes it next."""
        started = time.perf_counter()
        report = BatchReport()
        limits: CommandLimits = self.limits
        deliveries = [
            read_delivery(i, msg, self.subjects, self.stream_key, limits)
            for i, msg in enumerate(messages)
        ]
        partition = partition_of_batch(list(messages))
        if self._must_let_go(partition):
            await self._give_back_unread(deliveries)
            return report
        heartbeat = asyncio.create_task(self._keep_alive(messages))
        try:
            await self._work_through(deliveries, report, partition)
        finally:
            heartbeat.cancel()
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
        return report

    async def _give_back_unread(self, deliveries: list[Delivery]) -> None:
        """A batch fetched while its partition is being let go is not decided here."""
        given = await give_back(deliveries)
        log.info("batch of a partition being let go given back", naked=given)

    async def _work_through(
        self, deliveries: list[Delivery], report: BatchReport, partition: int | None
    ) -> None:
        """Decides and settles in order; holds and retries from the first failure on."""
        pending = deliveries
        while pending:
            blocked = await self._try(pending)
            await self._settle(pending[:blocked], report)
            if blocked == len(pending):
                return
            pending = await self._after_failure(pending[blocked:], report, partition)

    async def _try(self, pending: list[Delivery]) -> int:
        """Decides ``pending`` in order; the index of the first delivery that failed (all
        before it are decided and followed up), or ``len(pending)``."""
        for delivery in pending:
            delivery.undecided()
        decided = await self._record(pending)
        await self._destroy_erased_keys(decided)
        await self._keep_rejections(decided)
        return next((i for i, d in enumerate(pending) if d.failure is not None), len(pending))

    async def _record(self, pending: list[Delivery]) -> list[Delivery]:
        """Runs the valid commands; the deliveries decided (up to the first failure)."""
        valid = [d for d in pending if d.command is not None]
        commands = [d.command for d in valid if d.command is not None]
        decision = await decide_in_order(self._run_sync, self.app.handle_batch, commands)
        for delivery, result in zip(valid, decision.results, strict=False):
            delivery.result = result
        if decision.failure is None:
            return pending
        culprit = valid[len(decision.results)]
        culprit.failure = decision.failure
        return pending[: pending.index(culprit)]

    async def _after_failure(
        self, held: list[Delivery], report: BatchReport, partition: int | None
    ) -> list[Delivery]:
        """What is left to try once ``held[0]`` failed: all of ``held`` again after the
        backoff, or what follows the dead letters once tries are used up; ``[]`` when the
        partition is let go (``held`` is then naked, in order)."""
        culprit = held[0]
        assert culprit.failure is not None
        transient = is_transient(culprit.failure)
        report.transient = report.transient or transient
        if transient:
            self.metrics.transient_failures.inc()
        # An outage fails every held message's try; a bug only the culprit's.
        tried = held if transient else [culprit]
        if culprit.tries >= self.settings.max_deliveries:
            dead = await self._dead_letter_in_order(tried, culprit.failure, report)
            if dead:
                return held[dead:]
        delay = self.settings.delay_after(culprit.tries)
        report.retried += 1
        self.metrics.commands.labels(outcome="retried").inc()
        log.warning(
            "command not recorded; it and what follows it in its partition are held",
            command_id=culprit.command_id,
            tries=culprit.tries,
            held=len(held),
            delay=delay,
            error=repr(culprit.failure),
        )
        if not await self._hold(delay, partition):
            given = await give_back(held)
            log.info("held messages given back in order", naked=given, held=len(held))
            return []
        for delivery in tried:
            delivery.held_tries += 1
        return held

    async def _dead_letter_in_order(
        self, tried: list[Delivery], failure: BaseException, report: BatchReport
    ) -> int:
        """Dead-letters the tried deliveries whose tries are used up, from the first on;
        how many (0 if the dead-letter stream did not take the first)."""
        count = 0
        for delivery in tried:
            if delivery.tries < self.settings.max_deliveries:
                break
            delivery.failure = delivery.failure or failure
            try:
                await send_to_dead_letters(self.transport, self.subjects, delivery)
            except Exception as error:
                log.error(
                    "dead letter not stored; the message stays held",
                    command_id=delivery.command_id,
                    error=repr(error),
                )
                break
            await self._terminate(delivery)
            report.dead_lettered += 1
            count += 1
        return count

    async def _terminate(self, delivery: Delivery) -> None:
        try:
            await delivery.msg.term()
        except (NatsError, OSError) as error:  # it comes back, and is dead-lettered again
            log.warning("term not sent", command_id=delivery.command_id, error=repr(error))
        self.metrics.dead_letters.inc()
        self.metrics.commands.labels(outcome="dead_lettered").inc()
        log.warning(
            "command dead-lettered",
            command_id=delivery.command_id,
            tries=delivery.tries,
            error=repr(delivery.failure),
        )
        await self._send_answer(delivery, dead_letter_answer(delivery))

    async def _hold(self, seconds: float, partition: int | None) -> bool:
        """Waits ``seconds`` while the held messages stay in progress; ``False`` as soon as
        the partition is handed over or the service stops."""
        deadline = time.monotonic() + seconds
        while not self._must_let_go(partition):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return True
            await asyncio.sleep(min(HOLD_STEP, remaining))
        return False

    # -- follow-ups of decided commands ------------------------------------------------------

    async def _destroy_erased_keys(self, deliveries: list[Delivery]) -> None:
        """An accepted erasure, once recorded, is finished by ``application.erasure``'s
        ``finish_erasure`` (key, free text, NATS messages, act, views), the same as
        through ``forget``; if it fails, the command is redelivered and finishes then."""
        for delivery in deliveries:
            command, result = delivery.command, delivery.result
            if not isinstance(command, ErasePersonalData) or result is None or not result.accepted:
                continue
            try:
                await finish_erasure(
                    self.app,
                    command,
                    result,
                    messages=self._purge_dead_letters,
                    run_sync=self._run_sync,
                )
            except Exception as error:
                log.warning(
                    "erasure not finished; redelivery follows",
                    command_id=command.command_id,
                    error=repr(error),
                )
                delivery.result, delivery.failure = None, error

    async def _keep_rejections(self, deliveries: list[Delivery]) -> None:
        refusals = [self._refusal(d) for d in deliveries]
        kept = [r for r in refusals if r is not None]
        if not kept:
            return
        try:
            await self._run_sync(save_rejections, self.app, kept)
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

    # -- acks, answers -------------------------------------------------------------------------

    async def _settle(self, deliveries: list[Delivery], report: BatchReport) -> None:
        await settle(deliveries, report, self.metrics, self._send_answer)

    async def _send_answer(self, delivery: Delivery, answer: dict[str, Any]) -> None:
        reply_to = delivery.headers.get(hdr.REPLY_TO)
        if not reply_to or not hdr.reply_allowed(
            reply_to, self.settings.reply_prefixes, self.settings.subject_prefix
        ):
            return
        headers = {}
        if correlation := delivery.headers.get(hdr.CORRELATION_ID):
            headers[hdr.CORRELATION_ID] = correlation
        try:
            await self.transport.reply(reply_to, json.dumps(answer).encode(), headers)
        except (NatsError, OSError) as error:  # the answer is a courtesy; the record stands
            log.warning("answer not sent", command_id=delivery.command_id, error=repr(error))

    async def _keep_alive(self, messages: Sequence[Msg]) -> None:
        """Tells JetStream a long batch is still being worked on, so it is not redelivered."""
        interval = max(self.settings.ack_wait / 3, 0.5)
        while True:
            await asyncio.sleep(interval)
            for msg in messages:
                if msg.is_acked:  # settled already (acked, naked or terminated)
                    continue
                try:
                    await msg.in_progress()
                except NotJSMessageError:
                    return
                except (NatsError, OSError):
                    break  # not connected: try again at the next interval
