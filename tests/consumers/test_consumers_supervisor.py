"""``serve --workers N``: a supervisor keeps N worker processes running, restarts one that
crashed, and stops them all cleanly on SIGTERM.

The first tests supervise small stand-in workers (a few lines of Python), so they take
seconds; the last runs the real ``serve --workers 2`` on SQLite and a nats-server of its own.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from consumer_helpers import receipts, wait_for
from test_consumers_serve_process import ack_pending, commands, publish

from sferum_audit.application.bootstrap import build_audit_log
from sferum_audit.application.settings import Settings
from sferum_audit.consumers.embedded_nats import EmbeddedNats
from sferum_audit.consumers.settings import PipelineSettings
from sferum_audit.consumers.supervisor import Supervisor, worker_options, worker_plan

STAND_IN = """
import pathlib, signal, sys, time
folder = pathlib.Path(sys.argv[1])
def stop(*_):
    (folder / "stopped").write_text("cleanly")
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
(folder / "plan").write_bytes(sys.stdin.buffer.readline())
while True:
    time.sleep(0.02)
"""


def stand_ins(tmp_path: Path, workers: int) -> Supervisor:
    for index in range(workers):
        (tmp_path / f"w{index}").mkdir()
    return Supervisor(
        workers,
        lambda index: [sys.executable, "-c", STAND_IN, str(tmp_path / f"w{index}")],
        lambda index: json.dumps({"worker": index}).encode() + b"\n",
        stop_timeout=10,
        restart_delay=0.05,
    )


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_a_crashed_worker_is_started_again_and_the_others_keep_running(
    tmp_path: Path,
) -> None:
    supervisor = stand_ins(tmp_path, 2)
    stop = asyncio.Event()
    running = asyncio.create_task(supervisor.run(stop))
    try:
        await wait_for(
            lambda: all((tmp_path / f"w{i}" / "plan").exists() for i in range(2)), 30, "workers"
        )
        first = dict(supervisor.pids)
        (tmp_path / "w1" / "plan").unlink()
        os.kill(first[1], signal.SIGKILL)

        await wait_for(lambda: (tmp_path / "w1" / "plan").exists(), 30, "the restarted worker")
        assert supervisor.pids[1] != first[1]
        assert supervisor.pids[0] == first[0]
        assert supervisor.restarts == {1: 1}
        assert json.loads((tmp_path / "w1" / "plan").read_text()) == {"worker": 1}
    finally:
        stop.set()
        assert await asyncio.wait_for(running, 30) == 0


async def test_stopping_the_supervisor_stops_every_worker_with_sigterm(tmp_path: Path) -> None:
    supervisor = stand_ins(tmp_path, 3)
    stop = asyncio.Event()
    running = asyncio.create_task(supervisor.run(stop))
    await wait_for(
        lambda: all((tmp_path / f"w{i}" / "plan").exists() for i in range(3)), 30, "workers"
    )
    pids = dict(supervisor.pids)

    stop.set()

    assert await asyncio.wait_for(running, 30) == 0
    assert all((tmp_path / f"w{i}" / "stopped").read_text() == "cleanly" for i in range(3))
    assert supervisor.exit_codes == {0: 0, 1: 0, 2: 0}
    assert not any(alive(pid) for pid in pids.values())


async def run_briefly(tmp_path: Path, script: str) -> int:
    """Supervises one stand-in running ``script`` until it started, then stops it."""
    started = tmp_path / "started"
    supervisor = Supervisor(
        1,
        lambda index: [sys.executable, "-c", script, str(started)],
        stop_timeout=10,
    )
    stop = asyncio.Event()
    running = asyncio.create_task(supervisor.run(stop))
    await wait_for(started.exists, 30, "the worker")
    stop.set()
    return await asyncio.wait_for(running, 30)


async def test_a_worker_still_starting_when_sigterm_comes_counts_as_stopped_cleanly(
    tmp_path: Path,
) -> None:
    """No handler yet (the worker is importing): SIGTERM ends it, with nothing in hand."""
    script = "import pathlib, sys, time; pathlib.Path(sys.argv[1]).touch(); time.sleep(60)"
    assert await run_briefly(tmp_path, script) == 0


async def test_a_worker_that_fails_while_stopping_makes_the_supervisor_exit_non_zero(
    tmp_path: Path,
) -> None:
    script = (
        "import pathlib, signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *_: sys.exit(3))\n"
        "pathlib.Path(sys.argv[1]).touch()\n"
        "time.sleep(60)\n"
    )
    assert await run_briefly(tmp_path, script) == 1


def test_each_worker_gets_its_own_name_and_metrics_port_and_the_secrets_in_its_plan() -> None:
    options = PipelineSettings(instance_id="host-1", metrics_port=9464)
    settings = Settings(database_url="postgresql://audit:secret@db:5432/audit")

    plan = json.loads(
        worker_plan(settings, worker_options(options, 2), "nats://n:4222", views=True)
    )

    assert plan["options"]["instance_id"] == "host-1-w2"
    assert plan["options"]["metrics_port"] == 9466
    assert Settings(**plan["settings"]).database_url == settings.database_url
    assert plan["nats_url"] == "nats://n:4222"


# -- the real thing ----------------------------------------------------------------------------


def worker_pids(log: Path) -> dict[int, list[int]]:
    """Worker index -> the pids it ran under, from the supervisor's JSON log."""
    started: dict[int, list[int]] = {}
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{") and '"worker started"' in line:
            entry: dict[str, Any] = json.loads(line)
            started.setdefault(int(entry["worker"]), []).append(int(entry["pid"]))
    return started


def last_lines(log: Path) -> str:
    """The supervisor's and the workers' last words, for a failure message."""
    lines = log.read_text(errors="replace").splitlines()
    return "\n".join(line for line in lines if '"batch handled"' not in line)[-4000:]


@pytest.mark.nats
async def test_serve_with_two_workers_records_each_command_once_through_a_crash_and_sigterm(
    nats_server: EmbeddedNats, tmp_path: Path, unique: str
) -> None:
    data_dir = tmp_path / "data"
    store = build_audit_log(Settings(data_dir=data_dir))
    sent = commands(unique)
    half = len(sent) // 2
    log = tmp_path / "serve.log"
    env = dict(
        os.environ,
        SFERUM_AUDIT_ACK_WAIT="2",
        SFERUM_AUDIT_LEASE_TTL="2",
        SFERUM_AUDIT_REBALANCE_INTERVAL="0.25",
        SFERUM_AUDIT_LOG_FORMAT="json",
    )
    env.pop("SFERUM_AUDIT_DATABASE_URL", None)
    args = ["--data-dir", str(data_dir), "serve", "--nats-url", nats_server.url]
    args += ["--metrics-port", "0", "--no-views", "--partitions", "4", "--workers", "2"]
    with log.open("ab") as out:
        serve = subprocess.Popen(
            [sys.executable, "-c", "from sferum_audit.cli.main import run; run()", *args],
            env=env,
            stdout=out,
            stderr=out,
        )
    try:
        await publish(nats_server.url, sent[:half], 4, Settings(data_dir=data_dir))
        await wait_for(lambda: len(receipts(store)) >= half, 120, "the first half")
        pids = worker_pids(log)
        assert sorted(pids) == [0, 1]
        os.kill(pids[1][-1], signal.SIGKILL)
        await wait_for(lambda: len(worker_pids(log).get(1, [])) == 2, 60, "a restarted worker")

        await publish(nats_server.url, sent[half:], 4, Settings(data_dir=data_dir))
        await wait_for(lambda: len(receipts(store)) >= len(sent), 120, "every command")

        serve.send_signal(signal.SIGTERM)
        assert serve.wait(60) == 0, last_lines(log)
        assert await ack_pending(nats_server.url, 4) == 0
        counts = receipts(store)
        assert len(counts) == len(sent)
        assert set(counts.values()) == {1}
        assert not any(alive(pid) for run in worker_pids(log).values() for pid in run)
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait(10)
        store.close()
