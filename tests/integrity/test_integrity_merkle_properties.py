"""Property tests: merkle.py's proofs, checked by proof_check.py and by a naive RFC 6962 model.

`_mth`, `_path` and `_subproof` below are the recursive definitions of RFC 6962
sections 2.1, 2.1.1 and 2.1.2 transcribed literally (list slicing, no caching),
as a third, obviously-correct opinion next to the optimised generator and the
iterative RFC 9162 verifier.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sferum_audit.integrity.merkle import (
    EMPTY_ROOT,
    CompactState,
    MerkleProver,
    MerkleTree,
    leaf_hash,
    root_hash,
)
from sferum_audit.integrity.proof_check import (
    ProofError,
    verify_consistency,
    verify_inclusion,
)

MAX_SIZE = 700


def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def _mth(d: list[bytes]) -> bytes:
    """MTH over leaf hashes (RFC 6962 2.1 with the leaf hashing already done)."""
    if not d:
        return _sha(b"")
    if len(d) == 1:
        return d[0]
    k = _k(len(d))
    return _sha(b"\x01" + _mth(d[:k]) + _mth(d[k:]))


def _path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = _k(len(d))
    if m < k:
        return [*_path(m, d[:k]), _mth(d[k:])]
    return [*_path(m - k, d[k:]), _mth(d[:k])]


def _subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [_mth(d)]
    k = _k(n)
    if m <= k:
        return [*_subproof(m, d[:k], b), _mth(d[k:])]
    return [*_subproof(m - k, d[k:], False), _mth(d[:k])]


def _leaves(n: int, salt: bytes = b"") -> list[bytes]:
    # Distinct leaves: with repeated leaves a proof for one index can honestly
    # verify for another index holding the same value.
    return [leaf_hash(salt + i.to_bytes(8, "big")) for i in range(n)]


def _flip(proof: list[bytes], element: int, byte: int, bit: int) -> list[bytes]:
    wrong = list(proof)
    target = bytearray(wrong[element])
    target[byte] ^= 1 << bit
    wrong[element] = bytes(target)
    return wrong


def _rejected_inclusion(
    leaf: bytes, index: int, size: int, proof: list[bytes], root: bytes
) -> bool:
    try:
        verify_inclusion(leaf, index, size, proof, root)
    except ProofError:
        return True
    return False


def _rejected_consistency(m: int, n: int, r1: bytes, r2: bytes, proof: list[bytes]) -> bool:
    try:
        verify_consistency(m, n, r1, r2, proof)
    except ProofError:
        return True
    return False


sizes = st.integers(min_value=1, max_value=MAX_SIZE)


@st.composite
def tree_and_index(draw: st.DrawFn) -> tuple[int, int]:
    n = draw(sizes)
    return n, draw(st.integers(min_value=0, max_value=n - 1))


@st.composite
def two_sizes(draw: st.DrawFn) -> tuple[int, int]:
    n = draw(sizes)
    return draw(st.integers(min_value=1, max_value=n)), n


# --- the streaming tree ---------------------------------------------------------------


@given(st.lists(st.binary(max_size=40), max_size=70))
def test_streaming_root_matches_naive_mth_at_every_size(records: list[bytes]) -> None:
    tree = MerkleTree()
    hashes: list[bytes] = []
    assert tree.root() == _mth(hashes)
    for record in records:
        hashes.append(leaf_hash(record))
        tree.append(hashes[-1])
        assert tree.root() == _mth(hashes)
    assert root_hash(hashes) == _mth(hashes)
    assert MerkleProver(hashes).root(len(hashes)) == _mth(hashes)


@given(st.integers(min_value=0, max_value=300), st.data())
def test_resuming_from_saved_state_gives_the_same_roots(n: int, data: st.DataObject) -> None:
    split = data.draw(st.integers(min_value=0, max_value=n))
    leaves = _leaves(n)
    first = MerkleTree()
    first.extend(leaves[:split])
    saved = first.state().to_bytes()
    resumed = MerkleTree.from_state(CompactState.from_bytes(saved))
    assert resumed.size == split
    assert resumed.root() == first.root()
    resumed.extend(leaves[split:])
    assert resumed.root() == _mth(leaves)
    assert resumed.state() == MerkleTree.from_state(resumed.state()).state()


def test_compact_state_rejects_inconsistent_data() -> None:
    h = leaf_hash(b"x")
    with pytest.raises(ValueError):
        CompactState(3, (h,))  # size 3 = 0b11 needs two hashes
    with pytest.raises(ValueError):
        CompactState(1, (b"short",))
    with pytest.raises(ValueError):
        CompactState(-1, ())
    with pytest.raises(ValueError):
        CompactState.from_bytes(b"\x00" * 9)
    with pytest.raises(ValueError):
        CompactState.from_bytes((2).to_bytes(8, "big"))  # size 2 but no hash


def test_append_rejects_things_that_are_not_leaf_hashes() -> None:
    tree = MerkleTree()
    with pytest.raises(ValueError):
        tree.append(b"a raw record, not its hash")
    assert tree.size == 0


# --- inclusion -------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(tree_and_index(), st.data())
def test_inclusion_proofs_verify_and_tampering_fails(
    case: tuple[int, int], data: st.DataObject
) -> None:
    n, i = case
    leaves = _leaves(n)
    prover = MerkleProver(leaves)
    root = prover.root(n)
    proof = prover.inclusion_proof(i, n)

    assert root == _mth(leaves)
    assert proof == _path(i, leaves)
    verify_inclusion(leaves[i], i, n, proof, root)

    if proof:
        element = data.draw(st.integers(0, len(proof) - 1), label="element")
        byte = data.draw(st.integers(0, 31), label="byte")
        bit = data.draw(st.integers(0, 7), label="bit")
        assert _rejected_inclusion(leaves[i], i, n, _flip(proof, element, byte, bit), root)
        assert _rejected_inclusion(leaves[i], i, n, proof[:-1], root)
    assert _rejected_inclusion(leaves[i], i, n, [*proof, leaves[0]], root)
    assert _rejected_inclusion(_flip([leaves[i]], 0, 0, 0)[0], i, n, proof, root)
    assert _rejected_inclusion(leaves[i], i, n, proof, _flip([root], 0, 31, 7)[0])

    other = data.draw(st.integers(0, n - 1).filter(lambda j: j != i) if n > 1 else st.none())
    if other is not None:
        assert _rejected_inclusion(leaves[i], other, n, proof, root)
        assert _rejected_inclusion(leaves[other], i, n, proof, root)

    # A different size, with that size's own (correct) root, must not accept the proof.
    wrong_size = data.draw(st.integers(i + 1, MAX_SIZE + 1).filter(lambda s: s != n))
    wrong_root = _mth(_leaves(wrong_size)) if wrong_size > n else _mth(leaves[:wrong_size])
    assert _rejected_inclusion(leaves[i], i, wrong_size, proof, wrong_root)
    # And the size being doubled or halved with the original root fails too (Go's probes).
    assert _rejected_inclusion(leaves[i], i, 2 * n, proof, root)
    assert _rejected_inclusion(leaves[i], i, n // 2, proof, root)


@pytest.mark.parametrize("n", range(1, 40))
def test_every_inclusion_proof_of_small_trees(n: int) -> None:
    leaves = _leaves(n)
    prover = MerkleProver(leaves)
    root = _mth(leaves)
    for i in range(n):
        proof = prover.inclusion_proof(i, n)
        assert proof == _path(i, leaves)
        verify_inclusion(leaves[i], i, n, proof, root)


# --- consistency -----------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(two_sizes(), st.data())
def test_consistency_proofs_verify_and_tampering_fails(
    case: tuple[int, int], data: st.DataObject
) -> None:
    m, n = case
    leaves = _leaves(n)
    prover = MerkleProver(leaves)
    old_root, new_root = prover.root(m), prover.root(n)
    proof = prover.consistency_proof(m, n)

    assert old_root == _mth(leaves[:m])
    assert proof == ([] if m == n else _subproof(m, leaves, True))
    verify_consistency(m, n, old_root, new_root, proof)

    if proof:
        element = data.draw(st.integers(0, len(proof) - 1), label="element")
        byte = data.draw(st.integers(0, 31), label="byte")
        bit = data.draw(st.integers(0, 7), label="bit")
        wrong = _flip(proof, element, byte, bit)
        assert _rejected_consistency(m, n, old_root, new_root, wrong)
        assert _rejected_consistency(m, n, old_root, new_root, proof[:-1])
        assert _rejected_consistency(m, n, old_root, new_root, proof[1:])
    assert _rejected_consistency(m, n, old_root, new_root, [*proof, new_root])
    assert _rejected_consistency(m, n, _flip([old_root], 0, 5, 1)[0], new_root, proof)
    assert _rejected_consistency(m, n, old_root, _flip([new_root], 0, 5, 1)[0], proof)

    # A different old size, with that size's own (correct) root, must not pass.
    wrong_m = data.draw(st.integers(1, n).filter(lambda s: s != m) if n > 1 else st.none())
    if wrong_m is not None:
        assert _rejected_consistency(wrong_m, n, _mth(leaves[:wrong_m]), new_root, proof)
    # A different new size, with its own root (the log extended further), must not pass.
    more = _leaves(n + 5)
    assert _rejected_consistency(m, n + 5, old_root, _mth(more), proof)


def test_a_forked_log_is_not_consistent() -> None:
    honest = _leaves(20)
    forked = [*honest[:9], leaf_hash(b"rewritten"), *honest[10:]]
    proof = MerkleProver(forked).consistency_proof(12, 20)
    # The proof is valid for the forked log, but not from the honest old checkpoint.
    verify_consistency(12, 20, _mth(forked[:12]), _mth(forked), proof)
    assert _rejected_consistency(12, 20, _mth(honest[:12]), _mth(forked), proof)


@pytest.mark.parametrize("n", range(1, 34))
def test_every_consistency_proof_of_small_trees(n: int) -> None:
    leaves = _leaves(n)
    prover = MerkleProver(leaves)
    for m in range(0, n + 1):
        proof = prover.consistency_proof(m, n)
        assert proof == ([] if m in (0, n) else _subproof(m, leaves, True))
        verify_consistency(m, n, _mth(leaves[:m]), _mth(leaves), proof)


# --- the prover's leaf source and cache -------------------------------------------------


def test_callable_source_and_cache_reads_few_leaves_after_warm_up() -> None:
    n = 1 << 12
    leaves = _leaves(n, b"cache")
    reads: list[int] = []

    def read(index: int) -> bytes:
        reads.append(index)
        return leaves[index]

    prover = MerkleProver(read, cache_min_level=4)
    root = prover.root(n)
    assert root == root_hash(leaves)
    assert len(reads) == n  # the first root reads every leaf once

    for i in (0, 1, 1000, n - 1):
        reads.clear()
        proof = prover.inclusion_proof(i, n)
        verify_inclusion(leaves[i], i, n, proof, root)
        # Siblings below level 4 come from leaves (1 + 2 + 4 + 8), the rest from the cache.
        assert len(reads) <= 15

    reads.clear()
    proof = prover.consistency_proof(1000, n)
    verify_consistency(1000, n, root_hash(leaves[:1000]), root, proof)
    assert len(reads) <= 2 * 16 * 12


def test_a_full_cache_drops_whole_low_levels_and_proofs_stay_cheap() -> None:
    n = 1 << 14
    leaves = _leaves(n, b"floor")
    reads: list[int] = []

    def read(index: int) -> bytes:
        reads.append(index)
        return leaves[index]

    # Levels 9..14 hold 32 + 16 + 8 + 4 + 2 + 1 = 63 roots: that is what fits in 64.
    prover = MerkleProver(read, cache_size=64, cache_min_level=4)
    root = prover.root(n)
    for i in range(0, n, 997):
        reads.clear()
        verify_inclusion(leaves[i], i, n, prover.inclusion_proof(i, n), root)
        assert len(reads) <= 2**9 - 1  # siblings on levels 0..8 come from leaves


def test_a_growing_log_can_be_proven_by_one_prover() -> None:
    log: list[bytes] = []
    prover = MerkleProver(log)
    tree = MerkleTree()
    old_root = EMPTY_ROOT
    for size in range(1, 200):
        log.append(leaf_hash(size.to_bytes(2, "big")))
        tree.append(log[-1])
        assert prover.root(size) == tree.root()
        verify_inclusion(
            log[-1], size - 1, size, prover.inclusion_proof(size - 1, size), tree.root()
        )
        proof = prover.consistency_proof(size - 1, size)
        verify_consistency(size - 1, size, old_root, tree.root(), proof)
        old_root = tree.root()


@given(two_sizes(), st.integers(min_value=0, max_value=4), st.integers(min_value=1, max_value=5))
def test_a_tiny_cache_still_gives_correct_proofs(
    case: tuple[int, int], cache_size: int, cache_min_level: int
) -> None:
    m, n = case
    leaves = _leaves(n)
    prover = MerkleProver(leaves, cache_size=cache_size, cache_min_level=cache_min_level)
    assert prover.root(n) == _mth(leaves)
    assert prover.inclusion_proof(m - 1, n) == _path(m - 1, leaves)
    assert prover.consistency_proof(m, n) == ([] if m == n else _subproof(m, leaves, True))


def test_prover_checks_leaf_hash_length_and_available_size() -> None:
    with pytest.raises(ValueError):
        MerkleProver([b"not a hash", b"x"]).root(2)
    with pytest.raises(ValueError):
        MerkleProver(_leaves(3)).root(4)
    with pytest.raises(ValueError):
        MerkleProver(_leaves(3)).subtree_root(2, 2)
