"""``serve --workers N``: N ingest processes of one instance under one supervisor.

What it buys: the ingest's cost is Python CPU per command, so one process uses one core;
N worker processes share the partitions (each is an instance of its own in the leases,
``<instance>-w<n>``) and use N cores (``scripts/bench_ingest.py --workers``).

The supervisor only starts, watches and stops processes; it opens no store and no NATS
connection. Each worker runs a whole ``Pipeline``: the partitions it holds, and, if it
holds their singleton leases, the relay, the view followers and the sealer, so those run
once per deployment however many workers and instances run (``consumers.service``).

- A worker that exits (crashed, killed) is started again under the same name, so it takes
  its own leases back at once; a worker that keeps failing is restarted after a growing
  delay (0.5 s doubling up to 30 s, back to 0.5 s once it ran for a minute).
- SIGTERM (or SIGINT) to the supervisor: it sends SIGTERM to every worker, each finishes
  and acks its batch in hand and hands its leases over, and the supervisor exits when all
  have (0 if all stopped cleanly); after ``graceful_timeout`` + 10 s it kills what is left.
- A worker reads its settings as one JSON line on stdin (so no secret shows in a process
  listing) and keeps stdin open: when the supervisor dies, the worker sees end-of-file and
  stops by itself.
- With ``METRICS_PORT`` set, worker ``n`` serves its metrics on ``METRICS_PORT + n``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog
from pydantic import SecretStr

from sferum_audit.application.settings import Settings
from sferum_audit.consumers.settings import PipelineSettings

log = structlog.get_logger("sferum_audit.supervisor")

RESTART_DELAY = 0.5
MAX_RESTART_DELAY = 30.0
HEALTHY_AFTER = 60.0  # seconds a worker must run before its restart delay starts over
KILL_MARGIN = 10.0
STDIN = 0
# A worker handles SIGTERM from before it does any work, and then exits 0; one that SIGTERM
# ended (-SIGTERM) was still starting up: nothing was in hand.
STOPPED_CLEANLY = (0, -signal.SIGTERM)


def default_workers() -> int:
    """The cores this process may use."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not on Linux
        return max(os.cpu_count() or 1, 1)


def worker_options(options: PipelineSettings, index: int) -> PipelineSettings:
    """Worker ``index``'s settings: its own name in the leases, its own metrics port."""
    update: dict[str, Any] = {"instance_id": f"{options.instance_id}-w{index}", "workers": 1}
    if options.metrics_port:
        update["metrics_port"] = options.metrics_port + index
    return options.model_copy(update=update)


def _plain(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot pass {type(value).__name__} to a worker")


def worker_plan(
    settings: Settings, options: PipelineSettings, nats_url: str, *, views: bool
) -> bytes:
    """One JSON line with everything a worker needs (secrets included: sent on stdin)."""
    plan = {
        "settings": settings.model_dump(),
        "options": options.model_dump(),
        "nats_url": nats_url,
        "views": views,
    }
    return json.dumps(plan, default=_plain).encode() + b"\n"


def _read_line(fd: int) -> bytes:
    """One line from ``fd``, unbuffered (nothing after it is consumed)."""
    line = bytearray()
    while not line.endswith(b"\n"):
        chunk = os.read(fd, 1)
        if not chunk:
            break
        line += chunk
    return bytes(line)


def worker_command() -> list[str]:
    return [sys.executable, "-m", "sferum_audit.consumers.supervisor"]


class Supervisor:
    """Keeps ``workers`` processes running until ``stop``; then stops them gracefully."""

    def __init__(
        self,
        workers: int,
        command: Callable[[int], list[str]],
        plan: Callable[[int], bytes] | None = None,
        *,
        stop_timeout: float = 30.0,
        restart_delay: float = RESTART_DELAY,
    ) -> None:
        self.workers = workers
        self.command = command
        self.plan = plan
        self.stop_timeout = stop_timeout
        self.restart_delay = restart_delay
        self.processes: dict[int, asyncio.subprocess.Process] = {}
        self.restarts: Counter[int] = Counter()
        self.exit_codes: dict[int, int | None] = {}

    @property
    def pids(self) -> dict[int, int]:
        """Worker index -> pid of the process running now."""
        return {i: p.pid for i, p in self.processes.items() if p.returncode is None}

    async def run(self, stop: asyncio.Event) -> int:
        """Runs the workers until ``stop`` is set; 0 if every worker then stopped cleanly."""
        log.info("supervisor starting", workers=self.workers)
        keepers = [asyncio.create_task(self._keep(i, stop)) for i in range(self.workers)]
        try:
            await stop.wait()
        finally:
            for keeper in keepers:
                keeper.cancel()
            for keeper in keepers:
                with contextlib.suppress(asyncio.CancelledError):
                    await keeper
            clean = await self._stop_all()
        log.info("supervisor stopped", clean=clean, exit_codes=self.exit_codes)
        return 0 if clean else 1

    async def _keep(self, index: int, stop: asyncio.Event) -> None:
        delay = self.restart_delay
        while not stop.is_set():
            started = time.monotonic()
            try:
                process = await self._start(index)
            except OSError as error:
                log.error("worker not started; trying again", worker=index, error=repr(error))
            else:
                code = await process.wait()
                if stop.is_set():
                    return
                self.restarts[index] += 1
                if time.monotonic() - started >= HEALTHY_AFTER:
                    delay = self.restart_delay
                log.warning(
                    "worker exited; restarting it",
                    worker=index,
                    pid=process.pid,
                    exit_code=code,
                    restart_in=delay,
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
            delay = min(delay * 2, MAX_RESTART_DELAY)

    async def _start(self, index: int) -> asyncio.subprocess.Process:
        process = await asyncio.create_subprocess_exec(
            *self.command(index), stdin=asyncio.subprocess.PIPE
        )
        self.processes[index] = process
        if self.plan is not None and process.stdin is not None:
            process.stdin.write(self.plan(index))
            with contextlib.suppress(ConnectionError):
                await process.stdin.drain()
        log.info("worker started", worker=index, pid=process.pid)
        return process

    async def _stop_all(self) -> bool:
        """SIGTERM to every worker, then wait; kill what is left after the timeout."""
        running = {i: p for i, p in self.processes.items() if p.returncode is None}
        for process in running.values():
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        clean = True  # a worker that crashed earlier was restarted (or is about to be)
        try:
            await asyncio.wait_for(
                asyncio.gather(*(p.wait() for p in running.values())),
                timeout=self.stop_timeout + KILL_MARGIN,
            )
        except TimeoutError:
            clean = False
            for index, process in running.items():
                if process.returncode is None:
                    log.error("worker did not stop in time; killing it", worker=index)
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
                    await process.wait()
        for index, process in self.processes.items():
            if process.stdin is not None:
                process.stdin.close()
            self.exit_codes[index] = process.returncode
            if index in running and process.returncode not in STOPPED_CLEANLY:
                clean = False
        return clean


async def supervise(
    settings: Settings,
    options: PipelineSettings,
    nats_url: str,
    *,
    workers: int,
    views: bool,
    stop: asyncio.Event,
) -> int:
    """``serve --workers N`` after the NATS URL is known (embedded or configured)."""
    supervisor = Supervisor(
        workers,
        lambda index: worker_command(),
        lambda index: worker_plan(settings, worker_options(options, index), nats_url, views=views),
        stop_timeout=options.graceful_timeout,
    )
    return await supervisor.run(stop)


# -- the worker process ----------------------------------------------------------------------


async def run_worker(plan: dict[str, Any]) -> None:
    """One worker: a whole ``Pipeline`` until SIGTERM, SIGINT or its stdin closes."""
    from sferum_audit.consumers.service import Pipeline

    settings = Settings(**plan["settings"])
    options = PipelineSettings(**plan["options"])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    def supervisor_gone() -> None:
        if not os.read(STDIN, 4096):  # end-of-file: the supervisor is gone
            loop.remove_reader(STDIN)
            stop.set()

    loop.add_reader(STDIN, supervisor_gone)
    pipeline = Pipeline(settings, options, nats_url=plan["nats_url"], views=plan["views"])
    await pipeline.run_until(stop)


def _stop_while_starting(signum: int, frame: Any) -> None:
    raise SystemExit(0)  # nothing is in hand before the pipeline runs


def worker_main() -> int:
    # Until the pipeline installs its own handlers, SIGTERM simply ends the worker.
    signal.signal(signal.SIGTERM, _stop_while_starting)
    from sferum_audit.application.logging_setup import configure_logging

    line = _read_line(STDIN)
    if not line:
        return 2
    plan = json.loads(line)
    settings = Settings(**plan["settings"])
    if settings.log_format == "auto":
        settings = settings.model_copy(update={"log_format": "json"})
    configure_logging(settings)
    asyncio.run(run_worker(plan))
    return 0


if __name__ == "__main__":
    sys.exit(worker_main())
