"""The FastStream side: the NATS broker, the ingest subscriber of each partition, and the
AsyncAPI description of every subject the service reads or writes.

The ingest subscriber is a durable JetStream pull consumer with explicit acks, pulling
batches (``PullSub(batch=True)``: the handler gets the batch as one list, in stream order)
and acking itself (``AckPolicy.MANUAL``). One subscriber per partition is created while
this instance holds that partition's lease (``consumers.coordination``).

``asyncapi_json`` renders the AsyncAPI 3.0 document committed as ``docs/asyncapi.json``;
it documents the subjects publishers and downstream systems use (``<prefix>.commands.
{school_id}.{command_type}``), while at run time each partition's consumer filters the
stored form ``<prefix>.ingest.<partition>.*.*`` (see ``consumers.subjects``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Final, Literal

import nats.errors
import structlog
from faststream import AckPolicy, Context
from faststream.message import StreamMessage
from faststream.nats import JStream, NatsBroker, PullSub
from faststream.nats.message import NatsBatchMessage
from faststream.specification import AsyncAPI
from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig
from pydantic import BaseModel, Field, PlainValidator

from sferum_audit.application.authentication import (
    SIGNATURE_HEADER,
    SOURCE_HEADER,
    TIMESTAMP_HEADER,
)
from sferum_audit.application.commands import Command
from sferum_audit.consumers.connection import nats_security
from sferum_audit.consumers.ingest import IngestProcessor
from sferum_audit.consumers.pending_fetch import PendingFetch
from sferum_audit.consumers.settings import PipelineSettings
from sferum_audit.consumers.topology import consumer_name, partition_consumer_config

log = structlog.get_logger("sferum_audit.ingest")

ASYNCAPI_TITLE = "sferum-audit"
ASYNCAPI_VERSION = "0.1.0"

# A command as it arrives: documented with the command schema, but handed to the handler as
# the raw bytes, so that bad JSON and schema errors are refused and kept, not raised.
CommandPayload = Annotated[Any, PlainValidator(lambda value: value, json_schema_input_type=Command)]


class CommandAnswer(BaseModel):
    """The answer a publisher gets when it sets the ``reply_to`` header."""

    command_id: str | None
    status: Literal["recorded", "duplicate", "rejected", "dead-lettered"]
    events: list[dict[str, Any]] | None = Field(
        default=None,
        description="Recorded or earlier recorded events: aggregate_id, version, type, position.",
    )
    error: dict[str, Any] | None = Field(
        default=None, description="Why it was refused: code and message."
    )


class OutboundEvent(BaseModel):
    """One recorded event (or rejection) as published on the events stream."""

    position: int = Field(description="Global position in the log; also the Nats-Msg-Id.")
    type: str = Field(description="Aggregate.Event, e.g. Chat.ContentRemoved.")
    aggregate_id: str
    version: int
    timestamp: str = Field(description="When it was recorded (ISO 8601, UTC).")
    school_id: str | None
    ctx: dict[str, Any] | None = Field(
        description="actor_id, actor_role, occurred_at, command_id, correlation_id, causation_id"
    )
    data: dict[str, Any] = Field(
        description="The event's own fields; personal fields stay sealed ({subject, sealed})."
    )


async def raw_batch_decoder(message: StreamMessage[list[Msg]]) -> list[bytes]:
    """The payloads as bytes: decoding is the ingest's job (it keeps what it refuses)."""
    return [msg.data for msg in message.raw_message]


IngestHandler = Callable[..., Awaitable[None]]

_DEFAULT = PipelineSettings.model_fields
INGEST_DESCRIPTION = (
    "One command per message (the JSON of `sferum-audit record`). Headers: Sferum-Source, "
    "Sferum-Timestamp and Sferum-Signature (required: a registered source's Ed25519 "
    "signature over timestamp + '.' + the exact payload bytes, base64; unsigned, unknown, "
    "revoked, expired or mismatched signatures are refused with their code); Nats-Msg-Id = "
    "<command_id>:<the first 32 hex digits of the SHA-256 of the exact payload bytes> "
    "(JetStream drops only a byte-identical repeat within the duplicate window; a reused "
    "command_id with other content always reaches the store and is refused as "
    "command-id-reused), optional reply_to (the answer is published there if it is a plain "
    "subject under the allowed inbox prefixes, SFERUM_AUDIT_REPLY_PREFIXES, default _INBOX.; "
    "any other is ignored) and "
    "correlation_id. Limits (configurable, defaults shown): at most "
    f"{_DEFAULT['max_command_bytes'].default} bytes (SFERUM_AUDIT_MAX_COMMAND_BYTES; else "
    f"command-too-large), JSON nested at most {_DEFAULT['max_command_depth'].default} "
    "levels (SFERUM_AUDIT_MAX_COMMAND_DEPTH; else command-too-deep), integers of at most "
    f"{_DEFAULT['max_number_digits'].default} digits (SFERUM_AUDIT_MAX_NUMBER_DIGITS; else "
    "number-too-long). The stream stores "
    "it as <prefix>.ingest.<partition>.<school_id>.<command_type> (partition = FNV-1a of "
    "the school token mod the partition count); a durable pull consumer per partition, "
    "held by one instance at a time, decides batches in stream order in one transaction "
    "each. Every message ends recorded (or duplicate), rejected (acked, kept with its code "
    "and reason, published on the rejections channel) or dead-lettered. A command that "
    "has to be tried again holds everything after it in its partition until it is "
    "recorded or dead-lettered, so a school's commands are decided in stream order."
)


async def _one_command(command: CommandPayload) -> None:
    """Documents one message of the ingest (the running subscribers take batches)."""


def make_ingest_handler(processor: IngestProcessor | None) -> IngestHandler:
    async def ingest_commands(
        commands: list[CommandPayload],
        message: Annotated[NatsBatchMessage, Context("message")],
    ) -> None:
        """Records a batch of commands in one transaction, in stream order.

        Each command is accepted or refused on its own; refused ones (too large or deep,
        bad JSON, schema errors, broken rules, missing authority) are acked and kept with
        their reason. Headers: ``Nats-Msg-Id`` = ``<command_id>:<SHA-256 prefix of the
        bytes>``, optional ``reply_to`` (the answer goes there), optional
        ``correlation_id``. Partitioned by school: one consumer decides a school's
        commands at a time, in order, and holds them behind one being retried.
        """
        assert processor is not None, "a documentation-only handler"
        try:
            await processor.process(message.raw_message)
        except Exception:
            # Not one message's fault (those are settled inside): the batch stays unacked
            # and comes back after ack_wait, in order.
            log.exception("batch not handled; it is redelivered", size=len(message.raw_message))

    return ingest_commands


def build_broker(
    servers: str | list[str],
    settings: PipelineSettings,
    *,
    logger: Any = None,
    reconnected_cb: Callable[[], Awaitable[None]] | None = None,
    disconnected_cb: Callable[[], Awaitable[None]] | None = None,
) -> NatsBroker:
    """The broker; ``logger=None`` by default (FastStream's per-message lines cost ~25%).

    It authenticates as the service (``SFERUM_AUDIT_NATS_*`` credentials and TLS).
    """
    options: dict[str, Any] = {"reconnect_time_wait": 0.5}
    security = nats_security(settings)
    if security is not None:
        options["security"] = security
    if reconnected_cb is not None:
        options["reconnected_cb"] = reconnected_cb
    if disconnected_cb is not None:
        options["disconnected_cb"] = disconnected_cb
    return NatsBroker(
        servers,
        logger=logger,
        graceful_timeout=settings.graceful_timeout,
        max_reconnect_attempts=-1,
        **options,
    )


def add_partition_subscriber(
    broker: NatsBroker,
    settings: PipelineSettings,
    partition: int,
    handler: IngestHandler,
) -> Any:
    """The pull consumer of one partition, registered with ``handler`` (not yet started)."""
    config: ConsumerConfig = partition_consumer_config(settings, partition)
    config.filter_subject = None  # FastStream passes the subject as the filter
    subscriber = broker.subscriber(
        f"{settings.subject_prefix}.ingest.{partition}.*.*",
        stream=JStream(settings.commands_stream, declare=False),
        durable=consumer_name(settings, partition),
        pull_sub=PullSub(settings.batch_size, settings.batch_timeout, batch=True),
        config=config,
        ack_policy=AckPolicy.MANUAL,
        decoder=raw_batch_decoder,
        persistent=False,
        include_in_schema=False,
    )
    subscriber(handler)
    return subscriber


def guard_fetch(subscriber: Any) -> None:
    """Makes a started batch subscriber take what is pending instead of waiting to fill a
    batch (``pending_fetch``), survive nats-py's plain ``asyncio.TimeoutError``, and
    remember what it fetched so a stop can give back what it never handled.

    nats-py 2.16's ``fetch`` raises the builtin ``TimeoutError`` on some paths, FastStream
    0.7.8's batch loop catches only ``nats.errors.TimeoutError``: the loop task dies and the
    messages it had collected stay unacked until ``ack_wait`` (and would then arrive after
    newer ones). Converting the error keeps the loop, and the batch, alive. The same loop
    drops a fetched batch when it is stopped; ``release_unhandled`` naks those messages so
    the next owner of the partition gets them at once.
    """
    subscription = subscriber.subscription
    if subscription is None or getattr(subscription, "_sferum_guarded", False):
        return
    original = PendingFetch(subscription, subscription.fetch)  # batches close when dry
    fetched: list[Msg] = []
    idle = asyncio.Event()
    idle.set()
    closing = asyncio.Event()

    async def fetch(*args: Any, **kwargs: Any) -> Any:
        if closing.is_set():
            await asyncio.Event().wait()  # parked until the stop cancels the loop
        idle.clear()
        try:
            messages = await original(*args, **kwargs)
        except nats.errors.TimeoutError:
            raise
        except TimeoutError as error:
            raise nats.errors.TimeoutError from error
        finally:
            idle.set()
        fetched[:] = [m for m in fetched if not m._ackd]
        fetched.extend(messages)
        return messages

    subscription.fetch = fetch
    subscription._sferum_guarded = True
    subscription._sferum_fetched = fetched
    subscription._sferum_idle = idle
    subscription._sferum_closing = closing


def pause_fetching(subscriber: Any) -> None:
    """Starts no other fetch on this subscriber (until it is stopped and made anew)."""
    subscription = subscriber.subscription
    if subscription is not None and getattr(subscription, "_sferum_guarded", False):
        subscription._sferum_closing.set()


async def quiesce(subscriber: Any, linger: float) -> None:
    """Lets the fetch in flight finish and starts no other, then waits ``linger`` seconds
    while still subscribed, so a late delivery lands in the subscription's queue."""
    subscription = subscriber.subscription
    if subscription is None or not getattr(subscription, "_sferum_guarded", False):
        return
    subscription._sferum_closing.set()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(subscription._sferum_idle.wait(), timeout=linger + 5.0)
    await asyncio.sleep(linger)


async def release_unhandled(subscription: Any) -> int:
    """Naks (for immediate redelivery) what a stopped subscriber fetched, or received, and
    never handled."""
    if subscription is None:
        return 0
    fetched: list[Msg] = getattr(subscription, "_sferum_fetched", [])
    left = [m for m in fetched if not m._ackd]
    queue = getattr(getattr(subscription, "_sub", None), "_pending_queue", None)
    while queue is not None and not queue.empty():
        msg = queue.get_nowait()
        if msg.reply and not msg._ackd:  # status messages have no ack subject
            left.append(msg)
    for msg in left:
        try:
            await msg.nak()
        except nats.errors.Error:
            break  # not connected: they come back after ack_wait instead
    fetched.clear()
    return len(left)


async def start_subscriber(subscriber: Any) -> None:
    """Starts a partition subscriber with its fetch guarded (see ``guard_fetch``)."""
    await subscriber.start()
    guard_fetch(subscriber)


def document(broker: NatsBroker, settings: PipelineSettings) -> None:
    """Declares every subject of the service on ``broker`` for the AsyncAPI document."""
    prefix = settings.subject_prefix
    subscriber = broker.subscriber(
        f"{prefix}.commands.{{school_id}}.{{command_type}}",
        stream=JStream(settings.commands_stream, declare=False),
        durable=f"{settings.consumer_prefix}-p{{partition}}",
        pull_sub=PullSub(settings.batch_size, settings.batch_timeout),
        ack_policy=AckPolicy.MANUAL,
        title="commands",
        description=INGEST_DESCRIPTION,
    )
    subscriber(_one_command)
    broker.publisher(
        f"{prefix}.events.{{school_id}}.{{aggregate}}.{{event}}",
        stream=JStream(settings.events_stream, declare=False),
        schema=OutboundEvent,
        title="events",
        description="Every recorded event once, in global order (Nats-Msg-Id = position, "
        "Nats-Expected-Last-Msg-Id = the position before). Events without a school: "
        "school_id token '_'.",
    )
    broker.publisher(
        f"{prefix}.rejections.{{school_id}}.{{command_type}}",
        stream=JStream(settings.events_stream, declare=False),
        schema=OutboundEvent,
        title="rejections",
        description="Every rejected command (a RejectedCommand.Recorded event: error code, "
        "message, the persons it names and the original payload sealed under their keys; "
        "of a payload over 65536 bytes only its first 65536 bytes, with payload_size, "
        "payload_sha256 of the whole and payload_truncated), in the same global order as "
        "the events.",
    )
    broker.publisher(
        f"{prefix}.dead-letters.{{school_id}}.{{command_type}}",
        stream=JStream(settings.dead_letter_stream, declare=False),
        schema=Command,
        title="dead-letters",
        description="Commands whose every delivery failed (store unavailable, or a message "
        "that makes the service fail). The original payload and headers, plus "
        "Sferum-Original-Subject/-Sequence, Sferum-Deliveries, Sferum-Error, "
        "Sferum-Failed-At. `sferum-audit dead-letters --retry` publishes them again; "
        "erasing a person deletes the dead letters whose payload names them.",
    )
    broker.publisher(
        "{reply_to}",
        schema=CommandAnswer,
        title="answers",
        description="The answer to a command published with a reply_to header; sent only "
        "to a plain subject under the allowed inbox prefixes (SFERUM_AUDIT_REPLY_PREFIXES, "
        "default _INBOX.), never to the service's own subjects or the $JS/$KV APIs.",
    )


def docs_broker(settings: PipelineSettings | None = None) -> NatsBroker:
    # The defaults, not this machine's environment: the document is committed.
    settings = settings or PipelineSettings.model_construct(instance_id="docs")
    broker = NatsBroker("nats://localhost:4222", logger=None)
    document(broker, settings)
    return broker


def asyncapi(settings: PipelineSettings | None = None) -> AsyncAPI:
    return AsyncAPI(
        docs_broker(settings),
        title=ASYNCAPI_TITLE,
        version=ASYNCAPI_VERSION,
        description="NATS JetStream interface of sferum-audit: commands in, recorded events, "
        "rejections, dead letters and answers out.",
    )


COMMAND_HEADERS: Final[dict[str, Any]] = {
    "type": "object",
    "required": [SOURCE_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER, "Nats-Msg-Id"],
    "properties": {
        SOURCE_HEADER: {
            "type": "string",
            "description": "Id of the registered source that signs (`operator` for the "
            "deployment operator's key: register-school and source management only).",
        },
        TIMESTAMP_HEADER: {
            "type": "string",
            "pattern": "^[0-9]{1,12}$",
            "description": "When it was signed, whole seconds since the UNIX epoch; refused "
            "when more than SFERUM_AUDIT_SIGNATURE_WINDOW_SECONDS (300) from the time "
            "JetStream stored the message.",
        },
        SIGNATURE_HEADER: {
            "type": "string",
            "contentEncoding": "base64",
            "description": "Ed25519 signature over the bytes of Sferum-Timestamp, '.', and "
            "the exact payload, with the source's current key.",
        },
        "Nats-Msg-Id": {
            "type": "string",
            "description": "<command_id>:<first 32 hex digits of the SHA-256 of the payload>.",
        },
        "reply_to": {"type": "string", "description": "Where to publish the answer."},
        "correlation_id": {"type": "string"},
    },
}


def asyncapi_json(settings: PipelineSettings | None = None) -> str:
    """The AsyncAPI document as committed in docs/asyncapi.json (defaults, prefix sferum),
    with the command message's headers declared (FastStream does not generate them)."""
    schema = json.loads(asyncapi(settings).to_specification().to_json())
    schema["components"]["messages"]["commands:SubscribeMessage"]["headers"] = COMMAND_HEADERS
    return json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


if __name__ == "__main__":  # pragma: no cover
    # python -m sferum_audit.consumers.broker > docs/asyncapi.json
    import sys

    sys.stdout.write(asyncapi_json())
