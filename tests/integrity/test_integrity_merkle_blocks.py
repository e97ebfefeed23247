"""Appending aligned blocks of leaves at once gives the same tree as appending them singly."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sferum_audit.integrity.merkle import MerkleProver, MerkleTree, leaf_hash


def leaves(n: int) -> list[bytes]:
    return [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


@given(st.lists(st.integers(1, 300), max_size=12))
def test_extend_aligned_matches_extend(chunks: list[int]) -> None:
    all_leaves = leaves(sum(chunks))
    one_by_one = MerkleTree()
    blocks = MerkleTree()
    start = 0
    for size in chunks:
        part = all_leaves[start : start + size]
        one_by_one.extend(part)
        blocks.extend_aligned(b"".join(part))
        start += size
        assert blocks.state() == one_by_one.state()
        assert blocks.root() == MerkleProver(all_leaves).root(start)


def test_append_subtree_is_one_aligned_node() -> None:
    block = leaves(8)
    prover = MerkleProver(leaves(16))
    tree = MerkleTree()
    tree.extend(block)
    tree.append_subtree(prover.subtree_root(8, 16), 3)
    assert tree.size == 16
    assert tree.root() == prover.root(16)


@pytest.mark.parametrize(("size", "level"), [(1, 1), (6, 2), (3, 1)])
def test_a_misaligned_subtree_is_refused(size: int, level: int) -> None:
    tree = MerkleTree()
    tree.extend(leaves(size))
    with pytest.raises(ValueError, match="not aligned"):
        tree.append_subtree(hashlib.sha256(b"x").digest(), level)


def test_partial_hashes_are_refused() -> None:
    with pytest.raises(ValueError, match="whole 32-byte"):
        MerkleTree().extend_aligned(b"\x00" * 33)
    with pytest.raises(ValueError, match="32 bytes"):
        MerkleTree().append_subtree(b"short", 0)
