"""One relay, one sealer and one set of view followers per deployment, however many
instances run: each runs under a singleton lease, and moves when its holder stops."""

from __future__ import annotations

from collections.abc import AsyncIterator

import nats
import pytest
from consumer_helpers import fast_options, wait_for
from nats.aio.client import Client

from sferum_audit.application.settings import Settings
from sferum_audit.consumers.command_mix import school_commands
from sferum_audit.consumers.embedded_nats import EmbeddedNats
from sferum_audit.consumers.publisher import CommandPublisher
from sferum_audit.consumers.service import RELAY, SEALER, VIEWS, Pipeline

pytestmark = pytest.mark.nats

SINGLETONS = (RELAY, VIEWS, SEALER)


@pytest.fixture
async def client(nats_server: EmbeddedNats) -> AsyncIterator[Client]:
    nc = await nats.connect(nats_server.url)
    yield nc
    await nc.close()


def state(pipeline: Pipeline, name: str) -> tuple[bool, bool]:
    """Whether ``pipeline`` holds the singleton's lease, and whether its work runs."""
    assert pipeline.coordinator is not None
    held = name in pipeline.coordinator.running
    working = {
        RELAY: pipeline._relay_task is not None,
        VIEWS: pipeline.follower is not None and pipeline.follower.running,
        SEALER: pipeline.sealer is not None,
    }[name]
    return held, working


def runs(pipeline: Pipeline, name: str) -> bool:
    """Holds the lease and runs the work (both or neither, once a start or stop is done)."""
    return state(pipeline, name) == (True, True)


def assert_settled(*pipelines: Pipeline) -> None:
    """No singleton is half started or half stopped: lease and work go together."""
    for pipeline in pipelines:
        for name in SINGLETONS:
            held, working = state(pipeline, name)
            assert held == working, f"{name}: lease {held}, running {working}"


async def test_two_instances_run_each_singleton_once_and_hand_it_over_on_stop(
    nats_server: EmbeddedNats, client: Client, sqlite_settings: Settings, unique: str
) -> None:
    first = Pipeline(sqlite_settings, fast_options(nats_server.url, f"a-{unique}"), views=True)
    second = Pipeline(sqlite_settings, fast_options(nats_server.url, f"b-{unique}"), views=True)
    await first.start()
    first_running = True
    try:
        await second.start()
        try:
            await wait_for(
                lambda: all(
                    len(p.coordinator.owned_partitions) == 2  # type: ignore[union-attr]
                    for p in (first, second)
                ),
                15,
                "the partitions shared",
            )
            assert_settled(first, second)
            for name in SINGLETONS:
                assert [runs(first, name), runs(second, name)].count(True) == 1, name
            # The first instance took every singleton; the views follow both instances' work.
            assert all(runs(first, name) for name in SINGLETONS)
            commands = school_commands(f"s-{unique}", students=2, moderations=3)
            await CommandPublisher(client.jetstream(), nc=client).publish_many(commands)
            follower = first.follower
            assert follower is not None
            await wait_for(
                lambda: min(follower.runner.positions().values()) >= follower.runner.head() > 0,
                30,
                "the views to follow the log",
            )
        finally:
            await second.stop()
        assert_settled(first)
        for name in SINGLETONS:  # the second held none, so the first still holds them all
            assert runs(first, name)
        second = Pipeline(sqlite_settings, fast_options(nats_server.url, f"c-{unique}"), views=True)
        await second.start()
        try:
            await first.stop()  # hands every singleton over
            first_running = False
            await wait_for(
                lambda: all(runs(second, name) for name in SINGLETONS), 15, "the hand-over"
            )
            assert_settled(second)
        finally:
            await second.stop()
    finally:
        if first_running:
            await first.stop()
