"""How long ingest stops after a crash or a NATS restart, with the default timers.

Runs ``sferum-audit serve`` (defaults: ACK_WAIT 5 s, LEASE_TTL 5 s, REBALANCE_INTERVAL 1 s)
on a SQLite store and a nats-server of its own, publishes a steady stream of commands, and:

* ``crash``: SIGKILLs the service mid-stream and starts it again at once (a new instance
  name, as a supervisor restarting it would give by default), then prints the seconds from
  the kill, and from the restart's "pipeline running" log line, until every command
  JetStream had acknowledged before the kill is recorded (the batch the killed process
  had in hand among them);
* ``nats``: stops nats-server for ``--outage`` seconds, starts it again, and prints the
  seconds from that start (the server needs about 2 s to be ready) until the first 64
  commands JetStream acknowledged after it (four of each of 16 schools, so every partition)
  are recorded.

Publishing goes on through the fault (about 100 commands/s, far below what one process
records), so the figure is the time the affected partitions stood still.

Usage: ``python scripts/measure_recovery.py [--scenario crash|nats|both] [--outage 12]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nats

from sferum_audit.application.bootstrap import build_audit_log
from sferum_audit.application.receipts import CommandReceipt
from sferum_audit.application.settings import Settings
from sferum_audit.consumers.command_mix import school_commands
from sferum_audit.consumers.embedded_nats import EmbeddedNats
from sferum_audit.consumers.publisher import CommandPublisher
from sferum_audit.consumers.settings import PipelineSettings
from sferum_audit.consumers.topology import ensure_topology

RECEIPT_TOPIC = f"{CommandReceipt.__module__}:{CommandReceipt.__qualname__}.Recorded"


def start_serve(data_dir: Path, url: str, log: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, SFERUM_AUDIT_LOG_FORMAT="json")
    env.pop("SFERUM_AUDIT_DATABASE_URL", None)
    args = ["--data-dir", str(data_dir), "serve", "--nats-url", url, "--metrics-port", "0"]
    # One process: the SIGKILL below must crash the consumer itself (with --workers N it
    # would kill the supervisor, whose workers then stop gracefully).
    args += ["--workers", "1"]
    code = "from sferum_audit.cli.main import app; app()"
    with log.open("ab") as out:
        return subprocess.Popen(  # noqa: S603  # our own interpreter and arguments
            [sys.executable, "-c", code, *args, "--no-views"], env=env, stdout=out, stderr=out
        )


def running_logged(log: Path, after: int) -> float | None:
    """The time the 'pipeline running' line appeared after ``after`` such lines (polled)."""
    text = log.read_text(errors="replace") if log.exists() else ""
    return time.time() if text.count('"pipeline running"') > after else None


class Store:
    def __init__(self, data_dir: Path) -> None:
        self.app = build_audit_log(Settings(data_dir=data_dir))

    def recorded(self) -> int:
        recorder = self.app.recorder
        return len(recorder.select_notifications(1, 10**7, topics=[RECEIPT_TOPIC]))


async def publish_steadily(url: str, stop: asyncio.Event, acked: list[float]) -> None:
    """Publishes about 100 commands/s, 16 schools interleaved (so every partition has
    traffic), until ``stop``; appends the time of each PubAck to ``acked``."""
    nc = await nats.connect(url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    pub = CommandPublisher(nc.jetstream(), nc=nc)
    n = 0
    try:
        while not stop.is_set():
            schools = [
                school_commands(f"rec-{n}-{k}", students=2, moderations=5) for k in range(16)
            ]
            for row in zip(*schools, strict=False):
                for command in row:
                    while not stop.is_set():
                        try:
                            await pub.publish(command, timeout=1.0)
                        except Exception:  # NATS away: publish it again (its id makes it safe)
                            await asyncio.sleep(0.1)
                            continue
                        acked.append(time.time())
                        break
                    await asyncio.sleep(0.01)
            n += 1
    finally:
        await nc.close()


async def recorded_all(store: Store, count: int, since: float, timeout: float = 120.0) -> float:
    """Seconds after ``since`` at which ``count`` commands are recorded."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if await asyncio.to_thread(store.recorded) >= count:
            return time.time() - since
        await asyncio.sleep(0.1)
    raise TimeoutError("ingest did not resume")


async def steady(url: str, store: Store) -> tuple[asyncio.Event, asyncio.Task[None], list[float]]:
    stop: asyncio.Event = asyncio.Event()
    acked: list[float] = []
    task = asyncio.create_task(publish_steadily(url, stop, acked))
    while await asyncio.to_thread(store.recorded) < 50:
        await asyncio.sleep(0.1)
    await asyncio.sleep(3)
    return stop, task, acked


async def crash(workdir: Path, server: EmbeddedNats) -> None:
    log = workdir / "serve.log"
    store = Store(workdir / "data")
    serve = start_serve(workdir / "data", server.url, log)
    try:
        stop, publisher, acked = await steady(server.url, store)
        serve.send_signal(signal.SIGKILL)
        serve.wait(10)
        killed, before = time.time(), len(acked)
        serve = start_serve(workdir / "data", server.url, log)
        while (ready := running_logged(log, after=1)) is None:
            await asyncio.sleep(0.05)
        resumed = await recorded_all(store, before, killed)
        stop.set()
        await publisher
        print(f"crash: {before} commands; restart ready {ready - killed:.1f} s after the kill")
        print(f"crash: all recorded {resumed:.1f} s after the kill")
        print(f"crash: all recorded {killed + resumed - ready:.1f} s after the restart was ready")
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(60)


async def nats_outage(workdir: Path, server: EmbeddedNats, outage: float) -> None:
    log = workdir / "serve-nats.log"
    store = Store(workdir / "data-nats")
    serve = start_serve(workdir / "data-nats", server.url, log)
    try:
        stop, publisher, acked = await steady(server.url, store)
        server.kill()
        await asyncio.sleep(outage)
        restarted = time.time()  # the server process starts now (ready about 2 s later)
        await server.start()
        while not acked or acked[-1] <= restarted:
            await asyncio.sleep(0.05)
        first = next(i for i, at in enumerate(acked) if at > restarted)
        while len(acked) < first + 64:  # four commands of each of the 16 schools
            await asyncio.sleep(0.05)
        resumed = await recorded_all(store, first + 64, restarted)
        stop.set()
        await publisher
        again = acked[first] - restarted
        print(f"nats: publishing again {again:.1f} s after nats-server was started again;")
        print(f"nats: the first 64 commands after it (every partition) recorded {resumed:.1f} s")
        print("nats: after nats-server was started again")
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(60)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scenario", choices=["crash", "nats", "both"], default="both")
    parser.add_argument("--outage", type=float, default=12.0)
    parser.add_argument("--keep", action="store_true", help="keep the work folder and logs")
    args = parser.parse_args()
    defaults = PipelineSettings(instance_id="measure")
    print(
        f"ack_wait {defaults.ack_wait} s, lease_ttl {defaults.lease_ttl} s, "
        f"rebalance_interval {defaults.rebalance_interval} s"
    )
    workdir = Path(tempfile.mkdtemp(prefix="measure-recovery-"))
    print(f"work folder {workdir}")
    try:
        server = EmbeddedNats(workdir / "nats", log_file=workdir / "nats.log")
        await server.start()
        try:
            nc = await nats.connect(server.url)
            await ensure_topology(nc.jetstream(), PipelineSettings(nats_url=server.url))
            await nc.close()
            if args.scenario in ("crash", "both"):
                await crash(workdir, server)
            if args.scenario in ("nats", "both"):
                await nats_outage(workdir, server, args.outage)
        finally:
            await server.stop(timeout=5)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
