"""The leaf encoding is exactly what its documentation says, byte for byte, and the
offline checker's own re-implementation agrees with it."""

from __future__ import annotations

import ast
import hashlib
import inspect
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sferum_audit.integrity import offline_check
from sferum_audit.integrity.leaf_encoding import (
    LeafEncodingError,
    PageHasher,
    StoredRecord,
    encode_event,
    encode_hole,
    event_leaf_hash,
    hole_leaf_hash,
    leaves_with_holes,
    row_leaf_hash,
)

OID = UUID("0f3a1b2c-4d5e-4f60-8a7b-9c0d1e2f3a4b")
TOPIC = "sferum_audit.domain.chat:Chat.ContentRemoved"
STATE = b'{"reason":{"subject":"s1","sealed":"AAAA"}}'


def test_the_documented_event_encoding() -> None:
    expected = (
        b"\x01"
        + (42).to_bytes(8, "big")
        + bytes.fromhex("0f3a1b2c4d5e4f608a7b9c0d1e2f3a4b")
        + (3).to_bytes(8, "big")
        + len(TOPIC).to_bytes(4, "big")
        + TOPIC.encode()
        + len(STATE).to_bytes(4, "big")
        + STATE
    )
    assert encode_event(42, OID.bytes, 3, TOPIC, STATE) == expected
    leaf = hashlib.sha256(b"\x00" + expected).digest()
    assert event_leaf_hash(42, OID.bytes, 3, TOPIC, STATE) == leaf
    # A fixed vector, spelled out in hex, so that the format cannot drift unnoticed.
    spelled = (
        bytes.fromhex("0001000000000000002a0f3a1b2c4d5e4f608a7b9c0d1e2f3a4b")
        + bytes.fromhex("00000000000000030000002c")
        + TOPIC.encode()
        + bytes.fromhex("0000002b")
        + STATE
    )
    assert hashlib.sha256(spelled).digest() == leaf
    assert leaf.hex() == "f9668b4d93afce8959771f673af5fb733492756ae643785c2d8eb86b97c882bc"
    assert StoredRecord(42, OID, 3, TOPIC, STATE).leaf_hash() == leaf


def test_the_documented_hole_encoding() -> None:
    assert encode_hole(7) == b"\x02" + (7).to_bytes(8, "big")
    assert hole_leaf_hash(7) == hashlib.sha256(b"\x00\x02" + (7).to_bytes(8, "big")).digest()
    assert hole_leaf_hash(7) != hole_leaf_hash(8)


def test_every_field_is_bound() -> None:
    base = event_leaf_hash(42, OID.bytes, 3, TOPIC, STATE)
    variants = [
        event_leaf_hash(43, OID.bytes, 3, TOPIC, STATE),
        event_leaf_hash(42, UUID(int=OID.int ^ 1).bytes, 3, TOPIC, STATE),
        event_leaf_hash(42, OID.bytes, 4, TOPIC, STATE),
        event_leaf_hash(42, OID.bytes, 3, TOPIC + "x", STATE),
        event_leaf_hash(42, OID.bytes, 3, TOPIC, STATE + b" "),
        # Length prefixes: moving a byte from the topic into the state changes the leaf.
        event_leaf_hash(42, OID.bytes, 3, TOPIC[:-1], TOPIC[-1].encode() + STATE),
    ]
    assert base not in variants
    assert len(set(variants)) == len(variants)


@given(
    position=st.integers(1, 2**62),
    oid=st.uuids(),
    version=st.integers(-(2**63), 2**63 - 1),
    topic=st.text(max_size=80),
    state=st.binary(max_size=300),
)
def test_the_offline_checker_encodes_leaves_the_same_way(
    position: int, oid: UUID, version: int, topic: str, state: bytes
) -> None:
    ours = event_leaf_hash(position, oid.bytes, version, topic, state)
    assert offline_check.leaf_of_event(position, oid, version, topic, state) == ours


def test_the_page_hasher_agrees_with_the_definition_for_every_id_form() -> None:
    rows = [
        (1, OID.hex, 1, TOPIC, STATE),
        (2, OID, 2, TOPIC, STATE),
        (3, OID.bytes, 3, "other:Topic", b""),
        (4, str(OID), 4, TOPIC, bytearray(STATE)),
    ]
    expected = [row_leaf_hash(row) for row in rows]  # type: ignore[arg-type]
    assert PageHasher().page(rows) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ((5, "not-a-uuid", 1, TOPIC, STATE), "is not a UUID"),
        ((5, OID.hex[:30], 1, TOPIC, STATE), "is not a UUID"),
        ((5, OID.hex, 1, TOPIC, None), "state of type NoneType is not bytes"),
        ((5, OID.hex, 1, None, STATE), "topic of type NoneType is not text"),
        ((5, OID.hex, "1", TOPIC, STATE), "not a 64-bit integer"),
        ((5, OID.hex, 2**63, TOPIC, STATE), "not a 64-bit integer"),
    ],
)
def test_malformed_rows_are_named_by_position(row: tuple[object, ...], message: str) -> None:
    with pytest.raises(LeafEncodingError, match=message) as caught:
        PageHasher().page([(4, OID.hex, 1, TOPIC, STATE), row])  # type: ignore[list-item]
    assert caught.value.position == 5


def test_holes_fill_the_positions_without_rows() -> None:
    rows = [(3, OID.hex, 1, TOPIC, STATE), (5, OID.hex, 2, TOPIC, STATE)]
    leaves, holes = leaves_with_holes(rows, PageHasher(), 2, 6)  # type: ignore[arg-type]
    assert holes == [2, 4, 6]
    assert leaves[0] == hole_leaf_hash(2)
    assert leaves[2] == hole_leaf_hash(4)
    assert leaves[1] == row_leaf_hash(rows[0])  # type: ignore[arg-type]
    with pytest.raises(LeafEncodingError, match="out of order"):
        leaves_with_holes(list(reversed(rows)), PageHasher(), 2, 6)  # type: ignore[arg-type]


def test_the_offline_checker_shares_no_code_with_the_prover() -> None:
    """check-proof may use the RFC verifier and signed-note checks, never the tree code
    or the leaf encoding that made the proof."""
    tree = ast.parse(inspect.getsource(offline_check))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    ours = {name for name in imported if name.startswith("sferum_audit")}
    assert ours == {
        "sferum_audit.integrity.checkpoint",
        "sferum_audit.integrity.note",
        "sferum_audit.integrity.proof_check",
    }
