"""The relay trusts only the log: foreign messages on the events stream and positions NATS
will not take raise alarms; no position is skipped.

Log entries are made from refused commands (bad JSON): every one is recorded as a
rejection and relayed like any event. Each test runs against its own nats-server.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats
import pytest
from consumer_helpers import fast_options, head, wait_for
from nats.aio.client import Client
from nats.js import JetStreamContext
from structlog.testing import capture_logs

from sferum_audit.application.settings import Settings
from sferum_audit.consumers.embedded_nats import EmbeddedNats
from sferum_audit.consumers.publisher import CommandPublisher
from sferum_audit.consumers.service import Pipeline
from sferum_audit.consumers.settings import PipelineSettings

pytestmark = pytest.mark.nats


@pytest.fixture
async def client(nats_server: EmbeddedNats) -> AsyncIterator[Client]:
    nc = await nats.connect(nats_server.url)
    yield nc
    await nc.close()


async def refuse(nc: Client, school: str, count: int, tag: str, size: int = 10) -> None:
    """``count`` commands of bad JSON: each is kept in the log as a rejection."""
    publisher = CommandPublisher(nc.jetstream(), nc=nc)
    for n in range(count):
        body = b"{" + b"x" * size
        await publisher.publish_raw(school, "remove-content", body, msg_id=f"{tag}-{n}")


async def stream(js: JetStreamContext, options: PipelineSettings) -> list[Any]:
    info = await js.stream_info(options.events_stream)
    return [
        await js.get_msg(options.events_stream, seq)
        for seq in range(info.state.first_seq, info.state.last_seq + 1)
    ]


def sample(pipeline: Pipeline, name: str) -> float:
    value = pipeline.metrics.registry.get_sample_value(name)
    return float(value or 0.0)


def relayed_all(pipeline: Pipeline, at_least: int = 1) -> bool:
    """Whether the log holds ``at_least`` positions and the relay published them all."""
    assert pipeline.app is not None
    assert pipeline.relay is not None
    return pipeline.relay.position >= head(pipeline.app) >= at_least


FORGED = {"position": 999999, "type": "School.Registered", "data": {"forged": True}}


async def forge(js: JetStreamContext, msg_id: str) -> None:
    """What the anonymous client of the report did: one message with a position as id."""
    await js.publish(
        "sferum.events.s.School.Registered",
        json.dumps(FORGED).encode(),
        headers={"Nats-Msg-Id": msg_id},
    )


async def test_a_foreign_message_on_the_events_stream_raises_an_alarm_and_the_relay_goes_on(
    nats_server: EmbeddedNats, client: Client, sqlite_settings: Settings, unique: str
) -> None:
    options = fast_options(nats_server.url, f"a-{unique}")
    js = client.jetstream()
    async with Pipeline(sqlite_settings, options, views=False) as pipeline:
        await refuse(client, f"s-{unique}", 5, "first")
        await wait_for(lambda: relayed_all(pipeline), 30, "the first rejections relayed")
        with capture_logs() as logs:
            await forge(js, "999999")  # while the relay runs
            await refuse(client, f"s-{unique}", 5, "second")
            await wait_for(lambda: relayed_all(pipeline, 10), 30, "the relay past the forgery")
        assert sample(pipeline, "sferum_audit_relay_foreign_messages_total") >= 1
        assert any(e["event"].startswith("ALARM: a message on the events") for e in logs)
    # After a restart, with the forgery as the stream's last message.
    await forge(js, "999998")  # another id: JetStream would drop a repeat of the first
    options = options.model_copy(update={"instance_id": f"b-{unique}"})
    async with Pipeline(sqlite_settings, options, views=False) as pipeline:
        await refuse(client, f"s-{unique}", 5, "third")
        await wait_for(lambda: relayed_all(pipeline, 15), 30, "the relay after a restart")
        assert sample(pipeline, "sferum_audit_relay_foreign_messages_total") >= 1
        assert pipeline.app is not None
        messages = await stream(js, options)
        genuine = [
            int(m.headers["Nats-Msg-Id"]) for m in messages if m.data != json.dumps(FORGED).encode()
        ]
        assert genuine == list(range(1, head(pipeline.app) + 1))


async def test_a_forgery_under_the_next_positions_id_does_not_replace_the_genuine_event(
    nats_server: EmbeddedNats, client: Client, sqlite_settings: Settings, unique: str
) -> None:
    options = fast_options(nats_server.url, f"a-{unique}", duplicate_window=1.0)
    js = client.jetstream()
    async with Pipeline(sqlite_settings, options, views=False) as pipeline:
        await refuse(client, f"s-{unique}", 3, "first")
        await wait_for(lambda: relayed_all(pipeline), 30, "the first rejections relayed")
        assert pipeline.app is not None
        taken = head(pipeline.app) + 1
        await forge(js, str(taken))
        await refuse(client, f"s-{unique}", 3, "second")
        await wait_for(lambda: relayed_all(pipeline, 6), 30, "the relay after the window")
        assert sample(pipeline, "sferum_audit_relay_foreign_messages_total") >= 1
        messages = await stream(js, options)
        genuine = [m for m in messages if m.data != json.dumps(FORGED).encode()]
        assert [int(m.headers["Nats-Msg-Id"]) for m in genuine] == list(
            range(1, head(pipeline.app) + 1)
        )


async def test_a_position_too_large_to_publish_is_never_skipped_and_raises_an_alarm(
    tmp_path: Path, sqlite_settings: Settings, unique: str
) -> None:
    config = tmp_path / "small.conf"
    config.write_text("max_payload: 8192\n")
    server = EmbeddedNats(tmp_path / "nats", extra_args=("-c", str(config)))
    await server.start()
    try:
        nc = await nats.connect(server.url)
        options = fast_options(server.url, f"a-{unique}")
        async with Pipeline(sqlite_settings, options, views=False) as pipeline:
            assert pipeline.app is not None
            assert pipeline.relay is not None
            await refuse(nc, f"s-{unique}", 2, "small")
            await wait_for(lambda: relayed_all(pipeline), 30, "the small rejections")
            blocked = head(pipeline.app) + 1
            with capture_logs() as logs:
                await refuse(nc, f"s-{unique}", 1, "large", size=6000)
                await refuse(nc, f"s-{unique}", 2, "after")
                await wait_for(
                    lambda: sample(pipeline, "sferum_audit_relay_blocked_position") == blocked,
                    30,
                    "the alarm",
                )
            alarms = [e for e in logs if e["event"].startswith("ALARM: the relay cannot")]
            assert alarms[0]["position"] == blocked
            assert "max payload" in alarms[0]["reason"]
            assert pipeline.relay.position == blocked - 1
            messages = await stream(nc.jetstream(), options)
            positions = [int(m.headers["Nats-Msg-Id"]) for m in messages]
            assert positions == list(range(1, blocked))
            assert head(pipeline.app) > blocked  # later events wait, they are not lost
        await nc.close()
    finally:
        await server.stop(timeout=5)
