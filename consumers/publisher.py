"""Publishing commands to the ingest: the helper publishers use (a school's example publisher).

It sends each command to ``<prefix>.commands.<school_id>.<command-type>`` with
``Nats-Msg-Id`` = ``<command_id>:<the first 32 hex digits of the SHA-256 of the exact
payload bytes>`` (``message_id``). JetStream drops a repeat of the same bytes within its
duplicate window, which the store would answer as a duplicate anyway; a resent command id
with different content has another message id, so it always reaches the store and is
refused there as ``command-id-reused`` (and kept), whenever it comes.

Each command carries the school's source signature over the exact payload
(``Sferum-Source``, ``Sferum-Timestamp``, ``Sferum-Signature``; see
``application.authentication``): a school's publisher holds its source's private key
(``SourceSigner``), the embedded demo signs as this installation
(``application.local_sources.LocalSigner``). Unsigned commands are refused by the service.

``request`` also asks for an answer: the reply subject travels in the ``reply_to`` header
(the message's own reply subject gets the stream's PubAck), and the answer is the
command's result as JSON.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import PubAck
from pydantic import BaseModel

from sferum_audit.application.authentication import Signature, sign
from sferum_audit.consumers import subjects as hdr
from sferum_audit.consumers.subjects import Subjects


def message_id(command_id: str, payload: bytes) -> str:
    """The ``Nats-Msg-Id`` of a command: its id and a digest of its exact bytes."""
    return f"{command_id}:{hashlib.sha256(payload).hexdigest()[:32]}"


def command_dict(command: Mapping[str, Any] | BaseModel | str | bytes) -> dict[str, Any]:
    if isinstance(command, BaseModel):
        return command.model_dump(mode="json", exclude_none=True)
    if isinstance(command, str | bytes):
        data = json.loads(command)
        if not isinstance(data, dict):
            raise ValueError("a command is a JSON object")
        return data
    return dict(command)


class CommandSigner(Protocol):
    """Who signs the commands a publisher sends."""

    def signature(self, body: bytes, school_id: str, command_type: str) -> Signature: ...


@dataclass(frozen=True)
class SourceSigner:
    """A school's source: its registered id and the private half of its key."""

    source_id: str
    key: Ed25519PrivateKey

    def signature(self, body: bytes, school_id: str, command_type: str) -> Signature:
        return sign(self.source_id, self.key, body, datetime.now(UTC))


class CommandPublisher:
    """Publishes commands (dicts, pydantic commands or JSON text) with their id as msg id,
    signed by ``signer`` (unsigned without one: the service refuses those)."""

    def __init__(
        self,
        js: JetStreamContext,
        *,
        prefix: str = "sferum",
        stream: str | None = None,
        nc: Client | None = None,
        signer: CommandSigner | None = None,
    ) -> None:
        self.js = js
        self.nc = nc
        self.subjects = Subjects(prefix)
        self.stream = stream
        self.signer = signer

    def message(
        self, command: Mapping[str, Any] | BaseModel | str | bytes
    ) -> tuple[str, bytes, dict[str, str]]:
        """Subject, payload and headers of one command."""
        data = command_dict(command)
        subject = self.subjects.command(str(data["school_id"]), str(data["type"]))
        payload = (
            command
            if isinstance(command, bytes)
            else (command.encode() if isinstance(command, str) else json.dumps(data).encode())
        )
        headers = {hdr.MSG_ID: message_id(str(data["command_id"]), payload)}
        if data.get("correlation_id"):
            headers[hdr.CORRELATION_ID] = str(data["correlation_id"])
        if self.signer is not None:
            signature = self.signer.signature(payload, str(data["school_id"]), str(data["type"]))
            headers.update(signature.as_headers())
        return subject, payload, headers

    async def publish(
        self,
        command: Mapping[str, Any] | BaseModel | str | bytes,
        *,
        reply_to: str | None = None,
        timeout: float = 5.0,
    ) -> PubAck:
        """Publishes one command and waits for JetStream's PubAck (``duplicate`` if repeated)."""
        subject, payload, headers = self.message(command)
        if reply_to:
            headers[hdr.REPLY_TO] = reply_to
        return await self.js.publish(
            subject, payload, headers=headers, stream=self.stream, timeout=timeout
        )

    async def publish_raw(
        self,
        school_id: str,
        command_type: str,
        payload: bytes,
        *,
        msg_id: str | None = None,
        reply_to: str | None = None,
        signature: Signature | None = None,
    ) -> PubAck:
        """Publishes bytes as they are (for tests and tools that forward foreign input),
        with the signature given, if any."""
        headers: dict[str, str] = signature.as_headers() if signature else {}
        if msg_id:
            headers[hdr.MSG_ID] = msg_id
        if reply_to:
            headers[hdr.REPLY_TO] = reply_to
        return await self.js.publish(
            self.subjects.command(school_id, command_type),
            payload,
            headers=headers or None,
            stream=self.stream,
        )

    async def publish_many(
        self,
        commands: Iterable[Mapping[str, Any] | BaseModel | str | bytes],
        *,
        window: int = 4000,
        timeout: float = 30.0,
    ) -> list[PubAck]:
        """Publishes many commands with up to ``window`` PubAcks outstanding, in order;
        ``TimeoutError`` if PubAcks stop coming (publish again: the ids make it safe)."""
        acks: list[PubAck] = []
        pending: list[asyncio.Future[PubAck]] = []
        for command in commands:
            subject, payload, headers = self.message(command)
            pending.append(await self.js.publish_async(subject, payload, headers=headers))
            if len(pending) >= window:
                acks.extend(await asyncio.wait_for(asyncio.gather(*pending), timeout))
                pending = []
        acks.extend(await asyncio.wait_for(asyncio.gather(*pending), timeout))
        return acks

    async def request(
        self,
        command: Mapping[str, Any] | BaseModel | str | bytes,
        *,
        timeout: float = 10.0,
    ) -> dict[str, Any]:
        """Publishes one command and waits for its answer: ``{"command_id", "status":
        "recorded" | "duplicate" | "rejected" | "dead-lettered", "events" | "error"}``.

        A repeat of the same bytes that JetStream drops within its duplicate window never
        reaches the ingest; it is answered here from the PubAck (``duplicate``, with
        ``stream_sequence`` and no events)."""
        nc = self.nc or self.js._nc
        inbox = nc.new_inbox()
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        subscription = await nc.subscribe(inbox, future=future, max_msgs=1)
        try:
            ack = await self.publish(command, reply_to=inbox, timeout=timeout)
            if ack.duplicate:
                # JetStream dropped the repeat: the ingest never sees it, so answer here.
                return {
                    "command_id": command_dict(command).get("command_id"),
                    "status": "duplicate",
                    "stream_sequence": ack.seq,
                    "events": [],
                }
            msg = await asyncio.wait_for(future, timeout=timeout)
        finally:
            await subscription.unsubscribe()
        answer: dict[str, Any] = json.loads(msg.data)
        return answer
