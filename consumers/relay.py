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

Payloads are JSON. Personal fields stay sealed as they are stored (``{"subject",
"sealed"}``): erasing a person's key must also erase what downstream systems keep.
"""

from __future__ import annotations

import asyncio
import json
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

    # -- where to start ---------------------------------------------------------------------

    async def start_position(self) -> int:
        """The last position the events stream holds, else the stored one, else 0."""
        stored = 0
        try:
            entry = await self.state.get(POSITION_KEY)
            stored = int((entry.value or b"0").decode())
        except KeyNotFoundError:
            stored = 0
        info = await self.js.stream_info(self.settings.events_stream)
        if info.state.messages and info.state.last_seq:
            try:
                last = await self.js.get_msg(self.settings.events_stream, info.state.last_seq)
            except NotFoundError:
                return stored
            msg_id = (last.headers or {}).get(hdr.MSG_ID)
            if msg_id and msg_id.isdigit():
                self._last_published = msg_id
                return int(msg_id)
        return stored

    # -- the loop -----------------------------------------------------------------------------

    async def run(self, stopping: asyncio.Event) -> None:
        self.position = await self.start_position()
        log.info("relay starts", position=self.position)
        failures = 0
        while not stopping.is_set():
            try:
                moved = await self.publish_round()
                failures = 0
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
        """Publishes the next page of the log; returns how many events it published."""
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
        pending = []
        previous = self._last_published
        for position, subject, payload, headers in messages:
            if previous is not None:
                headers[EXPECTED_LAST_MSG_ID] = previous
            pending.append(await self.js.publish_async(subject, payload, headers=headers))
            previous = str(position)
        # A PubAck lost with a broken connection never arrives: give up the round (the
        # futures are cancelled) and publish it again from the confirmed position.
        acks = await asyncio.wait_for(asyncio.gather(*pending), timeout=PUBACK_TIMEOUT)
        duplicates = sum(1 for ack in acks if ack.duplicate)
        self.position = notifications[-1].id
        self._last_published = str(self.position)
        await self.state.put(POSITION_KEY, str(self.position).encode())
        self.published += len(acks) - duplicates
        self.metrics.relay_events.inc(len(acks) - duplicates)
        self.metrics.relay_position.set(self.position)
        self.metrics.relay_lag.set(max(head - self.position, 0))
        if duplicates:
            log.info("republished events absorbed as duplicates", count=duplicates)
        return len(notifications)

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
