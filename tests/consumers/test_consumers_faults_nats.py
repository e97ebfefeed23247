"""Malformed messages and faults among a school's own commands, on a real nats-server.

Every message published ends in exactly one of recorded, rejected (kept with a code) or
dead-lettered; each school's commands are recorded in the order the stream holds them;
the events stream holds every position once, with no gap, also when a refused message was
as large as NATS allows.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from consumer_helpers import (
    assert_relayed_exactly_once,
    break_handler,
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

from sferum_audit.application.rejections import KEPT_PAYLOAD_BYTES
from sferum_audit.application.settings import Settings
from sferum_audit.consumers.command_mix import school_commands
from sferum_audit.consumers.dead_letters import dead_letters
from sferum_audit.consumers.embedded_nats import EmbeddedNats
from sferum_audit.consumers.publisher import CommandPublisher
from sferum_audit.consumers.service import Pipeline

pytestmark = pytest.mark.nats


def malformed_kinds(other_school: dict[str, Any], max_payload: int) -> list[tuple[bytes, str]]:
    """(payload, the code it is refused with) of every kind of malformed message; two are
    as large as NATS lets a message be (headers included)."""
    at_the_limit = max_payload - 1024
    filler = b'{"command_id": "big", "reason": "' + b"x" * at_the_limit
    return [
        (b"[" * 10_000 + b"]" * 10_000, "command-too-deep"),
        (b'{"a": ' * 1_000 + b"1" + b"}" * 1_000, "command-too-deep"),
        (b'{"command_id": "n", "x": ' + b"9" * 5_000 + b"}", "number-too-long"),
        (filler[: at_the_limit - 2] + b'"}', "command-too-large"),
        (bytes(range(128, 256)) * (at_the_limit // 128), "command-too-large"),
        (b"{oops", "invalid-json"),
        (b"\xff\xfe\xfd", "invalid-json"),
        (b'{"command_id": "half", "type": "remove-content"}', "invalid-command"),
        (json.dumps(other_school).encode(), "subject-mismatch"),
    ]


async def test_malformed_messages_a_poison_and_a_reused_id_cost_no_other_command_its_place(
    nats_server: EmbeddedNats,
    client: Client,
    sqlite_settings: Settings,
    unique: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    options = fast_options(nats_server.url, f"a-{unique}", max_deliveries=2)
    school = f"s-{unique}"
    valid = school_commands(school, students=3, moderations=8)
    neighbour = school_commands(f"n-{unique}", students=2, moderations=4)
    poison = next(c for c in valid if c["type"] == "warn-about-liability")
    reused = next(c for c in valid if c["type"] == "remove-content")
    break_handler(
        monkeypatch, "warn-about-liability", {poison["command_id"]}, "a bug this command triggers"
    )
    kinds = malformed_kinds(neighbour[0], client.max_payload)
    signer = ProvisioningSigner(sqlite_settings)
    pub = CommandPublisher(client.jetstream(), nc=client, signer=signer)
    async with Pipeline(sqlite_settings, options, views=False) as pipeline:
        app = pipeline.app
        assert app is not None
        assert len(neighbour) <= len(valid)
        assert len(kinds) <= len(valid)
        # The malformed messages travel on the school's own subject, between its commands.
        for n, command in enumerate(valid):
            await pub.publish(command)
            if n < len(neighbour):
                await pub.publish(neighbour[n])
            if n < len(kinds):
                await pub.publish_raw(school, "remove-content", kinds[n][0], msg_id=f"m{n}")
        published = len(valid) + len(neighbour) + len(kinds)
        changed = dict(reused, reason="the same id, other content")
        assert not (await pub.publish(changed)).duplicate  # not dropped by JetStream
        published += 1

        def settled() -> int:
            letters = pipeline.processor.totals["dead_lettered"]  # type: ignore[union-attr]
            return len(receipts(app)) + len(rejections(app)) + letters

        await wait_for(lambda: settled() >= published, 60, "every message settled")
        assert pipeline.relay is not None
        await wait_for(lambda: pipeline.relay.position >= head(app), 30, "the relay")  # type: ignore[union-attr]

        counts = receipts(app)
        kept = rejections(app)
        letters = await dead_letters(client.jetstream(), options)
        assert len(counts) + len(kept) + len(letters) == published
        assert set(counts.values()) == {1}
        assert [letter.command_id for letter in letters] == [poison["command_id"]]
        assert Counter(k["error_code"] for k in kept) == Counter(
            [code for _, code in kinds] + ["command-id-reused"]
        )
        order = receipt_order(app)
        for commands in (valid, neighbour):
            expected = [c["command_id"] for c in commands if c is not poison]
            prefix = commands[0]["school_id"] + "-"
            assert [cid for cid in order if cid.startswith(prefix)] == expected
        large = [k for k in kept if k["payload_size"] > KEPT_PAYLOAD_BYTES]
        assert len(large) == 2
        assert all(k["payload_truncated"] for k in large)
        await assert_relayed_exactly_once(client.jetstream(), options, app)


async def test_a_flaky_store_never_lets_a_newer_command_of_a_school_overtake_an_older_one(
    nats_server: EmbeddedNats,
    client: Client,
    settings: Settings,
    unique: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every third batch fails as if PostgreSQL dropped the connection; the retried
    commands must still be recorded before every later command of their school."""
    options = fast_options(
        nats_server.url, f"a-{unique}", batch_size=7, backoff=[0.05, 0.2], max_deliveries=50
    )
    schools = [school_commands(f"s{n}-{unique}", students=2, moderations=6) for n in range(4)]
    sent = [row[i] for i in range(max(map(len, schools))) for row in schools if i < len(row)]
    async with Pipeline(settings, options, views=False) as pipeline:
        app = pipeline.app
        assert app is not None
        original = app.handle_batch
        calls = {"n": 0}

        def flaky(batch: Any) -> Any:
            calls["n"] += 1
            if calls["n"] % 3 == 0:
                raise OperationalError("server closed the connection unexpectedly")
            return original(batch)

        monkeypatch.setattr(app, "handle_batch", flaky)
        signer = ProvisioningSigner(settings)
        await CommandPublisher(client.jetstream(), nc=client, signer=signer).publish_many(sent)
        await wait_for(lambda: len(receipts(app)) >= len(sent), 90, "every command")
        assert pipeline.processor is not None
        assert pipeline.processor.totals["retried"] > 0
        assert pipeline.processor.totals["rejected"] == 0
        assert pipeline.processor.totals["dead_lettered"] == 0
        order = receipt_order(app)
        for commands in schools:
            prefix = commands[0]["school_id"] + "-"
            expected = [c["command_id"] for c in commands]
            assert [cid for cid in order if cid.startswith(prefix)] == expected
        assert set(receipts(app).values()) == {1}
        assert pipeline.relay is not None
        await wait_for(lambda: pipeline.relay.position >= head(app), 30, "the relay")  # type: ignore[union-attr]
        await assert_relayed_exactly_once(client.jetstream(), options, app)
