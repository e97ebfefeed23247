"""The NATS subjects and headers of the pipeline, in one place.

Publishers send each command to ``<prefix>.commands.<school_id>.<command-type>`` with the
command id as ``Nats-Msg-Id``. The commands stream stores it under
``<prefix>.ingest.<partition>.<school_id>.<command-type>``: a subject transform on the
stream hashes the school token into a partition (``partition(N, 1)``, FNV-1a), so one
school always lands in one partition and its commands keep their order there.

Outbound, each recorded event goes to ``<prefix>.events.<school_id>.<Aggregate>.<Event>``
and each rejection to ``<prefix>.rejections.<school_id>.<command-type>`` (both in the
events stream, ``Nats-Msg-Id`` = global position); dead letters to
``<prefix>.dead-letters.<school_id>.<command-type>``.

A school id or command type is one subject token: the characters NATS gives a meaning
(``.``, ``*``, ``>``, spaces) and ``%`` are percent-encoded; a token that cannot be known
(a rejection of unreadable bytes, an event with no school) is ``_``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final
from urllib.parse import unquote

import structlog

log = structlog.get_logger("sferum_audit.subjects")

MSG_ID: Final = "Nats-Msg-Id"
# FastStream's convention for JetStream requests: the reply subject travels in a header,
# because the message's own reply subject receives the stream's PubAck.
REPLY_TO: Final = "reply_to"
CORRELATION_ID: Final = "correlation_id"

DLQ_SUBJECT: Final = "Sferum-Original-Subject"
DLQ_STREAM: Final = "Sferum-Original-Stream"
DLQ_SEQUENCE: Final = "Sferum-Original-Sequence"
DLQ_DELIVERIES: Final = "Sferum-Deliveries"
DLQ_ERROR: Final = "Sferum-Error"
DLQ_FAILED_AT: Final = "Sferum-Failed-At"
DLQ_MSG_ID: Final = "Sferum-Original-Msg-Id"

EVENT_POSITION: Final = "Sferum-Position"
EVENT_TYPE: Final = "Sferum-Event-Type"
EVENT_AGGREGATE: Final = "Sferum-Aggregate-Id"

_DIGEST_SUFFIX = re.compile(r":[0-9a-f]{32}$")


def command_id_of_msg_id(msg_id: str) -> str:
    """The command id in a ``Nats-Msg-Id`` (``<command_id>:<digest>``, see
    ``consumers.publisher.message_id``); an id without the digest is returned as it is."""
    return _DIGEST_SUFFIX.sub("", msg_id)


UNKNOWN: Final = "_"
_SPECIAL = {"%": "%25", ".": "%2E", "*": "%2A", ">": "%3E", " ": "%20", "\t": "%09"}


def encode_token(value: str | None) -> str:
    """One subject token for a value (``_`` for none)."""
    if not value:
        return UNKNOWN
    out = []
    for char in value:
        if char in _SPECIAL:
            out.append(_SPECIAL[char])
        elif ord(char) < 33 or ord(char) == 127:
            out.append(f"%{ord(char):02X}")
        else:
            out.append(char)
    return "".join(out)


def decode_token(token: str) -> str | None:
    return None if token == UNKNOWN else unquote(token)


def reply_allowed(subject: str, prefixes: Sequence[str], service_prefix: str = "sferum") -> bool:
    """Whether an answer may go to ``subject`` (a command's ``reply_to`` header).

    Only a plain subject (no wildcard, space or control character, no empty token) that
    starts with one of ``prefixes`` (``SFERUM_AUDIT_REPLY_PREFIXES``, default
    ``_INBOX.``) and lies outside the service's own ``<prefix>.`` subjects and the
    JetStream API (``$JS.``, ``$KV.``) may receive one; any other is logged and ignored,
    so a publisher cannot make the service write onto the events stream or call an API.
    """
    tokens = subject.split(".")
    plain = all(tokens) and not any(
        token in ("*", ">") or any(ord(c) <= 32 or ord(c) == 127 for c in token) for token in tokens
    )
    own = subject.startswith((f"{service_prefix}.", "$"))
    allowed = plain and not own and any(subject.startswith(p) for p in prefixes if p)
    if not allowed:
        log.warning("answer not sent: reply subject not allowed", reply_to=subject[:200])
    return allowed


def fnv1a_32(data: bytes) -> int:
    value = 0x811C9DC5
    for byte in data:
        value ^= byte
        value = (value * 0x01000193) & 0xFFFFFFFF
    return value


def partition_of(school_id: str, partitions: int) -> int:
    """The partition NATS's ``partition(N, 1)`` puts a school into (same FNV-1a hash)."""
    return fnv1a_32(encode_token(school_id).encode()) % partitions


class Subjects:
    """Subject names under one prefix (default ``sferum``)."""

    def __init__(self, prefix: str = "sferum") -> None:
        self.prefix = prefix

    # -- commands -------------------------------------------------------------------------------

    @property
    def commands_wildcard(self) -> str:
        return f"{self.prefix}.commands.*.*"

    def command(self, school_id: str, command_type: str) -> str:
        return f"{self.prefix}.commands.{encode_token(school_id)}.{encode_token(command_type)}"

    def ingest_transform_destination(self, partitions: int) -> str:
        return (
            f"{self.prefix}.ingest.{{{{partition({partitions},1)}}}}"
            ".{{wildcard(1)}}.{{wildcard(2)}}"
        )

    def ingest_partition(self, partition: int) -> str:
        """What the durable consumer of one partition filters on."""
        return f"{self.prefix}.ingest.{partition}.*.*"

    def split_stored(self, subject: str) -> tuple[str | None, str | None]:
        """(school id, command type) from a stored or published command subject."""
        tokens = subject.split(".")
        if len(tokens) >= 2:
            return decode_token(tokens[-2]), decode_token(tokens[-1])
        return None, None

    # -- outbound -------------------------------------------------------------------------------

    @property
    def events_wildcard(self) -> str:
        return f"{self.prefix}.events.>"

    @property
    def rejections_wildcard(self) -> str:
        return f"{self.prefix}.rejections.>"

    def event(self, school_id: str | None, event_type: str) -> str:
        """``Chat.ContentRemoved`` stays two tokens, so subscribers can filter by aggregate."""
        parts = [encode_token(part) for part in event_type.split(".")]
        return f"{self.prefix}.events.{encode_token(school_id)}.{'.'.join(parts)}"

    def rejection(self, school_id: str | None, command_type: str | None) -> str:
        return f"{self.prefix}.rejections.{encode_token(school_id)}.{encode_token(command_type)}"

    # -- dead letters ---------------------------------------------------------------------------

    @property
    def dead_letters_wildcard(self) -> str:
        return f"{self.prefix}.dead-letters.>"

    def dead_letter(self, school_id: str | None, command_type: str | None) -> str:
        return f"{self.prefix}.dead-letters.{encode_token(school_id)}.{encode_token(command_type)}"
