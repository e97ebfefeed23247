"""``sferum-audit serve`` as a process: killed mid-batch, or stopped with SIGTERM.

The worker (``pipeline_worker.py``) runs the real CLI on a SQLite store and a nats-server of
the test's own; the test reads the same store to count what was recorded.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
from consumer_helpers import (
    assert_relayed_exactly_once,
    head,
    receipt_order,
    receipts,
    wait_for,
)
from source_signing import ProvisioningSigner

from sferum_audit.application.bootstrap import build_audit_log
from sferum_audit.application.service import AuditLog
from sferum_audit.application.settings import Settings
from sferum_audit.consumers.command_mix import school_commands
from sferum_audit.consumers.embedded_nats import EmbeddedNats
from sferum_audit.consumers.publisher import CommandPublisher
from sferum_audit.consumers.settings import PipelineSettings
from sferum_audit.consumers.topology import ensure_topology

pytestmark = pytest.mark.nats

WORKER = Path(__file__).with_name("pipeline_worker.py")


def commands(unique: str) -> list[dict[str, Any]]:
    schools = [school_commands(f"s{n}-{unique}", students=3, moderations=10) for n in range(4)]
    return [row[i] for i in range(len(schools[0])) for row in schools]


class Worker:
    def __init__(self, tmp_path: Path, url: str, data_dir: Path, partitions: int) -> None:
        self.marker = tmp_path / "batches.txt"
        self.url = url
        self.data_dir = data_dir
        self.partitions = partitions
        self.log = tmp_path / "worker.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, hold: float, **extra_env: str) -> None:
        env = dict(
            os.environ,
            SFERUM_AUDIT_ACK_WAIT="2",
            SFERUM_AUDIT_LEASE_TTL="2",
            SFERUM_AUDIT_REBALANCE_INTERVAL="0.25",
            SFERUM_AUDIT_BATCH_SIZE="20",
            SFERUM_AUDIT_BATCH_TIMEOUT="0.05",
            SFERUM_AUDIT_LOG_FORMAT="json",
            SFERUM_AUDIT_WORKERS="1",  # one process: the test patches its batch handling
        )
        env.update(extra_env)
        env.pop("SFERUM_AUDIT_DATABASE_URL", None)
        args = [
            "--data-dir",
            str(self.data_dir),
            "serve",
            "--nats-url",
            self.url,
            "--metrics-port",
            "0",
            "--no-views",
            "--partitions",
            str(self.partitions),
        ]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, str(WORKER), str(self.marker), str(hold), *args],
                env=env,
                stdout=out,
                stderr=out,
            )

    def duplicates_logged(self) -> int:
        """Commands the worker found already recorded (redeliveries), from its JSON log."""
        total = 0
        for line in self.log.read_text(errors="replace").splitlines():
            if line.startswith("{") and '"batch handled"' in line:
                total += int(json.loads(line).get("duplicate", 0))
        return total

    def logged(self, event: str) -> int:
        """How many JSON log lines of the worker have this event."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return sum(f'"event": "{event}"' in line for line in text.splitlines())

    def batches_held(self) -> int:
        return len(self.marker.read_text().splitlines()) if self.marker.exists() else 0

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[AuditLog]:
    app = build_audit_log(Settings(data_dir=tmp_path / "data"))
    yield app
    app.close()


async def publish(
    url: str, items: list[dict[str, Any]], partitions: int, settings: Settings
) -> None:
    """Creates the streams as ``serve`` will (same partitions), then publishes, signed by
    the schools' local source on the store of ``settings``."""
    nc = await nats.connect(url)
    try:
        options = PipelineSettings(nats_url=url, partitions=partitions, ack_wait=2)
        await ensure_topology(nc.jetstream(), options)
        signer = ProvisioningSigner(settings)
        await CommandPublisher(nc.jetstream(), nc=nc, signer=signer).publish_many(items)
    finally:
        await nc.close()


async def ack_pending(url: str, partitions: int) -> int:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        total = 0
        for p in range(partitions):
            info = await js.consumer_info("SFERUM_COMMANDS", f"sferum-audit-ingest-p{p}")
            total += info.num_ack_pending or 0
        return total
    finally:
        await nc.close()


async def assert_no_gap_on_the_events_stream(url: str, store: AuditLog) -> None:
    """Once the relay caught up, the events stream holds positions 1..head once each."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        options = PipelineSettings(nats_url=url, instance_id="check")

        async def caught_up() -> bool:
            info = await js.stream_info(options.events_stream)
            return bool(info.state.last_seq >= head(store))

        await wait_for(caught_up, 30, "the relay")
        await assert_relayed_exactly_once(js, options, store)
    finally:
        await nc.close()


def assert_exactly_once_in_order(store: AuditLog, sent: list[dict[str, Any]]) -> None:
    counts = receipts(store)
    assert set(counts.values()) == {1}
    assert len(counts) == len(sent)
    order = receipt_order(store)
    for school in {c["school_id"] for c in sent}:
        published = [c["command_id"] for c in sent if c["school_id"] == school]
        assert [cid for cid in order if cid.startswith(f"{school}-")] == published


async def test_a_consumer_killed_mid_batch_is_restarted_and_records_each_command_once(
    nats_server: EmbeddedNats, tmp_path: Path, store: AuditLog, unique: str
) -> None:
    sent = commands(unique)
    await publish(nats_server.url, sent, 2, Settings(data_dir=tmp_path / "data"))
    worker = Worker(tmp_path, nats_server.url, tmp_path / "data", partitions=2)
    try:
        worker.start(hold=1.0)
        await wait_for(lambda: worker.batches_held() >= 3, 60, "batches recorded, not acked")
        assert worker.process is not None
        worker.process.send_signal(signal.SIGKILL)
        worker.process.wait(10)
        recorded_before = len(receipts(store))
        assert 0 < recorded_before < len(sent)

        worker.start(hold=0)
        await wait_for(lambda: len(receipts(store)) >= len(sent), 90, "every command")
        assert worker.duplicates_logged() > 0  # the killed batch came back, found recorded
        assert_exactly_once_in_order(store, sent)
        await assert_no_gap_on_the_events_stream(nats_server.url, store)
    finally:
        worker.stop()


async def test_sigterm_lets_the_batch_in_hand_finish_and_be_acked(
    nats_server: EmbeddedNats, tmp_path: Path, store: AuditLog, unique: str
) -> None:
    sent = commands(unique)
    await publish(nats_server.url, sent, 1, Settings(data_dir=tmp_path / "data"))
    worker = Worker(tmp_path, nats_server.url, tmp_path / "data", partitions=1)
    try:
        worker.start(hold=1.5)
        await wait_for(lambda: worker.batches_held() >= 2, 60, "a batch in hand")
        assert worker.process is not None
        worker.process.send_signal(signal.SIGTERM)
        assert worker.process.wait(30) == 0
        assert await ack_pending(nats_server.url, 1) == 0  # finished and acked, none lost

        worker.start(hold=0)
        await wait_for(lambda: len(receipts(store)) >= len(sent), 90, "every command")
        assert worker.duplicates_logged() == 0  # nothing in hand was left unacked
        assert_exactly_once_in_order(store, sent)
    finally:
        worker.stop()


async def test_an_instance_restarted_under_its_name_takes_its_leases_back_at_once(
    nats_server: EmbeddedNats, tmp_path: Path, store: AuditLog, unique: str
) -> None:
    """The leases would live a minute: the restarted instance must not wait for them."""
    sent = commands(unique)
    await publish(nats_server.url, sent, 2, Settings(data_dir=tmp_path / "data"))
    worker = Worker(tmp_path, nats_server.url, tmp_path / "data", partitions=2)
    same_name = {"SFERUM_AUDIT_INSTANCE_ID": f"audit-{unique}", "SFERUM_AUDIT_LEASE_TTL": "60"}
    try:
        worker.start(hold=1.0, **same_name)
        await wait_for(lambda: worker.batches_held() >= 2, 60, "batches recorded, not acked")
        assert worker.process is not None
        worker.process.send_signal(signal.SIGKILL)
        worker.process.wait(10)

        worker.start(hold=0, **same_name)
        await wait_for(lambda: worker.logged("own lease taken back") >= 2, 30, "the leases")
        await wait_for(lambda: len(receipts(store)) >= len(sent), 30, "every command")
        assert_exactly_once_in_order(store, sent)
    finally:
        worker.stop()
