"""The outbound relay: every recorded event, once, in global order, to the events stream.

It reads the event log from a tracked position (no dual writes: the log is the only
source) and publishes each event to ``<prefix>.events.<school>.<Aggregate>.<Event>``
(rejections to ``<prefix>.rejections.<school>.<command-type>``) with its global position as
``Nats-Msg-Id``. Each message also carries ``Nats-Expected-Last-Msg-Id`` = the position
published before it, so JetStream refuses a message that would leave a gap or change the
order; a refused round is simply published again from the last confirmed position.

The position is stored (KV ``relay.position``) only after the PubAcks of a round. After a
crash the relay resumes from the last message the stream actually holds (or the stored
position if the stream is empty), republishing at most the unconfirmed round, which
JetStream's duplicate window absorbs: no gap, no duplicate.

The relay trusts only the log. The last message on the stream counts only if it is
byte for byte what the log holds at the position it names; anything else (a message
someone else published) raises an alarm (error line, ``sferum_audit_relay_foreign_messages``)
and the relay goes on from its last genuine message. A position NATS will never take
(larger than the max payload, refused by the stream) is never skipped: the relay stops
just before it, raises an alarm naming it and why (error line,
``sferum_audit_relay_blocked_position``) and tries again with back-off.

Payloads are JSON. Personal fields stay sealed as they are stored (``{"subject",
"sealed"}``): erasing a person's key must also erase what downstream systems keep.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import OrderedDict
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

import structlog
from eventsourcing.persistence import Mapper, Notification
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.errors import Error as JsError
from nats.js.errors import KeyNotFoundError, NotFoundError
from nats.js.kv import KeyValue

from sferum_audit.application.service import AuditLog, event_type_of
from sferum_audit.consumers import subjects as hdr
from sferum_audit.consumers.metrics import Metrics
from sferum_audit.consumers.settings import PipelineSettings
from sferum_audit.consumers.subjects import Subjects
from sferum_audit.domain.profile import Profile

log = structlog.get_logger("sferum_audit.relay")

POSITION_KEY = "relay.position"
REJECTION_TYPE = "RejectedCommand.Recorded"
EXPECTED_LAST_MSG_ID = "Nats-Expected-Last-Msg-Id"
PUBACK_TIMEOUT = 5.0
FOREIGN_SCAN_LIMIT = 10_000
"""How far back the relay looks for its own last message past foreign ones."""
WRONG_LAST_MSG_ID = 10070
"""JetStream's error code when Nats-Expected-Last-Msg-Id does not match the stream."""
HEADERS_ALLOWANCE = 1024
"""Bytes kept free for a message's headers when checking it against the max payload."""


class Unpublishable(Exception):
    """A position whose message NATS will never take (too large, refused by the stream)."""

    def __init__(self, position: int, reason: str) -> None:
        super().__init__(f"position {position}: {reason}")
        self.position = position
        self.reason = reason


def to_json(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, UUID | Decimal):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, Enum):
        return value.value
    if hasattr(value, "as_dict"):
        return value.as_dict()
    if hasattr(value, "__dict__"):
        return vars(value)
    return str(value)


class SchoolResolver:
    """The school of an event: its own ``school_id``, else its aggregate's (remembered from
    the aggregate's first event in a bounded map, or read from the log on a miss)."""

    def __init__(self, app: AuditLog, maxsize: int = 200_000) -> None:
        self.app = app
        self.maxsize = maxsize
        self._schools: OrderedDict[UUID, str | None] = OrderedDict()

    def remember(self, aggregate_id: UUID, school_id: str | None) -> None:
        self._schools[aggregate_id] = school_id
        self._schools.move_to_end(aggregate_id)
        while len(self._schools) > self.maxsize:
            self._schools.popitem(last=False)

    def school_of(self, event: Any) -> str | None:
        aggregate_id: UUID = event.originator_id
        school = getattr(event, "school_id", None)
        if isinstance(school, str):
            self.remember(aggregate_id, school)
            return school
        if aggregate_id in self._schools:
            school = self._schools[aggregate_id]
        elif event.originator_version == 1:
            school = self._school_from_first(event)
            if school is not None:
                self.remember(aggregate_id, school)
        else:
            school = self._first_school(aggregate_id)
            self.remember(aggregate_id, school)
        if school is not None:
            return school
        # A receipt: the school of the first aggregate its command changed.
        refs = getattr(event, "events", None)
        if isinstance(refs, list) and refs:
            return self._school_of_aggregate(UUID(str(refs[0][0])))
        return None

    def _school_of_aggregate(self, aggregate_id: UUID) -> str | None:
        if aggregate_id not in self._schools:
            self.remember(aggregate_id, self._first_school(aggregate_id))
        return self._schools[aggregate_id]

    def _first_school(self, aggregate_id: UUID) -> str | None:
        for first in self.app.repository.event_store.get(aggregate_id, lte=1):
            return self._school_from_first(first)
        return None

    def _school_from_first(self, first: Any) -> str | None:
        """From an aggregate's first event: its school, or (an ElzhurAccount) the school of
        the profile that first claimed it."""
        school = getattr(first, "school_id", None)
        if isinstance(school, str):
            return school
        profile_id = getattr(first, "profile_id", None)
        if isinstance(profile_id, str):
            profile = Profile.create_id(profile_id)
            if profile != first.originator_id:
                return self._school_of_aggregate(profile)
        return None


class RelayRoundBroken(JsError):
    """Part of a round was confirmed, the rest not (resume from the confirmed position)."""

    def __init__(self, position: int) -> None:
        super().__init__(description=f"round broken after position {position}")


def _retryable(error: JsError) -> bool:
    """A refusal that a resync or a later try can cure (not a property of the message)."""
    err_code = getattr(error, "err_code", None)
    code = getattr(error, "code", None)
    return err_code == WRONG_LAST_MSG_ID or code in (None, 503, 408)


class EventRelay:
    """Publishes the log to the events stream; run it on one instance (a singleton lease)."""

    def __init__(
        self,
        app: AuditLog,
        js: JetStreamContext,
        state: KeyValue,
        settings: PipelineSettings,
        *,
        metrics: Metrics | None = None,
    ) -> None:
        self.app = app
        self.js = js
        self.state = state
        self.settings = settings
        self.subjects = Subjects(settings.subject_prefix)
        self.metrics = metrics or Metrics()
        self.schools = SchoolResolver(app)
        self.wake = asyncio.Event()
        self.position = 0
        self.published = 0
        self._last_published: str | None = None
        self._careful_until = 0.0

    # -- where to start ---------------------------------------------------------------------

    async def start_position(self) -> int:
        """The last position the events stream holds *as the log holds it*, else the stored
        one, else 0.

        The stream's last message is compared with the event the log holds at the
        position it names (subject and bytes). A message the log does not hold (someone
        else published it) raises the alarm (``relay_foreign`` metric, an error line with
        its stream sequence) and the relay looks further back for the last genuine one,
        then goes on from there; JetStream's ``Nats-Expected-Last-Msg-Id`` is then the
        foreign message's id (or omitted), so the next publish is not refused forever.
        """
        stored = 0
        try:
            entry = await self.state.get(POSITION_KEY)
            stored = int((entry.value or b"0").decode())
        except (KeyNotFoundError, ValueError):
            stored = 0
        info = await self.js.stream_info(self.settings.events_stream)
        if not (info.state.messages and info.state.last_seq):
            self._last_published = None
            return stored
        try:
            last = await self.js.get_msg(self.settings.events_stream, info.state.last_seq)
        except NotFoundError:
            return stored
        last_id = (last.headers or {}).get(hdr.MSG_ID)
        self._last_published = last_id
        if last_id and await self._genuine(last):
            return int(last_id)
        self._foreign(last)
        found = await self._last_genuine(info.state.first_seq or 1, info.state.last_seq - 1)
        return stored if found is None else found

    async def _last_genuine(self, first_seq: int, sequence: int) -> int | None:
        """The position of the last genuine message at or before ``sequence`` (``None`` if
        there is none within ``FOREIGN_SCAN_LIMIT`` messages: then the stored position);
        each foreign one on the way is an alarm."""
        for seq in range(sequence, max(first_seq, sequence - FOREIGN_SCAN_LIMIT) - 1, -1):
            try:
                msg = await self.js.get_msg(self.settings.events_stream, seq)
            except NotFoundError:
                continue
            if await self._genuine(msg):
                return int((msg.headers or {})[hdr.MSG_ID])
            self._foreign(msg)
        return None

    async def _genuine(self, msg: Any) -> bool:
        """Whether ``msg`` is exactly what the relay publishes for the position it names."""
        msg_id = (msg.headers or {}).get(hdr.MSG_ID)
        if not msg_id or not msg_id.isdigit() or int(msg_id) < 1:
            return False
        position = int(msg_id)
        found: Sequence[Notification] = await asyncio.to_thread(
            self.app.recorder.select_notifications, position, 1
        )
        if not found or found[0].id != position:
            return False
        _position, subject, payload, _headers = (await asyncio.to_thread(self._messages, found))[0]
        return bool(subject == msg.subject and payload == msg.data)

    def _foreign(self, msg: Any) -> None:
        # Forged ids may wait in JetStream's duplicate window: publish one by one till then.
        self._careful_until = time.monotonic() + self.settings.duplicate_window
        self.metrics.relay_foreign.inc()
        log.error(
            "ALARM: a message on the events stream is not in the log; the relay goes on "
            "from the log",
            stream=self.settings.events_stream,
            sequence=getattr(msg, "seq", None),
            subject=msg.subject,
            msg_id=(msg.headers or {}).get(hdr.MSG_ID),
        )

    # -- the loop -----------------------------------------------------------------------------

    async def run(self, stopping: asyncio.Event) -> None:
        self.position = await self.start_position()
        log.info("relay starts", position=self.position)
        failures = 0
        while not stopping.is_set():
            try:
                moved = await self.publish_round()
                failures = 0
            except Unpublishable as blocked:
                failures += 1
                self._alarm_blocked(blocked, failures)
                await self._sleep(stopping, min(0.5 * 2**failures, 60.0))
                await self._resync()
                continue
            except (JsError, NatsError, TimeoutError, OSError) as error:
                failures += 1
                log.warning("relay round failed; resuming", error=repr(error), attempt=failures)
                await self._resync()
                await self._sleep(stopping, min(0.2 * 2**failures, 10.0))
                continue
            except Exception:
                failures += 1
                log.exception("relay round failed; resuming", attempt=failures)
                await self._sleep(stopping, min(0.2 * 2**failures, 10.0))
                continue
            if moved == 0:
                self.wake.clear()
                await self._sleep(stopping, self.settings.relay_poll_interval, self.wake)

    async def publish_round(self) -> int:
        """Publishes the next page of the log; returns how many events it published.

        The first message of a round (and every message while a foreign message was seen
        within the duplicate window) is published alone and its PubAck checked before the
        next is sent; the rest are pipelined. A position NATS will never take stops the
        round just before it: what precedes it is published and confirmed, then
        ``Unpublishable`` names it and says why. It is never skipped: the next round tries
        it again.
        """
        notifications: Sequence[Notification] = await asyncio.to_thread(
            self.app.recorder.select_notifications,
            self.position + 1,
            self.settings.relay_batch_size,
        )
        head = notifications[-1].id if notifications else self.position
        self.metrics.log_position.set(head)
        if not notifications:
            self.metrics.relay_lag.set(0)
            return 0
        messages = await asyncio.to_thread(self._messages, notifications)
        pending: list[tuple[int, asyncio.Future[Any]]] = []
        blocked: Unpublishable | None = None
        previous = self._last_published
        limit = self._max_payload()
        for position, subject, payload, headers in messages:
            if previous is not None:
                headers[EXPECTED_LAST_MSG_ID] = previous
            if len(payload) + HEADERS_ALLOWANCE > limit:
                blocked = Unpublishable(
                    position, f"{len(payload)} bytes, more than NATS's max payload {limit}"
                )
                break
            if pending and not self._careful():
                future = await self.js.publish_async(subject, payload, headers=headers)
            else:
                future = await self._publish_alone(subject, payload, headers)
                alone = future.result() if not future.exception() else None
                if alone is not None and alone.duplicate:
                    blocked = await self._taken_by_foreign(position, alone.seq)
                if future.exception() is not None or blocked is not None:
                    pending.append((position, future))
                    break
            pending.append((position, future))
            previous = str(position)
        # A PubAck lost with a broken connection never arrives: give up the round (the
        # futures are cancelled) and publish it again from the confirmed position.
        acks = await asyncio.wait_for(
            asyncio.gather(*(future for _, future in pending), return_exceptions=True),
            timeout=PUBACK_TIMEOUT,
        )
        confirmed = 0
        for (position, _), ack in zip(pending, acks, strict=True):
            if isinstance(ack, BaseException):
                if isinstance(ack, JsError) and not _retryable(ack):
                    blocked = Unpublishable(position, f"the stream refuses it: {ack}")
                elif confirmed == 0:
                    raise ack
                break
            if blocked is not None and blocked.position == position:
                break
            if ack.duplicate and (taken := await self._taken_by_foreign(position, ack.seq)):
                blocked = taken
                break
            confirmed += 1
        self._confirm(pending[:confirmed], acks[:confirmed], head)
        if confirmed:
            await self.state.put(POSITION_KEY, str(self.position).encode())
        if blocked is not None and blocked.position == self.position + 1:
            raise blocked
        self.metrics.relay_blocked.set(0)
        if confirmed < len(pending):
            raise RelayRoundBroken(self.position)
        return confirmed

    def _careful(self) -> bool:
        return time.monotonic() < self._careful_until

    def _confirm(self, confirmed: list[tuple[int, Any]], acks: list[Any], head: int) -> None:
        duplicates = sum(1 for ack in acks if ack.duplicate)
        if confirmed:
            self.position = confirmed[-1][0]
            self._last_published = str(self.position)
        self.published += len(confirmed) - duplicates
        self.metrics.relay_events.inc(len(confirmed) - duplicates)
        self.metrics.relay_position.set(self.position)
        self.metrics.relay_lag.set(max(head - self.position, 0))
        if duplicates:
            log.info("republished events absorbed as duplicates", count=duplicates)

    async def _publish_alone(
        self, subject: str, payload: bytes, headers: dict[str, str]
    ) -> asyncio.Future[Any]:
        """One message, its PubAck awaited before any other is sent.

        nats-py 2.16's ``publish_async`` never completes the future of a message the
        stream refuses (``APIError.from_error`` raises inside its callback), so a refusal
        would look like a lost PubAck. Publishing the first message of each round this way
        names the refusal (a wrong last message id after a foreign message, a message the
        stream will not take) at the cost of one round trip per round.
        """
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        try:
            ack = await self.js.publish(subject, payload, timeout=PUBACK_TIMEOUT, headers=headers)
        except JsError as error:
            future.set_exception(error)
        else:
            future.set_result(ack)
        return future

    async def _taken_by_foreign(self, position: int, sequence: int) -> Unpublishable | None:
        """A PubAck said "duplicate": the message JetStream kept under this position's id
        must be the relay's own, else the genuine event was dropped in its place."""
        try:
            msg = await self.js.get_msg(self.settings.events_stream, sequence)
        except NotFoundError:
            return None  # aged out: nothing downstream can read a forgery there either
        if await self._genuine(msg):
            return None
        self._foreign(msg)
        return Unpublishable(
            position,
            f"its message id is taken by a foreign message (stream sequence {sequence}); "
            f"JetStream drops the genuine one as a duplicate for "
            f"{self.settings.duplicate_window:g} s",
        )

    def _max_payload(self) -> int:
        client = getattr(self.js, "_nc", None)
        limit = getattr(client, "max_payload", None)
        return int(limit) if isinstance(limit, int) and limit > 0 else 1 << 20

    def _alarm_blocked(self, blocked: Unpublishable, attempt: int) -> None:
        self.metrics.relay_blocked.set(blocked.position)
        log.error(
            "ALARM: the relay cannot publish a position and holds every later one back; "
            "it retries, it never skips",
            position=blocked.position,
            reason=blocked.reason,
            attempt=attempt,
        )

    async def _resync(self) -> None:
        """After a failed round: start again from what the stream confirms it holds."""
        try:
            self.position = await self.start_position()
        except (JsError, NatsError, TimeoutError, OSError) as error:
            log.warning("relay cannot read the events stream yet", error=repr(error))

    async def _sleep(
        self, stopping: asyncio.Event, seconds: float, wake: asyncio.Event | None = None
    ) -> None:
        waiters = [asyncio.ensure_future(stopping.wait())]
        if wake is not None:
            waiters.append(asyncio.ensure_future(wake.wait()))
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    # -- one event as a message ---------------------------------------------------------------

    def _messages(
        self, notifications: Sequence[Notification]
    ) -> list[tuple[int, str, bytes, dict[str, str]]]:
        out = []
        for notification in notifications:
            # The base mapper leaves personal fields sealed (see the module docstring).
            event: Any = Mapper.to_domain_event(self.app.mapper, notification)
            event_type = event_type_of(notification.topic)
            school = self.schools.school_of(event)
            state = dict(vars(event))
            ctx = state.pop("ctx", None)
            for name in ("originator_id", "originator_version", "timestamp", "originator_topic"):
                state.pop(name, None)
            body = {
                "position": notification.id,
                "type": event_type,
                "aggregate_id": str(notification.originator_id),
                "version": notification.originator_version,
                "timestamp": to_json(event.timestamp),
                "school_id": school,
                "ctx": ctx.as_dict() if ctx is not None else None,
                "data": state,
            }
            if event_type == REJECTION_TYPE:
                # Sealed payloads only: a record kept before payloads were sealed holds
                # its payload in plain text, which is never published.
                if state.get("payload") is not None:
                    state["payload"] = None
                subject = self.subjects.rejection(school, state.get("command_type"))
            else:
                subject = self.subjects.event(school, event_type)
            headers = {
                hdr.MSG_ID: str(notification.id),
                hdr.EVENT_POSITION: str(notification.id),
                hdr.EVENT_TYPE: event_type,
                hdr.EVENT_AGGREGATE: str(notification.originator_id),
                "content-type": "application/json",
            }
            if ctx is not None:
                headers[hdr.CORRELATION_ID] = ctx.correlation_id
            payload = json.dumps(body, default=to_json, ensure_ascii=False).encode()
            out.append((notification.id, subject, payload, headers))
        return out
