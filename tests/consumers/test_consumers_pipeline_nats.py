"""The pipeline against a real nats-server: exactly once, in order, through faults.

Each test starts its own nats-server (``nats_server`` fixture) and runs one or two
``Pipeline`` instances in the test's event loop, with short timers. After every fault the
test counts what the store holds: each command recorded exactly once, each rejected or
dead one kept with its reason, and every recorded event on the events stream exactly once
and in order.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from consumer_helpers import (
    assert_relayed_exactly_once,
    break_handler,
    events_on_stream,
    fast_options,
    head,
    receipt_order,
    receipts,
    rejections,
    wait_for,
)
from eventsourcing.persistence import OperationalError
from nats.aio.client import Client
from source_signing import ProvisioningSigner

from sferum_audit.application.handlers import HANDLERS
from sferum_audit.application.settings import Settings
from sferum_audit.consumers.command_mix import school_commands
from sferum_audit.consumers.dead_letters import dead_letters, retry
from sferum_audit.consumers.embedded_nats import EmbeddedNats
from sferum_audit.consumers.publisher import CommandPublisher
from sferum_audit.consumers.service import Pipeline
from sferum_audit.consumers.subjects import partition_of

pytestmark = pytest.mark.nats

SCHOOLS = 6


def mix(unique: str, schools: int = SCHOOLS, moderations: int = 8) -> list[dict[str, Any]]:
    """Several schools' commands, interleaved as a platform would send them."""
    per_school = [
        school_commands(f"s{n}-{unique}", students=3, moderations=moderations)
        for n in range(schools)
    ]
    out: list[dict[str, Any]] = []
    for row in range(max(len(s) for s in per_school)):
        out += [s[row] for s in per_school if row < len(s)]
    return out


def publisher(nc: Client, settings: Settings | None = None) -> CommandPublisher:
    """A publisher that signs as the schools' local source (provisioned on first use) on
    the store of ``settings``; without settings, unsigned."""
    signer = ProvisioningSigner(settings) if settings is not None else None
    return CommandPublisher(nc.jetstream(), nc=nc, signer=signer)


def settled(pipeline: Pipeline) -> int:
    assert pipeline.processor is not None
    return pipeline.processor.settled


async def test_commands_are_recorded_once_relayed_in_order_and_answered(
    nats_server: EmbeddedNats, client: Client, settings: Settings, unique: str
) -> None:
    options = fast_options(nats_server.url, f"a-{unique}")
    commands = mix(unique)
    async with Pipeline(settings, options, views=False) as pipeline:
        assert pipeline.app is not None
        await publisher(client, settings).publish_many(commands)
        bad = await publisher(client, settings).publish_raw(
            f"s0-{unique}", "remove-content", b"{oops", msg_id=f"bad-{unique}"
        )
        assert not bad.duplicate
        follow_up = dict(commands[0], command_id=f"again-{unique}", name="another name")
        answer = await publisher(client, settings).request(follow_up)
        assert answer["status"] == "rejected"
        assert answer["error"]["code"] == "school-already-exists"
        late = school_commands(f"late-{unique}")[0]
        answer = await publisher(client, settings).request(late)
        assert answer["status"] == "recorded"
        assert answer["events"][0]["type"] == "School.Registered"
        await wait_for(lambda: settled(pipeline) >= len(commands) + 3, 60, "every command")
        app = pipeline.app
        assert pipeline.relay is not None
        await wait_for(lambda: pipeline.relay.position >= head(app), 30, "the relay")  # type: ignore[union-attr]
        counts = receipts(app)
        assert set(counts.values()) == {1}
        assert set(counts) == {c["command_id"] for c in commands} | {late["command_id"]}
        kept = {r["command_id"]: r["error_code"] for r in rejections(app)}
        assert kept == {f"bad-{unique}": "invalid-json", f"again-{unique}": "school-already-exists"}
        await assert_relayed_exactly_once(client.jetstream(), options, app)
        messages = await events_on_stream(client.jetstream(), options)
        rejected_subjects = [m.subject for m in messages if ".rejections." in m.subject]
        assert rejected_subjects == [
            f"sferum.rejections.s0-{unique}.remove-content",
            f"sferum.rejections.s0-{unique}.register-school",
        ]


async def test_the_same_command_published_twice_is_recorded_once(
    nats_server: EmbeddedNats, client: Client, sqlite_settings: Settings, unique: str
) -> None:
    options = fast_options(nats_server.url, f"a-{unique}")
    commands = school_commands(f"s-{unique}", students=2, moderations=3)
    pub = publisher(client, sqlite_settings)
    async with Pipeline(sqlite_settings, options, views=False) as pipeline:
        assert pipeline.app is not None
        first = await pub.publish_many(commands)
        again = await pub.publish_many(commands)  # within the duplicate window
        assert not any(ack.duplicate for ack in first)
        assert all(ack.duplicate for ack in again)
        # Beyond the window JetStream no longer knows the id: the store's check answers.
        subject, payload, headers = pub.message(commands[2])
        headers["Nats-Msg-Id"] = f"{commands[2]['command_id']}-after-the-window"
        late = await pub.js.publish(subject, payload, headers=headers)
        assert not late.duplicate
        await wait_for(lambda: settled(pipeline) >= len(commands) + 1, 30, "the commands")
        assert pipeline.processor is not None
        assert pipeline.processor.totals["duplicate"] == 1
        counts = receipts(pipeline.app)
        assert len(counts) == len(commands)
        assert set(counts.values()) == {1}


async def test_two_instances_share_the_partitions_and_keep_each_schools_order(
    nats_server: EmbeddedNats, client: Client, sqlite_settings: Settings, unique: str
) -> None:
    commands = mix(unique, schools=8, moderations=10)
    schools = sorted({c["school_id"] for c in commands})
    assert len({partition_of(s, 4) for s in schools}) > 1
    first = Pipeline(sqlite_settings, fast_options(nats_server.url, f"a-{unique}"), views=False)
    second = Pipeline(sqlite_settings, fast_options(nats_server.url, f"b-{unique}"), views=False)
    await first.start()
    try:
        await second.start()
        try:
            for pipeline in (first, second):
                await wait_for(
                    lambda p=pipeline: len(p.coordinator.owned_partitions) == 2,  # type: ignore[misc,union-attr]
                    15,
                    "two partitions each",
                )
            await publisher(client, sqlite_settings).publish_many(commands)
            await wait_for(
                lambda: settled(first) + settled(second) >= len(commands), 60, "every command"
            )
            assert first.processor is not None
            assert second.processor is not None
            assert first.processor.totals["recorded"] > 0
            assert second.processor.totals["recorded"] > 0
            owned = set(first.coordinator.owned_partitions)  # type: ignore[union-attr]
            owned_b = set(second.coordinator.owned_partitions)  # type: ignore[union-attr]
            assert owned.isdisjoint(owned_b)
            assert owned | owned_b == {0, 1, 2, 3}
        finally:
            await second.stop()
        assert first.app is not None
        order = receipt_order(first.app)
        assert sorted(order) == sorted(c["command_id"] for c in commands)
        for school in schools:
            published = [c["command_id"] for c in commands if c["school_id"] == school]
            recorded = [cid for cid in order if cid.startswith(f"{school}-")]
            assert recorded == published, f"order of {school}"
        # The instance that stays takes over the partitions the other released.
        await wait_for(
            lambda: len(first.coordinator.owned_partitions) == 4,  # type: ignore[union-attr]
            15,
            "the hand-over",
        )
    finally:
        await first.stop()


async def test_a_nats_restart_mid_stream_loses_and_repeats_nothing(
    nats_server: EmbeddedNats, client: Client, sqlite_settings: Settings, unique: str
) -> None:
    options = fast_options(nats_server.url, f"a-{unique}")
    commands = mix(unique, moderations=12)
    half = len(commands) // 2
    pub = publisher(client, sqlite_settings)
    async with Pipeline(sqlite_settings, options, views=False) as pipeline:
        assert pipeline.app is not None
        await pub.publish_many(commands[:half])
        await wait_for(lambda: settled(pipeline) >= half // 3, 30, "a first part")
        nats_server.kill()
        await asyncio.sleep(0.5)
        await nats_server.start()
        await wait_for(lambda: client.is_connected, 15, "the client to reconnect")
        await pub.publish_many(commands[half:])
        app = pipeline.app
        await wait_for(
            lambda: len(receipts(app)) >= len(commands), 60, "every command after the restart"
        )
        assert pipeline.relay is not None
        await wait_for(lambda: pipeline.relay.position >= head(app), 30, "the relay")  # type: ignore[union-attr]
        counts = receipts(app)
        assert set(counts.values()) == {1}
        assert len(counts) == len(commands)
        order = receipt_order(app)
        for school in {c["school_id"] for c in commands}:
            published = [c["command_id"] for c in commands if c["school_id"] == school]
            assert [cid for cid in order if cid.startswith(f"{school}-")] == published
        await assert_relayed_exactly_once(client.jetstream(), options, app)


async def test_a_store_outage_is_retried_with_backoff_then_dead_lettered_and_retried(
    nats_server: EmbeddedNats,
    client: Client,
    postgres_settings: Settings,
    unique: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PostgreSQL unavailable: first for two deliveries (recovers on its own), then for
    longer than max_deliveries (dead letters, kept, and put back with ``retry``)."""
    options = fast_options(nats_server.url, f"a-{unique}", max_deliveries=3)
    commands = school_commands(f"s-{unique}", students=2, moderations=4)
    async with Pipeline(postgres_settings, options, views=False) as pipeline:
        app = pipeline.app
        assert app is not None
        original = app.handle_batch
        outage = {"left": 2}

        def flaky(batch: Any) -> Any:
            if outage["left"] > 0:
                outage["left"] -= 1
                raise OperationalError("could not connect to server: Connection refused")
            return original(batch)

        monkeypatch.setattr(app, "handle_batch", flaky)
        await publisher(client, postgres_settings).publish_many(commands)
        await wait_for(lambda: len(receipts(app)) == len(commands), 30, "recovery")
        assert pipeline.processor is not None
        # The receipts are readable at the commit; the batch is counted once it is acked.
        await wait_for(
            lambda: pipeline.processor.settled == len(commands),  # type: ignore[union-attr]
            30,
            "the batch counted",
        )
        assert pipeline.processor.totals["retried"] >= 1
        assert pipeline.processor.totals["dead_lettered"] == 0

        outage["left"] = 10_000
        more = school_commands(f"t-{unique}", students=1, moderations=1)
        await publisher(client, postgres_settings).publish_many(more)
        await wait_for(
            lambda: pipeline.processor.totals["dead_lettered"] == len(more),  # type: ignore[union-attr]
            30,
            "the dead letters",
        )
        js = client.jetstream()
        letters = await dead_letters(js, options)
        assert [letter.command_id for letter in letters] == [c["command_id"] for c in more]
        assert all("Connection refused" in letter.error for letter in letters)
        assert all(letter.deliveries == "3" for letter in letters)
        assert json.loads(letters[0].data) == more[0]

        outage["left"] = 0
        await retry(js, options, letters)
        assert await dead_letters(js, options) == []
        await wait_for(
            lambda: len(receipts(app)) == len(commands) + len(more), 30, "the retried commands"
        )
        assert set(receipts(app).values()) == {1}


async def test_a_poison_message_is_dead_lettered_with_its_reason_and_the_rest_recorded(
    nats_server: EmbeddedNats,
    client: Client,
    sqlite_settings: Settings,
    unique: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    options = fast_options(nats_server.url, f"a-{unique}", max_deliveries=2)
    commands = school_commands(f"s-{unique}", students=2, moderations=6)
    poison = next(c for c in commands if c["type"] == "warn-about-liability")
    original = break_handler(
        monkeypatch, "warn-about-liability", {poison["command_id"]}, "a bug this command triggers"
    )
    async with Pipeline(sqlite_settings, options, views=False) as pipeline:
        assert pipeline.app is not None
        await publisher(client, sqlite_settings).publish_many(commands)
        await publisher(client).publish_raw(f"s-{unique}", "block-member", b"\x00\x01")
        await wait_for(
            lambda: pipeline.processor.totals["dead_lettered"] == 1,  # type: ignore[union-attr]
            30,
            "the poison message",
        )
        await wait_for(
            lambda: len(receipts(pipeline.app)) == len(commands) - 1,  # type: ignore[arg-type]
            30,
            "the others",
        )
        await wait_for(
            lambda: len(rejections(pipeline.app)) == 1,  # type: ignore[arg-type]
            30,
            "the bad bytes refused (a batch of their own: batches close when the stream is dry)",
        )
        counts = receipts(pipeline.app)
        assert poison["command_id"] not in counts
        assert set(counts.values()) == {1}
        [letter] = await dead_letters(client.jetstream(), options)
        assert letter.command_id == poison["command_id"]
        assert "a bug this command triggers" in letter.error
        [kept] = rejections(pipeline.app)
        assert kept["error_code"] == "invalid-json"
        assert kept["school_id"] == f"s-{unique}"

        monkeypatch.setitem(HANDLERS, "warn-about-liability", original)  # the fix
        await retry(client.jetstream(), options, [letter])
        await wait_for(
            lambda: poison["command_id"] in receipts(pipeline.app),  # type: ignore[arg-type]
            30,
            "the fixed poison",
        )
        assert set(receipts(pipeline.app).values()) == {1}


async def test_the_relay_resumes_after_a_stop_without_gap_or_duplicate(
    nats_server: EmbeddedNats, client: Client, sqlite_settings: Settings, unique: str
) -> None:
    options = fast_options(nats_server.url, f"a-{unique}", relay_batch_size=7)
    commands = mix(unique, schools=3)
    async with Pipeline(sqlite_settings, options, views=False) as pipeline:
        assert pipeline.app is not None
        await publisher(client, sqlite_settings).publish_many(commands)
        await wait_for(lambda: settled(pipeline) >= len(commands), 30, "every command")
        app = pipeline.app
        assert pipeline.relay is not None
        await wait_for(lambda: pipeline.relay.position >= 20, 30, "part of the relay")  # type: ignore[union-attr]
    # Stopped part-way (the relay's position may lag the stream; the stream decides).
    options = options.model_copy(update={"instance_id": f"b-{unique}", "relay_batch_size": 500})
    async with Pipeline(sqlite_settings, options, views=False) as pipeline:
        app = pipeline.app
        assert app is not None
        await wait_for(lambda: pipeline.relay.position >= head(app), 30, "the rest")  # type: ignore[union-attr]
        await assert_relayed_exactly_once(client.jetstream(), options, app)


async def test_the_stream_partitions_schools_like_partition_of(
    nats_server: EmbeddedNats, client: Client, unique: str
) -> None:
    from sferum_audit.consumers.topology import ensure_topology

    options = fast_options(nats_server.url, f"a-{unique}", partitions=8)
    js = client.jetstream()
    await ensure_topology(js, options)
    schools = [f"sch-{n}-{unique}" for n in range(40)] + ["a.b", "x*y"]
    for school in schools:
        ack = await publisher(client).publish(school_commands(school)[0])
        stored = await js.get_msg(options.commands_stream, ack.seq)
        assert stored.subject is not None
        tokens = stored.subject.split(".")
        assert tokens[:2] == ["sferum", "ingest"]
        assert int(tokens[2]) == partition_of(school, 8), school


async def test_a_lease_bucket_made_with_another_ttl_gets_the_configured_one(
    nats_server: EmbeddedNats, client: Client, unique: str
) -> None:
    from sferum_audit.consumers.topology import ensure_topology, leases_bucket

    js = client.jetstream()
    old = fast_options(nats_server.url, f"a-{unique}", lease_ttl=10.0)
    await ensure_topology(js, old)
    await ensure_topology(js, old.model_copy(update={"lease_ttl": 5.0}))
    info = await js.stream_info(f"KV_{leases_bucket(old)}")
    assert info.config.max_age == pytest.approx(5.0)
