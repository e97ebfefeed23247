"""The canonical encoding of one stored event as a Merkle leaf (format 1).

The Merkle tree (:mod:`merkle`) commits to *leaf hashes*; this module defines what is
hashed for each position of the log, so that anyone holding a record's fields and its
stored bytes can recompute its leaf. An offline verifier must reproduce it byte for
byte; :mod:`offline_check` does so in its own few lines, on purpose.

The tree has one leaf per **position** (the store's global, 1-based notification id):
leaf index ``i`` is position ``i + 1``, and a checkpoint of tree size ``N`` covers
positions ``1..N``. A position that holds no event when it is sealed (PostgreSQL skips
sequence values of rolled-back inserts, e.g. after an optimistic-concurrency conflict)
gets a *hole* leaf, so positions and indexes never drift apart and a row put into that
hole later is caught.

Leaf input, format 1 (all integers big-endian; ``i64`` two's complement, ``u32`` unsigned)::

    event:  0x01 | i64 position | originator_id (16 bytes) | i64 originator_version
                 | u32 len(topic) | topic (UTF-8) | u32 len(state) | state
    hole:   0x02 | i64 position

* ``originator_id`` is the aggregate's UUID as its 16 bytes in RFC 9562 (network) order,
  i.e. Python's ``UUID.bytes``; SQLite stores it as 32 hex digits, PostgreSQL as ``uuid``.
* ``topic`` is the stored topic text (``module:QualName``), UTF-8 encoded.
* ``state`` is the stored bytes exactly as the store holds them: personal fields are
  already sealed with their subject's key there, so destroying a key changes no leaf.

The leaf hash is RFC 6962's ``SHA-256(0x00 || leaf input)``; interior nodes are
``SHA-256(0x01 || left || right)``. The tag byte (0x01, 0x02) names the kind and format,
so a later format can take new tags without ever colliding with these.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final
from uuid import UUID

__all__ = [
    "EVENT_TAG",
    "HOLE_TAG",
    "LeafEncodingError",
    "PageHasher",
    "RawRow",
    "StoredRecord",
    "encode_event",
    "encode_hole",
    "event_leaf_hash",
    "hole_leaf_hash",
    "leaves_with_holes",
    "originator_id_bytes",
    "row_leaf_hash",
]

EVENT_TAG: Final = 0x01
"""First byte of an event's leaf input (format 1)."""
HOLE_TAG: Final = 0x02
"""First byte of a hole's leaf input (format 1): a position without an event."""

_MAX_LENGTH: Final = (1 << 32) - 1
# 0x00 is RFC 6962's leaf prefix, then the tag: one pack for the fixed-size head.
_EVENT_HEAD = struct.Struct(">BBq16sqI")
_HOLE = struct.Struct(">BBq")
_U32 = struct.Struct(">I")
_sha256 = hashlib.sha256

RawRow = tuple[int, Any, int, str, bytes]
"""A stored row as a store gives it: (position, originator id, version, topic, state)."""


class LeafEncodingError(ValueError):
    """A stored row cannot be encoded: its fields are not what an event row holds."""

    def __init__(self, message: str, position: int | None = None) -> None:
        """``position`` names the row, when known."""
        super().__init__(message if position is None else f"position {position}: {message}")
        self.position = position


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """The fields of one stored event that its leaf commits to."""

    position: int
    originator_id: UUID
    originator_version: int
    topic: str
    state: bytes

    def leaf_input(self) -> bytes:
        """The encoded leaf input (without the 0x00 leaf prefix)."""
        return encode_event(
            self.position, self.originator_id.bytes, self.originator_version, self.topic, self.state
        )

    def leaf_hash(self) -> bytes:
        """``SHA-256(0x00 || leaf input)``."""
        return _sha256(b"\x00" + self.leaf_input()).digest()


def originator_id_bytes(value: object) -> bytes:
    """The 16 bytes of an originator id given as UUID, 16 bytes or hex text."""
    if isinstance(value, UUID):
        return value.bytes
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        if len(raw) == 16:
            return raw
        raise LeafEncodingError(f"originator id is {len(raw)} bytes, a UUID has 16")
    if isinstance(value, str):
        text = value.replace("-", "") if len(value) == 36 else value
        if len(text) == 32:
            try:
                return bytes.fromhex(text)
            except ValueError:
                pass
        raise LeafEncodingError(f"originator id {value[:60]!r} is not a UUID")
    raise LeafEncodingError(f"originator id of type {type(value).__name__} is not a UUID")


def _check_int(value: object, what: str) -> int:
    if not isinstance(value, int) or not -(1 << 63) <= value < (1 << 63):
        raise LeafEncodingError(f"{what} {value!r} is not a 64-bit integer")
    return value


def _topic_bytes(topic: object) -> bytes:
    if not isinstance(topic, str):
        raise LeafEncodingError(f"topic of type {type(topic).__name__} is not text")
    try:
        return topic.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise LeafEncodingError("topic is not encodable as UTF-8") from exc


def _state_bytes(state: object) -> bytes:
    if isinstance(state, bytes):
        return state
    if isinstance(state, bytearray | memoryview):
        return bytes(state)
    raise LeafEncodingError(f"state of type {type(state).__name__} is not bytes")


def encode_event(
    position: int, originator_id: bytes, originator_version: int, topic: str, state: bytes
) -> bytes:
    """The leaf input of an event (format 1), see the module docstring."""
    topic_bytes = _topic_bytes(topic)
    state_bytes = _state_bytes(state)
    if len(topic_bytes) > _MAX_LENGTH or len(state_bytes) > _MAX_LENGTH:
        raise LeafEncodingError("topic or state is longer than 2**32 - 1 bytes")
    head = _EVENT_HEAD.pack(
        0,
        EVENT_TAG,
        _check_int(position, "position"),
        originator_id_bytes(originator_id),
        _check_int(originator_version, "originator version"),
        len(topic_bytes),
    )
    return head[1:] + topic_bytes + _U32.pack(len(state_bytes)) + state_bytes


def encode_hole(position: int) -> bytes:
    """The leaf input of a position that holds no event (format 1)."""
    return _HOLE.pack(0, HOLE_TAG, _check_int(position, "position"))[1:]


def event_leaf_hash(
    position: int, originator_id: bytes, originator_version: int, topic: str, state: bytes
) -> bytes:
    """The leaf hash of an event: ``SHA-256(0x00 || encode_event(...))``."""
    return _sha256(
        b"\x00" + encode_event(position, originator_id, originator_version, topic, state)
    ).digest()


def hole_leaf_hash(position: int) -> bytes:
    """The leaf hash of a position that holds no event."""
    return _sha256(_HOLE.pack(0, HOLE_TAG, _check_int(position, "position"))).digest()


def row_leaf_hash(row: RawRow) -> bytes:
    """The leaf hash of one raw stored row; raise :class:`LeafEncodingError` if malformed."""
    position, originator_id, version, topic, state = row
    return event_leaf_hash(position, originator_id_bytes(originator_id), version, topic, state)


class PageHasher:
    """Leaf hashes of pages of raw rows, fast: the hot loop of sealing and verifying.

    Topics repeat, so their encodings are cached. Rows that do not encode raise
    :class:`LeafEncodingError` from :meth:`leaf`; :meth:`page` is the fast path that
    falls back to :meth:`leaf` to name the bad row.
    """

    __slots__ = ("_topics",)

    def __init__(self) -> None:
        """Start with an empty topic cache."""
        self._topics: dict[str, tuple[bytes, int]] = {}

    def leaf(self, row: RawRow) -> bytes:
        """The leaf hash of one row, checking every field."""
        try:
            return row_leaf_hash(row)
        except LeafEncodingError as exc:
            position = row[0] if isinstance(row[0], int) else None
            raise LeafEncodingError(str(exc), position) from None

    def page(self, rows: Sequence[RawRow]) -> list[bytes]:
        """The leaf hashes of ``rows`` in order (positions are taken as given)."""
        topics = self._topics
        pack = _EVENT_HEAD.pack
        u32 = _U32.pack
        sha = _sha256
        out: list[bytes] = []
        append = out.append
        try:
            for position, oid, version, topic, state in rows:
                cached = topics.get(topic)
                if cached is None:
                    encoded = _topic_bytes(topic)
                    cached = (encoded, len(encoded))
                    topics[topic] = cached
                if type(oid) is str:
                    oid = bytes.fromhex(oid)
                elif type(oid) is UUID:
                    oid = oid.bytes
                if len(oid) != 16:  # struct would pad or cut it silently
                    raise ValueError
                h = sha(pack(0, EVENT_TAG, position, oid, version, cached[1]))
                h.update(cached[0])
                h.update(u32(len(state)))
                h.update(state)
                append(h.digest())
        except (struct.error, ValueError, TypeError, AttributeError):
            return [self.leaf(row) for row in rows]  # raises, naming the bad row
        return out


def leaves_with_holes(
    rows: Iterable[RawRow], hasher: PageHasher, first: int, last: int
) -> tuple[list[bytes], list[int]]:
    """Leaf hashes for every position ``first..last`` given the rows found there.

    Positions without a row get hole leaves. Returns the leaves and the positions that
    were holes. Rows must be in strictly increasing position order within the range.
    """
    present = list(rows)
    previous = first - 1
    for row in present:
        if not previous < row[0] <= last:
            raise LeafEncodingError(
                f"rows out of order or outside {first}..{last} (after {previous})", row[0]
            )
        previous = row[0]
    hashed = hasher.page(present)
    if len(present) == last - first + 1:
        return hashed, []
    leaves: list[bytes] = []
    holes: list[int] = []
    expected = first
    for row, leaf in zip(present, hashed, strict=True):
        while expected < row[0]:
            leaves.append(hole_leaf_hash(expected))
            holes.append(expected)
            expected += 1
        leaves.append(leaf)
        expected += 1
    while expected <= last:
        leaves.append(hole_leaf_hash(expected))
        holes.append(expected)
        expected += 1
    return leaves, holes
