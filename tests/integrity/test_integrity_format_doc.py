"""docs/integrity-format.md is what the code does: its test vectors are recomputed here
from the text alone (the tables' layout, hashlib), and by the code."""

from __future__ import annotations

import hashlib
import re
import struct
from pathlib import Path
from uuid import UUID

from sferum_audit.integrity.leaf_encoding import encode_event, encode_hole, hole_leaf_hash
from sferum_audit.integrity.merkle import MerkleTree

DOC = Path(__file__).resolve().parents[2] / "docs" / "integrity-format.md"


def vectors() -> dict[str, str]:
    text = DOC.read_text(encoding="utf-8")
    block = text[text.index("## 6.") :]
    return dict(re.findall(r"^([a-z0-9 ,\[\]]+):\s+([0-9a-f]+)$", block, re.MULTILINE))


def test_the_documented_vectors_follow_from_the_text() -> None:
    found = vectors()
    topic = b"sferum_audit.domain.chat:Chat.ContentRemoved"
    state = b'{"reason":{"subject":"s1","sealed":"AAAA"}}'
    oid = UUID("0f3a1b2c-4d5e-4f60-8a7b-9c0d1e2f3a4b").bytes
    # Section 1.1, field by field.
    event = b"\x01" + struct.pack(">q", 42) + oid + struct.pack(">q", 3)
    event += struct.pack(">I", len(topic)) + topic + struct.pack(">I", len(state)) + state
    hole = b"\x02" + struct.pack(">q", 7)
    event_leaf = hashlib.sha256(b"\x00" + event).digest()
    hole_leaf = hashlib.sha256(b"\x00" + hole).digest()
    assert found["event leaf input"] == event.hex()
    assert found["event leaf hash"] == event_leaf.hex()
    assert found["hole 7 input"] == hole.hex()
    assert found["hole 7 leaf hash"] == hole_leaf.hex()
    root = hashlib.sha256(b"\x01" + event_leaf + hole_leaf).hexdigest()
    assert found["root of [event, hole 7]"] == root


def test_the_code_produces_the_documented_vectors() -> None:
    found = vectors()
    topic = "sferum_audit.domain.chat:Chat.ContentRemoved"
    state = b'{"reason":{"subject":"s1","sealed":"AAAA"}}'
    oid = UUID("0f3a1b2c-4d5e-4f60-8a7b-9c0d1e2f3a4b").bytes
    assert encode_event(42, oid, 3, topic, state).hex() == found["event leaf input"]
    assert encode_hole(7).hex() == found["hole 7 input"]
    tree = MerkleTree()
    tree.extend([hashlib.sha256(b"\x00" + encode_event(42, oid, 3, topic, state)).digest()])
    tree.extend([hole_leaf_hash(7)])
    assert tree.root().hex() == found["root of [event, hole 7]"]
