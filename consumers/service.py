"""``sferum-audit serve`` in one object: consumers, outbound relay, views, metrics.

``Pipeline`` connects to NATS, makes sure the streams, consumers and buckets exist, and
then lets the ``Coordinator`` start the ingest subscriber of each partition this instance
holds (and the relay, the view followers and the sealer, each if it holds its singleton
lease: one of each per deployment). ``stop`` is graceful: the coordinator
stops each subscriber, which lets the batch in hand finish (recorded and acked) before it
returns; what was fetched but not started is simply redelivered.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import nats
import structlog
from faststream.nats import NatsBroker
from nats.aio.client import Client
from nats.js import JetStreamContext

from sferum_audit.application.garbage_collection import tune_for_batches
from sferum_audit.application.service import AuditLog
from sferum_audit.application.settings import Settings
from sferum_audit.consumers.broker import (
    add_partition_subscriber,
    build_broker,
    make_ingest_handler,
    pause_fetching,
    quiesce,
    release_unhandled,
    start_subscriber,
)
from sferum_audit.consumers.connection import connect_options, redact_urls
from sferum_audit.consumers.coordination import Coordinator
from sferum_audit.consumers.dead_letters import StreamEraser
from sferum_audit.consumers.ingest import BatchReport, IngestProcessor
from sferum_audit.consumers.ingest_app import build_ingest_audit_log
from sferum_audit.consumers.metrics import Metrics
from sferum_audit.consumers.relay import EventRelay
from sferum_audit.consumers.settings import PipelineSettings
from sferum_audit.consumers.topology import Topology, consumer_name, ensure_topology
from sferum_audit.integrity.sealer import Sealer, SealerThread
from sferum_audit.projections.wakeup import LogSignal

log = structlog.get_logger("sferum_audit.pipeline")

RELAY = "relay"
VIEWS = "views"
SEALER = "sealer"


class BrokerTransport:
    """Answers and dead letters through the FastStream broker (real or in memory)."""

    def __init__(self, broker: NatsBroker, settings: PipelineSettings) -> None:
        self.broker = broker
        self.settings = settings

    async def reply(self, subject: str, payload: bytes, headers: dict[str, str]) -> None:
        await self.broker.publish(payload, subject, headers=headers)

    async def dead_letter(self, subject: str, payload: bytes, headers: dict[str, str]) -> None:
        await self.broker.publish(
            payload, subject, headers=headers, stream=self.settings.dead_letter_stream
        )


class CountingProcessor(IngestProcessor):
    """The ingest plus running totals (for the demo, tests and the benchmark)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.totals: Counter[str] = Counter()
        self.reports: list[BatchReport] = []
        self.keep_reports = False

    async def process(self, messages: Any) -> BatchReport:
        report = await super().process(messages)
        self.totals.update(
            recorded=report.recorded,
            duplicate=report.duplicate,
            rejected=report.rejected,
            retried=report.retried,
            dead_lettered=report.dead_lettered,
            batches=1,
        )
        if self.keep_reports:
            self.reports.append(report)
        return report

    @property
    def settled(self) -> int:
        """Messages that ended acked: recorded, duplicate, rejected or dead-lettered."""
        t = self.totals
        return t["recorded"] + t["duplicate"] + t["rejected"] + t["dead_lettered"]


def view_follower_starter() -> Callable[..., Any] | None:
    """The read views' follower, if the projections package provides one (hook)."""
    try:
        from sferum_audit.projections.runner import start_view_follower
    except ImportError:
        return None
    return start_view_follower


class Pipeline:
    """One running instance of the service."""

    def __init__(
        self,
        settings: Settings,
        options: PipelineSettings | None = None,
        *,
        nats_url: str | None = None,
        app: AuditLog | None = None,
        metrics: Metrics | None = None,
        views: bool = True,
        serve_metrics: bool = True,
    ) -> None:
        self.settings = settings
        self.options = options or PipelineSettings()
        self.nats_url = nats_url or self.options.nats_url
        self.app = app
        self.metrics = metrics or Metrics()
        self.views = views
        self.serve_metrics = serve_metrics
        self.stopping = asyncio.Event()
        self.nc: Client | None = None
        self.js: JetStreamContext | None = None
        self.broker: NatsBroker | None = None
        self.topology: Topology | None = None
        self.processor: CountingProcessor | None = None
        self.relay: EventRelay | None = None
        self.coordinator: Coordinator | None = None
        self.follower: Any = None
        self.sealer: SealerThread | None = None
        self.signal = LogSignal()  # rung after each recorded batch: wakes the view follower
        self._view_lag_task: asyncio.Task[None] | None = None
        self._subscribers: dict[int, Any] = {}
        self._starting: dict[int, asyncio.Task[None]] = {}
        self._relay_stop = asyncio.Event()
        self._relay_task: asyncio.Task[None] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._metrics_server: Any = None
        self._handler: Any = None
        self._owns_app = app is None
        self._resources = asyncio.Lock()

    @property
    def servers(self) -> list[str]:
        return [url.strip() for url in self.nats_url.split(",") if url.strip()]

    # -- start ------------------------------------------------------------------------------

    async def start(self) -> None:
        options = self.options
        log.info("pipeline starting", instance=options.instance_id, nats=redact_urls(self.servers))
        self.nc = await nats.connect(
            servers=self.servers,
            **connect_options(options),
            name=f"sferum-audit {options.instance_id}",
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            error_cb=_log_nats_error,
            disconnected_cb=self._log_disconnected,
            reconnected_cb=_log_reconnected,
        )
        self.js = self.nc.jetstream()
        self.topology = await ensure_topology(self.js, options)
        if self.app is None:
            tune_for_batches()
            self.app = await asyncio.to_thread(build_ingest_audit_log, self.settings)
        self.broker = build_broker(
            self.servers,
            options,
            reconnected_cb=self._broker_reconnected,
            disconnected_cb=self._broker_disconnected,
        )
        await self.broker.start()
        self.processor = CountingProcessor(
            self.app,
            options,
            BrokerTransport(self.broker, options),
            metrics=self.metrics,
            stream_key=self.topology.commands_stream_key,
            stopping=self.stopping,
            on_recorded=self._recorded,
            purge_dead_letters=StreamEraser(self.js, options),
        )
        self._handler = make_ingest_handler(self.processor)
        if options.relay_enabled:
            self.relay = EventRelay(
                self.app, self.js, self.topology.state, options, metrics=self.metrics
            )
        self.coordinator = Coordinator(
            self.topology.leases,
            options.instance_id,
            options.partitions,
            start=self._start_resource,
            stop=self._stop_resource,
            singletons=self._singletons(),
            interval=options.rebalance_interval,
            on_change=self.metrics.partitions_owned.set,
        )
        await self.coordinator.step()
        self._tasks.append(asyncio.create_task(self.coordinator.run(self.stopping)))
        if self.serve_metrics and options.metrics_port:
            self._metrics_server = self.metrics.serve(options.metrics_port, options.metrics_host)
            log.info("metrics at /metrics", port=options.metrics_port)
        log.info(
            "pipeline running",
            instance=options.instance_id,
            partitions=self.coordinator.owned_partitions,
            relay=RELAY in self.coordinator.running,
            views=VIEWS in self.coordinator.running,
            sealer=SEALER in self.coordinator.running,
        )

    def _singletons(self) -> tuple[str, ...]:
        """What runs once per deployment, however many instances and workers run: the
        relay, the view followers and the sealer, each under its own lease (the first
        instance to take it keeps it; another takes over when it stops or its lease
        expires)."""
        names: list[str] = []
        if self.relay is not None:
            names.append(RELAY)
        if self.views and view_follower_starter() is not None:
            names.append(VIEWS)
        if self.views and self.options.seal_enabled:
            names.append(SEALER)
        return tuple(names)

    async def _start_views(self) -> None:
        starter = view_follower_starter()
        if starter is None:
            log.info("no view follower available; views are not followed")
            return
        self.follower = await asyncio.to_thread(
            starter, self.settings, app=self.app, signal=self.signal
        )
        self._view_lag_task = asyncio.create_task(self._watch_view_lag(self.follower))

    async def _stop_views(self) -> None:
        if self._view_lag_task is not None:
            self._view_lag_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._view_lag_task
            self._view_lag_task = None
        if self.follower is not None:
            await asyncio.to_thread(self.follower.stop)
            self.follower = None

    async def _start_sealer(self) -> None:
        assert self.app is not None
        self.sealer = SealerThread(Sealer(self.app.recorder, self.settings.data_dir))
        self.sealer.start()

    async def _stop_sealer(self) -> None:
        if self.sealer is not None:
            await asyncio.to_thread(self.sealer.stop)  # signs what is new before it ends
            self.sealer = None

    async def _watch_view_lag(self, follower: Any) -> None:
        while not self.stopping.is_set():
            try:
                lags = await asyncio.to_thread(follower.lag)
                self.metrics.view_lag.set(max((lag.lag for lag in lags), default=0))
            except Exception as error:
                log.warning("view lag not read", error=repr(error))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), timeout=2.0)

    async def _broker_disconnected(self) -> None:
        """Until each partition is restarted after the reconnect, its subscriber fetches
        nothing more, and a batch it fetched is naked in order, not decided: a batch lost
        with the connection comes back only after ``ack_wait`` and must not be
        overtaken."""
        for partition, subscriber in self._subscribers.items():
            pause_fetching(subscriber)
            if self.processor is not None:
                self.processor.release(partition)

    async def _broker_reconnected(self) -> None:
        """After a reconnect, restart every partition: a batch fetched when the connection
        broke stays unacked until ``ack_wait``, and must not be overtaken by newer
        messages, so each partition first waits for it (see ``_start_partition``)."""
        log.warning("ingest reconnected to NATS; restarting partitions")
        self._tasks.append(asyncio.create_task(self._restart_partitions()))

    async def _restart_partitions(self) -> None:
        for partition in sorted(self._subscribers):
            name = f"p{partition}"
            async with self._resources:
                # Not a clean hand-over: a fetch may have been lost with the connection.
                await self._stop_partition(partition, clean=False)
            if self.stopping.is_set():
                return
            if self.coordinator is not None and name in self.coordinator.running:
                await self._start_resource(name)

    def _recorded(self) -> None:
        """A batch was committed: wake the relay and the view follower (if they run here)."""
        if self.relay is not None:
            self.relay.wake.set()
        self.signal.ring()

    # -- the coordinator's hands ------------------------------------------------------------

    async def _start_resource(self, name: str) -> None:
        async with self._resources:
            await self._start_resource_now(name)

    async def _stop_resource(self, name: str) -> None:
        async with self._resources:
            await self._stop_resource_now(name)

    async def _start_resource_now(self, name: str) -> None:
        if name == RELAY:
            assert self.relay is not None
            self._relay_stop = asyncio.Event()
            self._relay_task = asyncio.create_task(self.relay.run(self._relay_stop))
            return
        if name == VIEWS:
            await self._start_views()
            return
        if name == SEALER:
            await self._start_sealer()
            return
        partition = int(name[1:])
        self._starting[partition] = asyncio.create_task(self._start_partition(partition))

    async def _start_partition(self, partition: int) -> None:
        """Starts consuming a partition; first lets a crashed owner's batch come back.

        Messages a previous owner fetched and never acked are redelivered only after
        ``ack_wait`` from their last delivery; until then JetStream would hand newer
        messages of the same schools to a new consumer. So if any are pending, wait until
        they fall due (at most ``ack_wait``): redeliveries are served before new messages.
        """
        assert self.js is not None
        assert self.broker is not None
        if self.processor is not None:
            self.processor.resume(partition)
        name = consumer_name(self.options, partition)
        clean = await self._take_clean_mark(partition)
        wait = 0.0 if clean else await self._until_unacked_due(name)
        if wait > 0:
            log.info("waiting for unacked messages to come back", partition=partition, wait=wait)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), timeout=wait)
            if self.stopping.is_set():
                return
        subscriber = add_partition_subscriber(self.broker, self.options, partition, self._handler)
        await start_subscriber(subscriber)
        self._subscribers[partition] = subscriber
        log.info("partition consumed", partition=partition)

    async def _mark_clean(self, partition: int) -> None:
        """Tells the next owner that nothing of this partition is left in flight here: what
        was fetched and not handled was naked, so it is redelivered first, at once."""
        if self.nc is None or not self.nc.is_connected or self.topology is None:
            return
        try:
            await self.topology.leases.put(f"clean.p{partition}", self.options.instance_id.encode())
        except Exception as error:
            log.warning("hand-over mark not written", partition=partition, error=repr(error))

    async def _take_clean_mark(self, partition: int) -> bool:
        if self.topology is None:
            return False
        try:
            entry = await self.topology.leases.get(f"clean.p{partition}")
        except Exception:
            return False
        if entry.value is None:
            return False
        with contextlib.suppress(Exception):
            await self.topology.leases.delete(f"clean.p{partition}", last=entry.revision)
        return True

    async def _until_unacked_due(self, name: str) -> float:
        """Seconds until the partition's delivered-but-unacked messages are redelivered
        (``ack_wait`` after the consumer's last delivery), after a moment for the previous
        owner's last acks and naks to be processed; 0 if none are pending."""
        assert self.js is not None
        for _ in range(5):
            try:
                info = await self.js.consumer_info(self.options.commands_stream, name)
            except Exception as error:
                log.warning("consumer info not read", consumer=name, error=repr(error))
                return 0.0
            if not info.num_ack_pending:
                return 0.0
            await asyncio.sleep(0.1)
        last: datetime | None = info.delivered.last_active if info.delivered else None
        ack_wait = float(self.options.ack_wait)
        if last is None:
            return ack_wait
        since = (datetime.now(UTC) - last).total_seconds()
        return min(max(ack_wait - since + 0.25, 0.0), ack_wait + 0.25)

    async def _stop_resource_now(self, name: str) -> None:
        if name == RELAY:
            self._relay_stop.set()
            if self._relay_task is not None:
                await self._relay_task
                self._relay_task = None
            return
        if name == VIEWS:
            await self._stop_views()
            return
        if name == SEALER:
            await self._stop_sealer()
            return
        await self._stop_partition(int(name[1:]), clean=True)

    async def _stop_partition(self, partition: int, *, clean: bool) -> None:
        if self.processor is not None:
            self.processor.release(partition)  # a batch held for a retry is naked in order
        starting = self._starting.pop(partition, None)
        if starting is not None and not starting.done():
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starting
        subscriber = self._subscribers.pop(partition, None)
        if subscriber is not None:
            subscription = subscriber.subscription
            # No fetch in flight when it stops: an outstanding pull request would deliver
            # to a subscription that is gone, and those messages would come back only
            # after ack_wait, behind newer ones.
            await quiesce(subscriber, self.options.batch_timeout + 0.05)
            await subscriber.stop()  # waits for the batch in hand (graceful_timeout)
            given_back = await release_unhandled(subscription)
            if clean:
                await self._mark_clean(partition)
            log.info("partition released", partition=partition, given_back=given_back)

    # -- stop -------------------------------------------------------------------------------

    async def stop(self) -> None:
        log.info("pipeline stopping", instance=self.options.instance_id)
        self.stopping.set()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, timeout=self.options.graceful_timeout)
        self._tasks.clear()
        if self.coordinator is not None:
            try:
                # Bounded: with NATS gone, leases cannot be released (they expire instead).
                await asyncio.wait_for(
                    self.coordinator.release_all(), timeout=self.options.graceful_timeout + 5
                )
            except TimeoutError:
                log.warning("hand-over not finished in time; leases will expire")
        await self._stop_views()  # if the hand-over did not
        await self._stop_sealer()
        if self.broker is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.broker.stop(), timeout=self.options.graceful_timeout)
        if self.nc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.nc.drain(), timeout=5)
            with contextlib.suppress(Exception):
                await self.nc.close()
        if self._metrics_server is not None:
            self._metrics_server.shutdown()
        if self._owns_app and self.app is not None:
            await asyncio.to_thread(self.app.close)
        log.info("pipeline stopped", instance=self.options.instance_id)

    async def __aenter__(self) -> Pipeline:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _log_disconnected(self) -> None:
        """A lost connection is news; the one this pipeline closes as it stops is not."""
        if not self.stopping.is_set():
            log.warning("nats disconnected")

    async def run_until(self, stop: asyncio.Event) -> None:
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.stop()


async def _log_nats_error(error: Exception) -> None:
    log.warning("nats error", error=repr(error))


async def _log_reconnected() -> None:
    log.info("nats reconnected")
