"""Batches of different partitions share the recording threads (``record_threads``)."""

from __future__ import annotations

import threading
import time
from typing import Any

import nats
import pytest
from consumer_helpers import fast_options, wait_for

from sferum_audit.application.settings import Settings
from sferum_audit.consumers.command_mix import school_commands
from sferum_audit.consumers.embedded_nats import EmbeddedNats
from sferum_audit.consumers.publisher import CommandPublisher
from sferum_audit.consumers.service import Pipeline
from sferum_audit.consumers.subjects import partition_of

pytestmark = pytest.mark.nats


class ConcurrencyProbe:
    """Wraps ``handle_batch``: holds each batch a moment and counts how many overlap."""

    def __init__(self, handle_batch: Any) -> None:
        self.handle_batch = handle_batch
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0
        self.threads: set[str] = set()

    def __call__(self, commands: Any) -> Any:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
            self.threads.add(threading.current_thread().name)
        try:
            time.sleep(0.2)  # long enough for the other partitions' batches to arrive
            return self.handle_batch(commands)
        finally:
            with self.lock:
                self.running -= 1


async def most_batches_at_once(
    url: str, settings: Settings, unique: str, **options: Any
) -> ConcurrencyProbe:
    schools = [f"s{n}-{unique}" for n in range(8)]
    assert len({partition_of(s, 4) for s in schools}) > 2
    commands = [c for s in schools for c in school_commands(s, students=2, moderations=2)]
    nc = await nats.connect(url)
    try:
        pipeline = Pipeline(settings, fast_options(url, f"r-{unique}", **options), views=False)
        await pipeline.start()
        try:
            assert pipeline.app is not None
            probe = ConcurrencyProbe(pipeline.app.handle_batch)
            pipeline.app.handle_batch = probe  # type: ignore[method-assign]  # a probe
            await CommandPublisher(nc.jetstream(), nc=nc).publish_many(commands)
            processor = pipeline.processor
            assert processor is not None
            await wait_for(lambda: processor.settled >= len(commands), 60, "every command")
            assert processor.totals["recorded"] == len(commands)
        finally:
            await pipeline.stop()
    finally:
        await nc.close()
    return probe


async def test_one_recording_thread_records_the_partitions_batches_one_at_a_time(
    nats_server: EmbeddedNats, sqlite_settings: Settings, unique: str
) -> None:
    probe = await most_batches_at_once(nats_server.url, sqlite_settings, unique)
    assert probe.most == 1
    assert len(probe.threads) == 1
    assert next(iter(probe.threads)).startswith("sferum-audit-record")


async def test_more_recording_threads_record_partitions_side_by_side(
    nats_server: EmbeddedNats, sqlite_settings: Settings, unique: str
) -> None:
    probe = await most_batches_at_once(nats_server.url, sqlite_settings, unique, record_threads=3)
    assert probe.most >= 2
