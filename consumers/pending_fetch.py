"""A pull that takes what the stream has now: batches close when the stream is empty.

What it buys: latency at light load without giving up big batches at heavy load. nats-py
2.16's ``fetch(n, timeout)`` on an empty client queue sends ``no_wait`` *with* ``expires``,
which the server treats as a lingering pull: it holds the request until ``n`` messages
came or ``expires`` passed. FastStream 0.7.8's batch loop then calls ``fetch`` again until
the batch is full or ``timeout`` passed. Either way a batch of three commands waits out
the whole batch timeout before it is recorded.

``fetch_pending`` instead:

1. takes what the client already holds;
2. asks for the rest with ``no_wait`` and no ``expires``: the server sends what is pending
   (up to the batch size) and then status 404, at once;
3. only if that found nothing, waits (a lingering pull of one message, at most ``timeout``)
   for the first message, then does 2 again for whatever came with it.

So one call returns as soon as the stream has nothing more to give: a single command is a
batch of one, a backlog fills whole batches. ``PendingFetch`` wraps a subscription's
``fetch`` so FastStream's loop stops collecting once a call found the stream empty (the
next call raises ``TimeoutError``, which ends the loop with what it has).

Measured by ``scripts/bench_ingest.py`` (lag phase: publish to the audit-trail view).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext

Fetch = Callable[..., Awaitable[list[Msg]]]

# The server answers a ``no_wait`` pull at once; this only bounds a lost answer.
ANSWER_TIMEOUT = 5.0


class Pending:
    """What one round of asking found: messages, and whether the stream ran dry."""

    __slots__ = ("drained", "messages")

    def __init__(self) -> None:
        self.messages: list[Msg] = []
        self.drained = False


def _from_queue(subscription: Any, batch: int) -> list[Msg]:
    """The messages the client already received, dropping stale status messages."""
    queue = subscription._sub._pending_queue
    taken: list[Msg] = []
    while len(taken) < batch and not queue.empty():
        msg = queue.get_nowait()
        subscription._sub._pending_size -= len(msg.data)
        if JetStreamContext.is_status_msg(msg):
            continue  # an answer to an earlier request
        taken.append(msg)
    return taken


async def _ask_pending(subscription: Any, needed: int, found: Pending) -> None:
    """Asks for up to ``needed`` messages that are pending now (no waiting on the server)."""
    request = json.dumps({"batch": needed, "no_wait": True}).encode()
    await subscription._nc.publish(subscription._nms, request, subscription._deliver)
    while needed > 0:
        try:
            msg = await subscription._sub.next_msg(timeout=ANSWER_TIMEOUT)
        except (TimeoutError, nats.errors.TimeoutError):
            return
        status = JetStreamContext.is_status_msg(msg)
        if status == "100":  # an idle heartbeat
            continue
        if status:  # 404 no messages, 408 expired, 409: nothing more for this request
            found.drained = True
            return
        found.messages.append(msg)
        needed -= 1


async def fetch_pending(
    subscription: Any, original: Fetch, batch: int, timeout: float | None
) -> Pending:
    """Up to ``batch`` messages: what is pending now, or (if nothing is) the first to arrive
    within ``timeout`` and what came with it. Raises ``nats.errors.TimeoutError`` when
    nothing arrived."""
    found = Pending()
    found.messages = _from_queue(subscription, batch)
    if len(found.messages) < batch:
        await _ask_pending(subscription, batch - len(found.messages), found)
    if found.messages:
        return found
    first = await original(1, timeout=timeout)  # a lingering pull: waits for one message
    found.messages = list(first)
    found.drained = False
    if len(found.messages) < batch:
        await _ask_pending(subscription, batch - len(found.messages), found)
    return found


class PendingFetch:
    """A subscription's ``fetch`` that ends FastStream's batch loop once the stream is dry.

    FastStream keeps calling ``fetch`` until the batch is full or its timeout passed; after
    a call that found the stream empty, the next call raises ``TimeoutError`` at once so
    the loop hands over the batch it has."""

    def __init__(self, subscription: Any, original: Fetch) -> None:
        self.subscription = subscription
        self.original = original
        self._dry = False

    async def __call__(self, batch: int = 1, timeout: float | None = 5.0, **_: Any) -> list[Msg]:
        if self._dry:
            self._dry = False
            raise nats.errors.TimeoutError
        found = await fetch_pending(self.subscription, self.original, batch, timeout)
        self._dry = found.drained and len(found.messages) < batch
        return found.messages
