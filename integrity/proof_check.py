"""Offline verification of Merkle inclusion and consistency proofs (RFC 9162).

This is what an auditor runs on a proof handed to them, next to a checkpoint
whose signature they checked. It is deliberately written from the text of RFC
9162 sections 2.1.3.2 and 2.1.4.2 (the iterative algorithms) and shares no code
with :mod:`merkle`, which builds the proofs with the recursive definitions of RFC
6962: a bug in one is unlikely to be mirrored in the other, so the test suite
that runs one against the other actually checks something. It needs nothing
but :mod:`hashlib` (plus :mod:`collections.abc` for a type annotation) and can
be copied out and read on its own.

Every failure raises :class:`ProofError` saying what did not match.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

__all__ = [
    "ProofError",
    "hash_leaf",
    "root_from_inclusion_proof",
    "verify_consistency",
    "verify_inclusion",
]

_HASH_SIZE = 32
_EMPTY_TREE_HASH = hashlib.sha256(b"").digest()


class ProofError(ValueError):
    """A proof, or its inputs, do not establish what was claimed."""


def hash_leaf(data: bytes) -> bytes:
    """Return the RFC 9162 leaf hash ``SHA-256(0x00 || data)`` of a record."""
    return hashlib.sha256(b"\x00" + data).digest()


def _hash_children(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _require_hash(value: bytes, what: str) -> None:
    if len(value) != _HASH_SIZE:
        raise ProofError(f"{what} is {len(value)} bytes, a SHA-256 hash is {_HASH_SIZE}")


def _require_path(path: Sequence[bytes], what: str) -> None:
    for i, node in enumerate(path):
        _require_hash(node, f"{what}[{i}]")


def root_from_inclusion_proof(
    leaf_hash: bytes, leaf_index: int, tree_size: int, inclusion_path: Sequence[bytes]
) -> bytes:
    """Return the root that ``inclusion_path`` leads to from ``leaf_hash``.

    RFC 9162 section 2.1.3.2, steps 1 to 4 and the ``sn`` part of step 5; the
    caller compares the result with a trusted root (see :func:`verify_inclusion`).
    """
    _require_hash(leaf_hash, "leaf hash")
    _require_path(inclusion_path, "inclusion path")
    if leaf_index < 0 or tree_size < 0:
        raise ProofError("leaf index and tree size must not be negative")
    # 1. leaf_index must be inside the tree.
    if leaf_index >= tree_size:
        raise ProofError(f"leaf index {leaf_index} is not in a tree of size {tree_size}")
    # 2. fn: the leaf's index, sn: the last index, both walked up the tree.
    fn = leaf_index
    sn = tree_size - 1
    # 3.
    r = leaf_hash
    # 4.
    for p in inclusion_path:
        # a. Reached the root with path left over: the path is too long.
        if sn == 0:
            raise ProofError(
                f"inclusion path has {len(inclusion_path)} hashes, too many for "
                f"leaf {leaf_index} in a tree of size {tree_size}"
            )
        # b. The node is a right child, or the last node on its level (which
        #    is promoted without a right sibling until it becomes a right child).
        if fn & 1 or fn == sn:
            r = _hash_children(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = _hash_children(r, p)
        # c.
        fn >>= 1
        sn >>= 1
    # 5. (first half) The path must reach the root exactly.
    if sn != 0:
        raise ProofError(
            f"inclusion path has {len(inclusion_path)} hashes, too few for "
            f"leaf {leaf_index} in a tree of size {tree_size}"
        )
    return r


def verify_inclusion(
    leaf_hash: bytes,
    leaf_index: int,
    tree_size: int,
    inclusion_path: Sequence[bytes],
    root_hash: bytes,
) -> None:
    """Check that ``leaf_hash`` is leaf ``leaf_index`` of the tree with ``root_hash``.

    Raise :class:`ProofError` unless the path, followed per RFC 9162 section
    2.1.3.2, arrives at ``root_hash``. The tree size only shapes the path; it is
    ``root_hash`` (authenticated by a signed checkpoint that states the size)
    that binds the claim, so always take both from the same verified checkpoint.
    """
    _require_hash(root_hash, "root hash")
    computed = root_from_inclusion_proof(leaf_hash, leaf_index, tree_size, inclusion_path)
    # 5. (second half)
    if computed != root_hash:
        raise ProofError(
            f"inclusion path for leaf {leaf_index} leads to root {computed.hex()}, "
            f"not to the expected {root_hash.hex()} (tree size {tree_size})"
        )


def verify_consistency(
    first_tree_size: int,
    second_tree_size: int,
    first_hash: bytes,
    second_hash: bytes,
    consistency_path: Sequence[bytes],
) -> None:
    """Check that the tree ``first_hash`` is a prefix of the tree ``second_hash``.

    Raise :class:`ProofError` unless ``consistency_path`` proves, per RFC 9162
    section 2.1.4.2, that the log with root ``second_hash`` at
    ``second_tree_size`` is the log with root ``first_hash`` at
    ``first_tree_size`` plus appended leaves, i.e. nothing was rewritten.

    The cases the RFC algorithm leaves out: equal sizes need an empty path and
    equal roots; size 0 needs an empty path and the empty-tree root
    ``SHA-256("")`` as ``first_hash``.
    """
    _require_hash(first_hash, "first root hash")
    _require_hash(second_hash, "second root hash")
    _require_path(consistency_path, "consistency path")
    if first_tree_size < 0 or second_tree_size < 0:
        raise ProofError("tree sizes must not be negative")
    if first_tree_size > second_tree_size:
        raise ProofError(
            f"the log shrank: size {first_tree_size} cannot be a prefix of size {second_tree_size}"
        )
    if first_tree_size == 0 and first_hash != _EMPTY_TREE_HASH:
        raise ProofError(f"{first_hash.hex()} is not the root of the empty tree")
    if first_tree_size == second_tree_size:
        if consistency_path:
            raise ProofError("trees of equal size need an empty consistency path")
        if first_hash != second_hash:
            raise ProofError(
                f"two different roots for the same tree size {first_tree_size}: "
                f"{first_hash.hex()} and {second_hash.hex()}"
            )
        return
    if first_tree_size == 0:
        if consistency_path:
            raise ProofError("the empty tree needs an empty consistency path")
        return

    # 1.
    if not consistency_path:
        raise ProofError(
            f"empty consistency path between sizes {first_tree_size} and {second_tree_size}"
        )
    path = list(consistency_path)
    # 2. A power-of-two first tree is itself a node of the second: its root is
    #    the starting point and is not repeated in the path.
    if first_tree_size & (first_tree_size - 1) == 0:
        path.insert(0, first_hash)
    # 3.
    fn = first_tree_size - 1
    sn = second_tree_size - 1
    # 4.
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # 5. fr rebuilds the first root, sr the second.
    fr = path[0]
    sr = path[0]
    # 6.
    for c in path[1:]:
        # a.
        if sn == 0:
            raise ProofError(
                f"consistency path has {len(consistency_path)} hashes, too many "
                f"for sizes {first_tree_size} and {second_tree_size}"
            )
        # b.
        if fn & 1 or fn == sn:
            fr = _hash_children(c, fr)
            sr = _hash_children(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = _hash_children(sr, c)
        # c.
        fn >>= 1
        sn >>= 1
    # 7.
    if sn != 0:
        raise ProofError(
            f"consistency path has {len(consistency_path)} hashes, too few "
            f"for sizes {first_tree_size} and {second_tree_size}"
        )
    if fr != first_hash:
        raise ProofError(
            f"consistency path rebuilds first root {fr.hex()}, "
            f"not the expected {first_hash.hex()} (size {first_tree_size})"
        )
    if sr != second_hash:
        raise ProofError(
            f"consistency path rebuilds second root {sr.hex()}, "
            f"not the expected {second_hash.hex()} (size {second_tree_size})"
        )
