"""Helpers of the pipeline tests: fast settings, waiting, and counting what the store holds."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from nats.js import JetStreamContext

from sferum_audit.application.handlers import HANDLERS, Handler
from sferum_audit.application.receipts import CommandReceipt
from sferum_audit.application.service import AuditLog
from sferum_audit.consumers.rejected import rejected_commands
from sferum_audit.consumers.settings import PipelineSettings

RECEIPT_TOPIC = f"{CommandReceipt.__module__}:{CommandReceipt.__qualname__}.Recorded"


def fast_options(url: str, name: str, **overrides: Any) -> PipelineSettings:
    """Settings with short timers, so faults recover within seconds."""
    values: dict[str, Any] = {
        "nats_url": url,
        "instance_id": name,
        "partitions": 4,
        "batch_size": 50,
        "batch_timeout": 0.05,
        "ack_wait": 2.0,
        "lease_ttl": 2.0,
        "rebalance_interval": 0.25,
        "backoff": [0.2, 0.4, 0.8],
        "max_deliveries": 4,
        "metrics_port": None,
        "graceful_timeout": 10.0,
        "relay_poll_interval": 0.05,
        "duplicate_window": 60.0,
    }
    values.update(overrides)
    return PipelineSettings(**values)


async def wait_for(
    condition: Callable[[], bool | Awaitable[bool]], timeout: float, what: str
) -> None:
    """Polls ``condition`` until it holds; fails the test with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if not isinstance(value, bool):
            value = await value
        if value:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def receipts(app: AuditLog) -> Counter[str]:
    """How often each command id was recorded (its receipt events in the log)."""
    counts: Counter[str] = Counter()
    start = 1
    while page := app.recorder.select_notifications(start, 1000, topics=[RECEIPT_TOPIC]):
        for notification in page:
            event: Any = app.mapper.to_domain_event(notification)
            counts[event.command_id] += 1
        if len(page) < 1000:
            break
        start = page[-1].id + 1
    return counts


def receipt_order(app: AuditLog) -> list[str]:
    """Command ids in the order the log recorded them."""
    order: list[str] = []
    start = 1
    while page := app.recorder.select_notifications(start, 1000, topics=[RECEIPT_TOPIC]):
        order += [app.mapper.to_domain_event(n).command_id for n in page]  # type: ignore[attr-defined]
        if len(page) < 1000:
            break
        start = page[-1].id + 1
    return order


def rejections(app: AuditLog) -> list[dict[str, Any]]:
    return list(rejected_commands(app))


def head(app: AuditLog) -> int:
    return app.recorder.max_notification_id() or 0


async def events_on_stream(js: JetStreamContext, options: PipelineSettings) -> list[Any]:
    """Every message of the events stream, in stream order."""
    info = await js.stream_info(options.events_stream)
    out = []
    for sequence in range(info.state.first_seq, info.state.last_seq + 1):
        out.append(await js.get_msg(options.events_stream, sequence))
    return out


async def assert_relayed_exactly_once(
    js: JetStreamContext, options: PipelineSettings, app: AuditLog
) -> None:
    """The events stream holds positions 1..head once each, in order."""
    messages = await events_on_stream(js, options)
    positions = [int(m.headers["Nats-Msg-Id"]) for m in messages]
    assert positions == list(range(1, head(app) + 1))
    body = json.loads(messages[0].data)
    assert messages[0].subject == f"sferum.events.{body['school_id']}.{body['type']}"


def break_handler(
    monkeypatch: pytest.MonkeyPatch, command_type: str, command_ids: set[str], bug: str
) -> Handler:
    """Makes the handler of ``command_type`` raise ``KeyError(bug)`` for ``command_ids`` (a
    bug those commands trigger) and handle every other command as before. Returns the real
    handler, for a test that puts it back (the fix)."""
    original = HANDLERS[command_type]

    def explode(uow: Any, cmd: Any, ctx: Any) -> None:
        if cmd.command_id in command_ids:
            raise KeyError(bug)
        original(uow, cmd, ctx)

    monkeypatch.setitem(HANDLERS, command_type, explode)
    return original
