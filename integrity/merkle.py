"""RFC 6962 Merkle tree hashing, a streaming tree builder and proof generation.

The audit log is committed to by a Merkle tree exactly as in RFC 6962 section
2.1 (kept unchanged in RFC 9162 section 2.1), so that anyone holding a signed
checkpoint can check, with standard tools and without trusting our code, that a
record is in the log (inclusion proof) and that the log only ever grew
(consistency proof).

Everything here works on *leaf hashes*, the 32-byte ``leaf_hash(record bytes)``
values, never on the records themselves: this keeps the tree independent of how
records are encoded and stored.

* :class:`MerkleTree` follows a log of any length in O(log n) memory, keeping only
  the roots of the perfect subtrees along its right edge (the "compact range").
  A sealer appends every new leaf hash, reads :meth:`MerkleTree.root` to sign a
  checkpoint and persists :meth:`MerkleTree.state` to resume after a restart.
* :class:`MerkleProver` answers inclusion and consistency proofs for any tree
  size from a random-access source of leaf hashes (a sequence, or a callable
  that reads storage), caching the roots of aligned power-of-two subtrees.

The matching verifier is :mod:`proof_check`, written separately on purpose.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "CompactState",
    "LeafSource",
    "MerkleProver",
    "MerkleTree",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root_hash",
]

HASH_SIZE: Final = 32
"""Size in bytes of every hash in the tree (SHA-256)."""

EMPTY_ROOT: Final = hashlib.sha256(b"").digest()
"""MTH({}) per RFC 6962 2.1: the hash of the empty string."""

_LEAF_PREFIX: Final = b"\x00"
_NODE_PREFIX: Final = b"\x01"
_sha256 = hashlib.sha256

LeafSource = Sequence[bytes] | Callable[[int], bytes]
"""Where a prover reads leaf hashes: a sequence, or ``f(index) -> leaf hash``."""


def leaf_hash(data: bytes) -> bytes:
    """Return the RFC 6962 leaf hash ``SHA-256(0x00 || data)`` of one record.

    The 0x00 prefix separates leaves from interior nodes (which use 0x01), so a
    leaf can never be passed off as a subtree (second-preimage protection).
    """
    return _sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return the RFC 6962 interior node hash ``SHA-256(0x01 || left || right)``."""
    return _sha256(_NODE_PREFIX + left + right).digest()


def _check_hash(value: bytes, what: str) -> bytes:
    if len(value) != HASH_SIZE:
        raise ValueError(f"{what} must be {HASH_SIZE} bytes, got {len(value)}")
    return value


def _split_point(n: int) -> int:
    """Largest power of two strictly smaller than ``n`` (``n >= 2``), the RFC's k."""
    return 1 << ((n - 1).bit_length() - 1)


def root_hash(leaf_hashes: Iterable[bytes]) -> bytes:
    """Return the Merkle tree hash (MTH) of a list of *leaf hashes*.

    This is RFC 6962's MTH(D[n]) with the leaf hashing already applied, i.e.
    ``root_hash(map(leaf_hash, records))``; the empty list gives
    :data:`EMPTY_ROOT`. It streams, so any iterable of any length is fine.
    """
    tree = MerkleTree()
    tree.extend(leaf_hashes)
    return tree.root()


@dataclass(frozen=True, slots=True)
class CompactState:
    """The resumable state of a :class:`MerkleTree`: its size and right edge.

    ``hashes`` are the roots of the perfect subtrees that make up the tree, from
    the largest (leftmost) to the smallest (rightmost); there is one per set bit
    of ``size``. Persist it with :meth:`to_bytes` next to the sealer's position
    in the log and restore it with :meth:`from_bytes`.
    """

    size: int
    hashes: tuple[bytes, ...]

    def __post_init__(self) -> None:
        if self.size < 0:
            raise ValueError(f"tree size must not be negative, got {self.size}")
        if len(self.hashes) != self.size.bit_count():
            raise ValueError(
                f"a tree of size {self.size} has {self.size.bit_count()} compact "
                f"hashes, got {len(self.hashes)}"
            )
        for h in self.hashes:
            _check_hash(h, "compact range hash")

    def to_bytes(self) -> bytes:
        """Encode as an 8-byte big-endian size followed by the hashes."""
        return struct.pack(">Q", self.size) + b"".join(self.hashes)

    @classmethod
    def from_bytes(cls, data: bytes) -> CompactState:
        """Decode what :meth:`to_bytes` wrote; raise ValueError if it does not fit."""
        if len(data) < 8 or (len(data) - 8) % HASH_SIZE:
            raise ValueError(f"compact state has an impossible length {len(data)}")
        (size,) = struct.unpack(">Q", data[:8])
        hashes = tuple(data[i : i + HASH_SIZE] for i in range(8, len(data), HASH_SIZE))
        return cls(size, hashes)


class MerkleTree:
    """An append-only RFC 6962 tree that keeps only O(log n) hashes.

    Appending costs one leaf-hash check plus, amortised, one node hash; the root
    of the current tree is available at any moment in O(log n). The tree cannot
    produce proofs (it has forgotten the leaves); use :class:`MerkleProver` on
    the stored leaf hashes for that.
    """

    __slots__ = ("_size", "_stack")

    def __init__(self) -> None:
        """Start an empty tree."""
        self._size = 0
        self._stack: list[bytes] = []

    @classmethod
    def from_state(cls, state: CompactState) -> MerkleTree:
        """Resume a tree from a state saved with :meth:`state`."""
        tree = cls()
        tree._size = state.size
        tree._stack = list(state.hashes)
        return tree

    def state(self) -> CompactState:
        """Return the current size and compact range, to persist and resume."""
        return CompactState(self._size, tuple(self._stack))

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return self._size

    def append(self, leaf_hash: bytes) -> int:
        """Append one leaf hash and return its index (the old size)."""
        if len(leaf_hash) != HASH_SIZE:
            raise ValueError(f"leaf hash must be {HASH_SIZE} bytes, got {len(leaf_hash)}")
        stack = self._stack
        index = self._size
        node = leaf_hash
        # Each trailing 1 bit of the old size is a perfect subtree of the same
        # height as `node` waiting on the right edge: merge them pairwise.
        n = index
        while n & 1:
            node = _sha256(_NODE_PREFIX + stack.pop() + node).digest()
            n >>= 1
        stack.append(node)
        self._size = index + 1
        return index

    def append_subtree(self, subtree_root: bytes, level: int) -> None:
        """Append ``2**level`` leaves at once, given the root of their perfect subtree.

        The tree's size must be a multiple of ``2**level`` (the subtree is aligned), so
        the new leaves form one node of the final tree; the result is the same as
        appending the leaves one by one. Lets a caller hash aligned blocks of leaves
        level by level, which is faster than appending them singly.
        """
        if len(subtree_root) != HASH_SIZE:
            raise ValueError(f"subtree root must be {HASH_SIZE} bytes, got {len(subtree_root)}")
        if level < 0 or self._size % (1 << level):
            raise ValueError(f"a subtree of 2**{level} leaves is not aligned at size {self._size}")
        stack = self._stack
        node = subtree_root
        n = self._size >> level
        while n & 1:
            node = _sha256(_NODE_PREFIX + stack.pop() + node).digest()
            n >>= 1
        stack.append(node)
        self._size += 1 << level

    def extend_aligned(self, leaf_hashes: bytes) -> None:
        """Append concatenated 32-byte leaf hashes, hashing aligned blocks level by level.

        Equivalent to :meth:`extend` over the hashes in ``leaf_hashes``, about twice as
        fast for long runs.
        """
        if len(leaf_hashes) % HASH_SIZE:
            raise ValueError(f"leaf data must be whole {HASH_SIZE}-byte hashes")
        count = len(leaf_hashes) // HASH_SIZE
        index = 0
        while index < count:
            level = 0
            # The largest aligned block that starts here and fits (at most 2**16 leaves).
            while level < 16 and not self._size & (1 << level) and index + (2 << level) <= count:
                level += 1
            if level == 0:
                self.append(leaf_hashes[index * HASH_SIZE : (index + 1) * HASH_SIZE])
                index += 1
                continue
            row = [
                leaf_hashes[i : i + HASH_SIZE]
                for i in range(index * HASH_SIZE, (index + (1 << level)) * HASH_SIZE, HASH_SIZE)
            ]
            while len(row) > 1:
                row = [
                    _sha256(_NODE_PREFIX + row[i] + row[i + 1]).digest()
                    for i in range(0, len(row), 2)
                ]
            self.append_subtree(row[0], level)
            index += 1 << level

    def append_data(self, data: bytes) -> int:
        """Hash one record with :func:`leaf_hash`, append it, return its index."""
        return self.append(_sha256(_LEAF_PREFIX + data).digest())

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Append many leaf hashes in order."""
        append = self.append
        for h in leaf_hashes:
            append(h)

    def root(self) -> bytes:
        """Return the Merkle tree hash of all leaves appended so far."""
        stack = self._stack
        if not stack:
            return EMPTY_ROOT
        node = stack[-1]
        for left in reversed(stack[:-1]):
            node = _sha256(_NODE_PREFIX + left + node).digest()
        return node


class MerkleProver:
    """Build RFC 6962 inclusion and consistency proofs from stored leaf hashes.

    ``leaves`` gives the leaf hash at an index: a sequence, or a callable that
    reads storage. The log is append-only, so the root of every aligned
    power-of-two subtree ("perfect" subtree: ``2**level`` leaves starting at a
    multiple of ``2**level``) never changes once it is complete. The prover
    caches those roots for levels ``cache_min_level`` and up. When more than
    ``cache_size`` are held, the lowest cached level is dropped and no longer
    cached: a proof needs one subtree per level, so the high levels are the
    valuable ones, and keeping whole levels keeps the cost of any proof
    predictable. After the first proof (which hashes the tree once), a proof
    for a tree of n leaves costs O(log n) cached roots plus O(``2**floor``)
    leaf reads, where ``floor`` is the lowest cached level (about
    ``log2(n / cache_size)``; with the defaults, 32768 roots of about 100
    bytes each, a million-leaf log gets floor 6: ~0.1 ms per proof).
    Not thread-safe: use one prover per thread.
    """

    def __init__(
        self,
        leaves: LeafSource,
        *,
        cache_size: int = 1 << 15,
        cache_min_level: int = 4,
    ) -> None:
        """Wrap a leaf source; see the class docstring for the cache knobs."""
        if cache_size < 0 or cache_min_level < 1:
            raise ValueError("cache_size must be >= 0 and cache_min_level >= 1")
        if callable(leaves):
            self._read: Callable[[int], bytes] = leaves
            self._sequence: Sequence[bytes] | None = None
        else:
            self._read = leaves.__getitem__
            self._sequence = leaves  # may grow; its length is checked on each call
        self._cache: dict[int, dict[int, bytes]] = {}  # level -> index -> root
        self._cached = 0
        self._cache_size = cache_size
        self._cache_min_level = cache_min_level
        self._floor = cache_min_level  # lowest level still being cached

    def leaf(self, index: int) -> bytes:
        """Return the leaf hash at ``index`` from the source, checking its length."""
        return _check_hash(self._read(index), f"leaf hash {index}")

    def root(self, size: int) -> bytes:
        """Return the Merkle tree hash of the first ``size`` leaves."""
        self._check_size(size)
        return EMPTY_ROOT if size == 0 else self.subtree_root(0, size)

    def subtree_root(self, start: int, end: int) -> bytes:
        """Return MTH(D[start:end]), the hash of the leaves in ``[start, end)``."""
        n = end - start
        if start < 0 or n < 1:
            raise ValueError(f"empty or negative leaf range [{start}, {end})")
        if n & (n - 1) == 0 and start % n == 0:
            level = n.bit_length() - 1
            return self._perfect(level, start >> level)
        k = _split_point(n)
        return node_hash(self.subtree_root(start, start + k), self.subtree_root(start + k, end))

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """Return the audit path PATH(index, D[size]) of RFC 6962 2.1.1.

        The path lists sibling hashes from the leaf upwards; it proves that
        leaf ``index`` is in the tree of the first ``size`` leaves.
        """
        self._check_size(size)
        if not 0 <= index < size:
            raise ValueError(f"leaf index {index} is outside a tree of size {size}")
        proof: list[bytes] = []
        start, end, m = 0, size, index
        while end - start > 1:
            k = _split_point(end - start)
            if m < k:
                proof.append(self.subtree_root(start + k, end))
                end = start + k
            else:
                proof.append(self.subtree_root(start, start + k))
                start += k
                m -= k
        proof.reverse()
        return proof

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """Return PROOF(old_size, D[new_size]) of RFC 6962 2.1.2.

        It proves that the tree of the first ``old_size`` leaves is a prefix of
        the tree of the first ``new_size``. It is empty when the sizes are equal
        or ``old_size`` is 0 (the empty tree is a prefix of every tree).
        """
        self._check_size(new_size)
        if not 0 <= old_size <= new_size:
            raise ValueError(f"cannot prove size {old_size} is a prefix of size {new_size}")
        if old_size in (0, new_size):
            return []
        proof: list[bytes] = []
        start, end, m = 0, new_size, old_size
        whole_old_tree_known = True  # the RFC's flag b
        while m != end - start:
            k = _split_point(end - start)
            if m <= k:
                proof.append(self.subtree_root(start + k, end))
                end = start + k
            else:
                proof.append(self.subtree_root(start, start + k))
                start += k
                m -= k
                whole_old_tree_known = False
        if not whole_old_tree_known:
            proof.append(self.subtree_root(start, end))
        proof.reverse()
        return proof

    def _check_size(self, size: int) -> None:
        if size < 0:
            raise ValueError(f"tree size must not be negative, got {size}")
        if self._sequence is not None and size > len(self._sequence):
            raise ValueError(f"tree size {size} exceeds the {len(self._sequence)} leaves available")

    def _perfect(self, level: int, index: int) -> bytes:
        """Root of the perfect subtree of 2**level leaves starting at index*2**level."""
        if level <= self._cache_min_level and level < self._floor:
            return self._hash_block(level, index)
        row = self._cache.get(level)
        if row is not None:
            cached = row.get(index)
            if cached is not None:
                return cached
        if level <= self._cache_min_level:
            value = self._hash_block(level, index)
        else:
            left = self._perfect(level - 1, 2 * index)
            value = node_hash(left, self._perfect(level - 1, 2 * index + 1))
        if level >= self._floor:
            self._remember(level, index, value)
        return value

    def _remember(self, level: int, index: int, value: bytes) -> None:
        self._cache.setdefault(level, {})[index] = value
        self._cached += 1
        while self._cached > self._cache_size:
            lowest = min(self._cache)
            self._cached -= len(self._cache.pop(lowest))
            self._floor = lowest + 1

    def _hash_block(self, level: int, index: int) -> bytes:
        """Hash a small perfect subtree bottom-up straight from its leaves."""
        first = index << level
        row = [self.leaf(i) for i in range(first, first + (1 << level))]
        while len(row) > 1:
            row = [
                _sha256(_NODE_PREFIX + row[i] + row[i + 1]).digest() for i in range(0, len(row), 2)
            ]
        return row[0]


def inclusion_proof(index: int, size: int, leaves: LeafSource) -> list[bytes]:
    """One-off :meth:`MerkleProver.inclusion_proof`; keep a prover to reuse its cache."""
    return MerkleProver(leaves).inclusion_proof(index, size)


def consistency_proof(old_size: int, new_size: int, leaves: LeafSource) -> list[bytes]:
    """One-off :meth:`MerkleProver.consistency_proof`; keep a prover to reuse its cache."""
    return MerkleProver(leaves).consistency_proof(old_size, new_size)
