"""The documented nats-server configuration (deploy/nats-server.conf) against attacks.

Each test starts a real nats-server with that very file, the passwords in its
environment as the file expects, and connects as the users it defines: the service,
a school's publisher and a reader of the outbound stream. A school's publisher reaches
only its own school's command subjects and its own reply inbox; only the service writes
to the outbound stream or touches the JetStream API; nobody connects anonymously.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats
import nats.errors
import pytest
from consumer_helpers import fast_options, wait_for
from nats.aio.client import Client
from nats.js.api import AckPolicy, ConsumerConfig

from sferum_audit.application.settings import Settings
from sferum_audit.consumers.command_mix import school_commands
from sferum_audit.consumers.embedded_nats import EmbeddedNats
from sferum_audit.consumers.publisher import CommandPublisher
from sferum_audit.consumers.service import Pipeline

pytestmark = pytest.mark.nats

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "nats-server.conf"
PASSWORDS = {
    "SFERUM_AUDIT_NATS_SERVICE_PASSWORD": "service-secret-1",
    "SFERUM_AUDIT_NATS_READER_PASSWORD": "reader-secret-2",
    "SFERUM_AUDIT_NATS_SCHOOL_1_PASSWORD": "school-secret-3",
}
SERVICE = {"user": "sferum-audit", "password": "service-secret-1"}
SCHOOL_1 = {
    "user": "publisher-school-1",
    "password": "school-secret-3",
    "inbox_prefix": "_INBOX.school-1",
}
READER = {
    "user": "events-reader",
    "password": "reader-secret-2",
    "inbox_prefix": "_INBOX.events-reader",
}


@pytest.fixture
async def secured_nats(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[EmbeddedNats]:
    for name, value in PASSWORDS.items():
        monkeypatch.setenv(name, value)  # the server process inherits them
    server = EmbeddedNats(
        tmp_path / "nats",
        log_file=tmp_path / "nats-server.log",
        extra_args=("-c", str(CONFIG)),
        connect_options=dict(SERVICE),
    )
    await server.start()
    try:
        yield server
    finally:
        await server.stop(timeout=5)


class Violations:
    """What the server told one client it refused (permission violations)."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    async def on_error(self, error: Exception) -> None:
        self.errors.append(str(error))

    async def wait(self, fragment: str) -> None:
        fragment = fragment.lower()  # the client reports the subject lowercased
        await wait_for(lambda: any(fragment in e.lower() for e in self.errors), 30, fragment)


async def connect(server: EmbeddedNats, options: dict[str, Any]) -> tuple[Client, Violations]:
    violations = Violations()
    nc = await nats.connect(
        server.url, allow_reconnect=False, error_cb=violations.on_error, **options
    )
    return nc, violations


async def service_pipeline(server: EmbeddedNats, settings: Settings, unique: str) -> Pipeline:
    options = fast_options(
        server.url,
        f"svc-{unique}",
        nats_user=SERVICE["user"],
        nats_password=SERVICE["password"],
    )
    return Pipeline(settings, options, views=False)


async def ever_stored(js: Any, stream: str) -> int:
    return int((await js.stream_info(stream)).state.last_seq)


async def stored(js: Any, stream: str) -> int:
    return int((await js.stream_info(stream)).state.messages)


async def test_an_anonymous_client_is_refused(secured_nats: EmbeddedNats) -> None:
    with pytest.raises((nats.errors.Error, OSError)):
        await nats.connect(
            secured_nats.url, allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=2
        )


async def test_a_schools_publisher_reaches_the_service_and_gets_its_answer_on_its_inbox(
    secured_nats: EmbeddedNats, sqlite_settings: Settings, unique: str
) -> None:
    publisher, _ = await connect(secured_nats, SCHOOL_1)
    try:
        async with await service_pipeline(secured_nats, sqlite_settings, unique):
            command = school_commands("school-1")[0]
            answer = await CommandPublisher(publisher.jetstream(), nc=publisher).request(command)
        assert answer["command_id"] == command["command_id"]
        assert answer["status"] in {"recorded", "rejected"}
    finally:
        await publisher.close()


async def test_a_schools_publisher_cannot_publish_into_another_school(
    secured_nats: EmbeddedNats, sqlite_settings: Settings, unique: str
) -> None:
    async with await service_pipeline(secured_nats, sqlite_settings, unique) as pipeline:
        assert pipeline.js is not None
        publisher, violations = await connect(secured_nats, SCHOOL_1)
        try:
            await publisher.publish("sferum.commands.school-2.register-school", b"{}")
            await publisher.publish("sferum.commands.school-1.register-school", b"{}")
            await publisher.flush()
            await violations.wait("sferum.commands.school-2.register-school")
        finally:
            await publisher.close()
        js = pipeline.js
        # the service may consume (and, with interest retention, remove) school-1's message
        # at once, so count what the stream ever took rather than what it still holds
        await wait_for(lambda: ever_stored(js, "SFERUM_COMMANDS"), 30, "school-1's message")
        await asyncio.sleep(0.5)  # room for a wrongly admitted second message to land
        assert await ever_stored(js, "SFERUM_COMMANDS") == 1  # school-2's never got in


async def test_a_schools_publisher_cannot_purge_or_delete_streams(
    secured_nats: EmbeddedNats, sqlite_settings: Settings, unique: str
) -> None:
    async with await service_pipeline(secured_nats, sqlite_settings, unique) as pipeline:
        assert pipeline.js is not None
        await pipeline.js.publish("sferum.events.school-1.Probe.Kept", b"{}")
        publisher, violations = await connect(secured_nats, SCHOOL_1)
        try:
            js = publisher.jetstream(timeout=1.0)
            for attack in (
                js.purge_stream("SFERUM_EVENTS"),
                js.delete_stream("SFERUM_EVENTS"),
                js.delete_stream("SFERUM_COMMANDS"),
                js.delete_msg("SFERUM_EVENTS", 1),
            ):
                with pytest.raises((nats.errors.Error, TimeoutError)):
                    await attack
            await violations.wait("$JS.API.STREAM.PURGE.SFERUM_EVENTS")
            await violations.wait("$JS.API.STREAM.DELETE.SFERUM_COMMANDS")
        finally:
            await publisher.close()
        info = await pipeline.js.stream_info("SFERUM_EVENTS")
        assert info.state.messages >= 1
        assert (await pipeline.js.stream_info("SFERUM_COMMANDS")).config.name


async def test_neither_a_publisher_nor_a_reader_can_write_to_the_outbound_stream(
    secured_nats: EmbeddedNats, sqlite_settings: Settings, unique: str
) -> None:
    async with await service_pipeline(secured_nats, sqlite_settings, unique) as pipeline:
        assert pipeline.js is not None
        before = (await pipeline.js.stream_info("SFERUM_EVENTS")).state.messages
        for user in (SCHOOL_1, READER):
            nc, violations = await connect(secured_nats, user)
            try:
                await nc.publish(
                    "sferum.events.school-1.School.Registered",
                    b'{"forged": true}',
                    headers={"Nats-Msg-Id": "999999"},
                )
                await nc.publish("sferum.rejections.school-1.register-school", b"{}")
                await nc.flush()
                await violations.wait("sferum.events.school-1.School.Registered")
                await violations.wait("sferum.rejections.school-1.register-school")
            finally:
                await nc.close()
        await asyncio.sleep(0)
        after = await pipeline.js.stream_info("SFERUM_EVENTS")
        assert after.state.messages == before


async def test_a_reader_reads_the_outbound_stream_through_its_durable_consumer(
    secured_nats: EmbeddedNats, sqlite_settings: Settings, unique: str
) -> None:
    async with await service_pipeline(secured_nats, sqlite_settings, unique) as pipeline:
        js = pipeline.js
        assert js is not None
        await js.publish("sferum.events.school-1.Probe.Read", b'{"probe": 1}')
        await js.add_consumer(
            "SFERUM_EVENTS",
            ConsumerConfig(durable_name="events-reader", ack_policy=AckPolicy.EXPLICIT),
        )
        reader, violations = await connect(secured_nats, READER)
        try:
            subscription = await reader.jetstream().pull_subscribe_bind(
                "events-reader", "SFERUM_EVENTS"
            )
            messages = await subscription.fetch(1, timeout=5)
            assert messages[0].data == b'{"probe": 1}'
            await messages[0].ack()
            with pytest.raises((nats.errors.Error, TimeoutError)):
                await reader.jetstream(timeout=1.0).purge_stream("SFERUM_EVENTS")
            await violations.wait("$JS.API.STREAM.PURGE.SFERUM_EVENTS")
        finally:
            await reader.close()
