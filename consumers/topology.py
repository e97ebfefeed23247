"""The JetStream streams, durable consumers and key-value buckets the pipeline needs.

``ensure_topology`` creates what is missing and updates what differs (JetStream updates a
stream in place; a durable consumer is updated with the same call that creates it, for
the settings a consumer may change). It is idempotent and every instance runs it at start.

**The commands stream keeps a command only while the service needs it.** It has interest
retention: once the partition's durable consumer has acked a command (recorded, found a
duplicate, refused and kept, or dead-lettered), JetStream removes it. A command no
consumer acks (its partition's consumer gone after ``PARTITIONS`` changed, say) goes
after ``COMMANDS_MAX_AGE`` seconds when that is set. A stream made before (limits
retention) is switched in place; what it held that was acked goes then. The consumers are
made right after the stream: interest retention keeps nothing nobody is interested in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import structlog
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    KeyValueConfig,
    ReplayPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
    SubjectTransform,
)
from nats.js.errors import BucketNotFoundError, NotFoundError
from nats.js.kv import KeyValue

from sferum_audit.consumers.settings import PipelineSettings
from sferum_audit.consumers.subjects import Subjects

log = structlog.get_logger("sferum_audit.topology")


def consumer_name(settings: PipelineSettings, partition: int) -> str:
    return f"{settings.consumer_prefix}-p{partition}"


def leases_bucket(settings: PipelineSettings) -> str:
    return f"{settings.coordination_bucket}_leases"


def commands_stream_config(settings: PipelineSettings) -> StreamConfig:
    subjects = Subjects(settings.subject_prefix)
    return StreamConfig(
        name=settings.commands_stream,
        description="sferum-audit: incoming commands, partitioned by school",
        subjects=[subjects.commands_wildcard],
        subject_transform=SubjectTransform(
            src=subjects.commands_wildcard,
            dest=subjects.ingest_transform_destination(settings.partitions),
        ),
        retention=RetentionPolicy.INTEREST,
        max_age=settings.commands_max_age,
        discard=DiscardPolicy.OLD,
        storage=StorageType.FILE,
        num_replicas=settings.stream_replicas,
        duplicate_window=settings.duplicate_window,
    )


def events_stream_config(settings: PipelineSettings) -> StreamConfig:
    subjects = Subjects(settings.subject_prefix)
    return StreamConfig(
        name=settings.events_stream,
        description="sferum-audit: every recorded event and rejection, in global order",
        subjects=[subjects.events_wildcard, subjects.rejections_wildcard],
        retention=RetentionPolicy.LIMITS,
        discard=DiscardPolicy.OLD,
        storage=StorageType.FILE,
        num_replicas=settings.stream_replicas,
        duplicate_window=settings.duplicate_window,
    )


def dead_letter_stream_config(settings: PipelineSettings) -> StreamConfig:
    subjects = Subjects(settings.subject_prefix)
    return StreamConfig(
        name=settings.dead_letter_stream,
        description="sferum-audit: commands whose every delivery failed; kept for a retry",
        subjects=[subjects.dead_letters_wildcard],
        retention=RetentionPolicy.LIMITS,
        discard=DiscardPolicy.OLD,
        storage=StorageType.FILE,
        num_replicas=settings.stream_replicas,
        duplicate_window=settings.duplicate_window,
    )


def partition_consumer_config(settings: PipelineSettings, partition: int) -> ConsumerConfig:
    """A durable pull consumer of one partition with explicit acks.

    ``max_deliver`` is unlimited: the ingest itself moves a message to the dead-letter
    stream after ``max_deliveries`` (JetStream would only stop delivering it).
    ``max_ack_pending`` lets two batches be in flight, no more, so a batch that comes
    back is not overtaken by much newer messages.
    """
    return ConsumerConfig(
        durable_name=consumer_name(settings, partition),
        name=consumer_name(settings, partition),
        description=f"sferum-audit ingest, partition {partition}",
        filter_subject=Subjects(settings.subject_prefix).ingest_partition(partition),
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=settings.ack_wait,
        max_deliver=-1,
        max_ack_pending=settings.batch_size * 2,
        max_waiting=64,
        replay_policy=ReplayPolicy.INSTANT,
        num_replicas=0,
    )


@dataclass(frozen=True)
class Topology:
    """What ``ensure_topology`` found or made."""

    commands_stream_key: str
    state: KeyValue
    leases: KeyValue


_COMPARED = (
    "subjects",
    "subject_transform",
    "num_replicas",
    "duplicate_window",
    "retention",
    "max_age",
    "storage",
    "description",
)


def _differs(wanted: StreamConfig, current: StreamConfig) -> bool:
    wanted_dict: dict[str, Any] = wanted.as_dict()
    current_dict: dict[str, Any] = current.as_dict()
    return any(wanted_dict.get(key) != current_dict.get(key) for key in _COMPARED)


async def ensure_stream(js: JetStreamContext, config: StreamConfig) -> Any:
    """Creates the stream, or updates it when its settings differ; returns its info."""
    assert config.name is not None
    try:
        info = await js.stream_info(config.name)
    except NotFoundError:
        log.info("creating stream", stream=config.name)
        return await js.add_stream(config)
    if _differs(config, info.config):
        log.info("updating stream", stream=config.name)
        return await js.update_stream(config)
    return info


async def ensure_topology(
    js: JetStreamContext, settings: PipelineSettings, *, consumers: bool = True
) -> Topology:
    commands = await ensure_stream(js, commands_stream_config(settings))
    await ensure_stream(js, events_stream_config(settings))
    await ensure_stream(js, dead_letter_stream_config(settings))
    if consumers:
        for partition in range(settings.partitions):
            await js.add_consumer(
                settings.commands_stream, partition_consumer_config(settings, partition)
            )
    state = await _bucket(js, settings.coordination_bucket, None, settings.stream_replicas)
    leases = await _bucket(
        js, leases_bucket(settings), settings.lease_ttl, settings.stream_replicas
    )
    created = commands.created.isoformat() if commands.created else "?"
    return Topology(
        commands_stream_key=f"{settings.commands_stream}@{created}", state=state, leases=leases
    )


async def _bucket(js: JetStreamContext, name: str, ttl: float | None, replicas: int) -> KeyValue:
    try:
        bucket = await js.key_value(name)
    except (BucketNotFoundError, NotFoundError):
        return await js.create_key_value(
            KeyValueConfig(bucket=name, history=1, ttl=ttl, replicas=replicas)
        )
    await _keep_ttl(js, name, ttl)
    return bucket


async def _keep_ttl(js: JetStreamContext, name: str, ttl: float | None) -> None:
    """A bucket made with another TTL (say, before ``LEASE_TTL`` changed) gets this one:
    how long a crashed instance's leases block its partitions depends on it."""
    if ttl is None:
        return
    info = await js.stream_info(f"KV_{name}")
    if info.config.max_age is not None and abs(info.config.max_age - ttl) < 1e-3:
        return
    log.info("updating bucket ttl", bucket=name, ttl=ttl)
    info.config.max_age = ttl
    if info.config.duplicate_window is not None and info.config.duplicate_window > ttl:
        info.config.duplicate_window = ttl  # JetStream wants it no longer than the TTL
    await js.update_stream(info.config)
