"""A pulled batch closes when the stream has nothing more to give, not on a timer.

The pull's timeout is set far longer than the test is willing to wait: a batch that
waited to fill would fail the bounded waits below.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import nats
import pytest
from faststream import AckPolicy
from faststream.nats import JStream, NatsBroker, PullSub
from nats.aio.client import Client
from nats.js.api import AckPolicy as JsAckPolicy
from nats.js.api import ConsumerConfig

from sferum_audit.consumers.broker import raw_batch_decoder, start_subscriber
from sferum_audit.consumers.embedded_nats import EmbeddedNats
from sferum_audit.consumers.pending_fetch import PendingFetch, fetch_pending

pytestmark = pytest.mark.nats

LONG = 60.0  # the pull's timeout: never reached by a batch that closes when the stream is dry
BOUND = 10.0  # how long the test waits at most


@pytest.fixture
async def client(nats_server: EmbeddedNats) -> AsyncIterator[Client]:
    nc = await nats.connect(nats_server.url)
    await nc.jetstream().add_stream(name="DRY", subjects=["dry.>"])
    yield nc
    await nc.close()


async def publish(nc: Client, count: int, start: int = 0) -> None:
    js = nc.jetstream()
    for n in range(start, start + count):
        await js.publish(f"dry.{n}", str(n).encode())


async def pull_subscription(nc: Client) -> Any:
    return await nc.jetstream().pull_subscribe(
        "dry.>", durable="dry", stream="DRY", config=ConsumerConfig(ack_policy=JsAckPolicy.EXPLICIT)
    )


async def test_a_fetch_returns_what_is_pending_without_waiting_to_fill_the_batch(
    client: Client,
) -> None:
    await publish(client, 3)
    subscription = await pull_subscription(client)

    found = await asyncio.wait_for(
        fetch_pending(subscription, subscription.fetch, 100, LONG), BOUND
    )

    assert [m.data for m in found.messages] == [b"0", b"1", b"2"]
    assert found.drained


async def test_a_backlog_fills_whole_batches(client: Client) -> None:
    await publish(client, 25)
    subscription = await pull_subscription(client)

    found = await asyncio.wait_for(fetch_pending(subscription, subscription.fetch, 10, LONG), BOUND)

    assert [m.data for m in found.messages] == [str(n).encode() for n in range(10)]


async def test_an_idle_fetch_returns_as_soon_as_the_first_message_arrives(
    client: Client,
) -> None:
    subscription = await pull_subscription(client)
    fetch = PendingFetch(subscription, subscription.fetch)

    waiting = asyncio.create_task(fetch(100, timeout=LONG))
    await asyncio.sleep(0.2)
    assert not waiting.done()  # nothing pending: it waits for a message
    await publish(client, 1)

    messages = await asyncio.wait_for(waiting, BOUND)
    assert [m.data for m in messages] == [b"0"]
    with pytest.raises(nats.errors.TimeoutError):  # the stream was dry: the batch closes
        await fetch(99, timeout=LONG)


async def test_the_ingest_subscriber_hands_over_a_small_batch_at_once(
    nats_server: EmbeddedNats, client: Client
) -> None:
    broker = NatsBroker(nats_server.url, logger=None)
    batches: list[list[bytes]] = []

    async def received(count: int) -> None:
        while sum(len(batch) for batch in batches) < count:
            await asyncio.sleep(0.01)

    await broker.start()
    subscriber = broker.subscriber(
        "dry.>",
        stream=JStream("DRY", declare=False),
        durable="dry-faststream",
        pull_sub=PullSub(500, LONG, batch=True),
        ack_policy=AckPolicy.MANUAL,
        decoder=raw_batch_decoder,
        persistent=False,
    )

    @subscriber
    async def handle(messages: list[bytes]) -> None:
        batches.append(messages)

    try:
        await start_subscriber(subscriber)
        await publish(client, 3)
        await asyncio.wait_for(received(3), BOUND)  # not held back to fill a batch of 500
        await publish(client, 2, start=3)
        await asyncio.wait_for(received(5), BOUND)
    finally:
        await broker.stop()

    assert [m for batch in batches for m in batch] == [str(n).encode() for n in range(5)]
