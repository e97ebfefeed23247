"""Which instance consumes which partition: heartbeats and leases in a JetStream KV bucket.

Every instance writes a heartbeat ``members.<instance>`` every ``rebalance_interval``; the
bucket's TTL (``lease_ttl``) removes the heartbeat of an instance that stopped. The live
instances, sorted by name, share the partitions round-robin (partition ``p`` belongs to
``members[p % len(members)]``), so two instances of eight partitions take four each.

An instance consumes a partition only while it holds its lease ``leases.p<n>``: created
only if absent (``kv.create``), renewed with the revision it last wrote (``kv.update``),
deleted when it hands the partition over. So a partition is consumed by one instance at a
time, also while instances come and go: the new owner waits until the old one has
released the lease, or until it expired after a crash. An instance restarted under the
same name (a fixed ``INSTANCE_ID``, which must then name one running process) takes back
at once a lease that still names it: the crashed process cannot be using it.

Resources that must run once in the whole deployment (the outbound relay, the view
followers, the sealer) use the same leases without the round-robin: the first instance to
take ``leases.relay`` (``leases.views``, ``leases.sealer``) keeps it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable

import structlog
from nats.errors import Error as NatsError
from nats.js.errors import Error as JsError
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError, NoKeysError
from nats.js.kv import KeyValue

log = structlog.get_logger("sferum_audit.coordination")
# nats-py warns on every ``keys(filters=...)`` that servers before 2.10 ignore filters.
logging.getLogger("nats.js.kv").setLevel(logging.ERROR)

Starter = Callable[[str], Awaitable[None]]


def safe_key(name: str) -> str:
    return re.sub(r"[^-_a-zA-Z0-9]", "-", name)


class Lease:
    """One named lease held by this instance (or not)."""

    def __init__(self, kv: KeyValue, name: str, owner: str) -> None:
        self.kv = kv
        self.key = f"leases.{name}"
        self.owner = owner.encode()
        self.revision: int | None = None

    @property
    def held(self) -> bool:
        return self.revision is not None

    async def acquire(self) -> bool:
        try:
            self.revision = await self.kv.create(self.key, self.owner)
        except KeyWrongLastSequenceError:
            return await self.reclaim()
        except (JsError, NatsError, TimeoutError) as error:
            log.warning("lease not acquired", lease=self.key, error=repr(error))
            return False
        return True

    async def reclaim(self) -> bool:
        """Takes back a lease this instance's name still holds: an instance restarted with
        the same ``INSTANCE_ID`` after a crash does not wait for its own lease to expire."""
        try:
            entry = await self.kv.get(self.key)
            if entry.value != self.owner or entry.revision is None:
                return False
            self.revision = await self.kv.update(self.key, self.owner, last=entry.revision)
        except (KeyNotFoundError, KeyWrongLastSequenceError):
            return False
        except (JsError, NatsError, TimeoutError) as error:
            log.warning("lease not reclaimed", lease=self.key, error=repr(error))
            return False
        log.info("own lease taken back", lease=self.key)
        return True

    async def renew(self) -> bool:
        """``False`` if the lease was lost (expired and taken, or deleted)."""
        if self.revision is None:
            return False
        try:
            self.revision = await self.kv.update(self.key, self.owner, last=self.revision)
        except KeyWrongLastSequenceError:
            self.revision = None
            return False
        except (JsError, NatsError, TimeoutError) as error:
            # NATS unreachable: keep the claim; if it expired meanwhile, the next renewal
            # fails on the revision and the partition stops.
            log.warning("lease not renewed", lease=self.key, error=repr(error))
        return True

    async def release(self) -> None:
        if self.revision is None:
            return
        try:
            await self.kv.delete(self.key, last=self.revision)
        except (JsError, NatsError, TimeoutError) as error:
            log.warning("lease not released; it will expire", lease=self.key, error=repr(error))
        self.revision = None


class Coordinator:
    """Keeps this instance's share of the partitions (and the singleton leases) running."""

    def __init__(
        self,
        kv: KeyValue,
        instance_id: str,
        partitions: int,
        *,
        start: Starter,
        stop: Starter,
        singletons: tuple[str, ...] = (),
        interval: float = 2.0,
        on_change: Callable[[int], None] | None = None,
    ) -> None:
        self.kv = kv
        self.instance = safe_key(instance_id)
        self.partitions = partitions
        self._start = start
        self._stop = stop
        self.interval = interval
        self.on_change = on_change
        self.leases = {
            name: Lease(kv, name, self.instance)
            for name in [f"p{p}" for p in range(partitions)] + list(singletons)
        }
        self.singletons = singletons
        self.running: set[str] = set()
        self._members: list[str] = [self.instance]

    @property
    def owned_partitions(self) -> list[int]:
        return sorted(int(name[1:]) for name in self.running if name not in self.singletons)

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            started = time.monotonic()
            try:
                await self.step()
            except Exception:
                log.exception("rebalancing failed; trying again")
            remaining = self.interval - (time.monotonic() - started)
            try:
                await asyncio.wait_for(stopping.wait(), timeout=max(remaining, 0.05))
            except TimeoutError:
                continue

    async def step(self) -> None:
        await self._heartbeat()
        self._members = await self._live_members()
        wanted = self.wanted()
        for name in sorted(self.running - wanted):
            await self._give_up(name)
        for name in sorted(self.running & wanted):
            if not await self.leases[name].renew():
                log.warning("lease lost; stopping", lease=name)
                self.running.discard(name)
                await self._stop(name)
        for name in sorted(wanted - self.running):
            if await self.leases[name].acquire():
                self.running.add(name)
                log.info("lease taken", lease=name, instance=self.instance)
                await self._start(name)
        if self.on_change is not None:
            self.on_change(len(self.owned_partitions))

    def wanted(self) -> set[str]:
        members = self._members or [self.instance]
        index = members.index(self.instance) if self.instance in members else 0
        wanted = {f"p{p}" for p in range(self.partitions) if p % len(members) == index}
        return wanted | set(self.singletons)

    async def _give_up(self, name: str) -> None:
        log.info("handing over", lease=name, instance=self.instance)
        self.running.discard(name)
        await self._stop(name)
        await self.leases[name].release()

    async def release_all(self) -> None:
        for name in sorted(self.running):
            await self._give_up(name)
        with contextlib.suppress(JsError, NatsError, TimeoutError):
            await self.kv.delete(f"members.{self.instance}")

    async def _heartbeat(self) -> None:
        await self.kv.put(f"members.{self.instance}", str(time.time()).encode())

    async def _live_members(self) -> list[str]:
        try:
            keys = await self.kv.keys(filters=["members."])
        except (NoKeysError, KeyNotFoundError):
            keys = []
        members = sorted({key.removeprefix("members.") for key in keys} | {self.instance})
        return members
