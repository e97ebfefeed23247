"""Comparing a range of the store with the sealed leaves: the inner loop of ``verify``.

Kept apart from :mod:`verifier` so that worker processes import little: ``verify`` splits
the log into ranges and compares them in parallel, one process per core, while the main
process authenticates the leaf file against the checkpoints.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sferum_audit.integrity.evidence import LeafFile
from sferum_audit.integrity.leaf_encoding import (
    LeafEncodingError,
    PageHasher,
    hole_leaf_hash,
    leaves_with_holes,
)
from sferum_audit.integrity.merkle import HASH_SIZE
from sferum_audit.integrity.store_reader import ReaderSpec, StoreReader, pages

__all__ = ["Finding", "RangeOutcome", "classify", "compare_range", "compare_range_in_process"]


@dataclass(frozen=True)
class Finding:
    """One thing that is wrong: what kind, in words, and where (a position, when known)."""

    kind: str
    message: str
    position: int | None = None


@dataclass(frozen=True)
class RangeOutcome:
    """What comparing one range found: positions compared, holes seen, the first finding."""

    compared: int
    holes: int
    finding: Finding | None
    first_hole: int | None = None
    """The first position without a row in the range (compared as a hole)."""


def classify(position: int, store_had_row: bool, sealed_leaf: bytes, covered: int) -> Finding:
    """Name what differs at ``position`` given what the store and the seal hold there."""
    unsigned = "" if position <= covered else " (sealed, not yet in a signed checkpoint)"
    if not store_had_row:
        return Finding(
            "missing",
            f"the event sealed at position {position} is missing from the store "
            f"(deleted){unsigned}",
            position,
        )
    if sealed_leaf == hole_leaf_hash(position):
        return Finding(
            "inserted",
            f"position {position} holds an event but the sealed log has none there "
            f"(inserted){unsigned}",
            position,
        )
    return Finding(
        "changed",
        f"the stored event at position {position} differs from the sealed record (its "
        f"bytes, id, version or topic were changed, or rows were swapped or renumbered)"
        f"{unsigned}",
        position,
    )


def _first_difference(hashed: list[bytes], sealed: bytes) -> int:
    return next(
        i for i in range(len(hashed)) if hashed[i] != sealed[i * HASH_SIZE : (i + 1) * HASH_SIZE]
    )


def compare_range(
    reader: StoreReader,
    leaves: LeafFile,
    low: int,
    high: int,
    covered: int,
    page_size: int,
) -> RangeOutcome:
    """Compare positions ``low + 1 .. high`` of the store with the sealed leaves.

    Every position in the range must have a sealed leaf (``high`` is at most the leaf
    count); positions without a row are compared as holes. Stops at the first
    difference.
    """
    hasher = PageHasher()
    done = low
    compared = holes_seen = 0
    first_hole: int | None = None
    for page in pages(reader, low, high, page_size):
        last = page[-1][0]
        try:
            hashed, holes = leaves_with_holes(page, hasher, done + 1, last)
        except LeafEncodingError as exc:
            return RangeOutcome(compared, holes_seen, Finding("malformed", str(exc), exc.position))
        holes_seen += len(holes)
        if holes and first_hole is None:
            first_hole = holes[0]
        sealed = leaves.read(done, len(hashed))
        if b"".join(hashed) != sealed:
            index = _first_difference(hashed, sealed)
            position = done + 1 + index
            sealed_leaf = sealed[index * HASH_SIZE : (index + 1) * HASH_SIZE]
            finding = classify(position, position not in set(holes), sealed_leaf, covered)
            return RangeOutcome(compared + index, holes_seen, finding, first_hole)
        compared += len(hashed)
        done = last
    if done < high:  # no rows after `done` in the range: holes, unless sealed as events
        step = 1 << 14
        for start in range(done, high, step):
            hashed = [hole_leaf_hash(p) for p in range(start + 1, min(high, start + step) + 1)]
            sealed = leaves.read(start, len(hashed))
            if b"".join(hashed) != sealed:
                index = _first_difference(hashed, sealed)
                position = start + 1 + index
                return RangeOutcome(
                    compared + index,
                    holes_seen,
                    classify(position, False, b"", covered),
                    first_hole,
                )
            compared += len(hashed)
            holes_seen += len(hashed)
            if first_hole is None:
                first_hole = start + 1
    return RangeOutcome(compared, holes_seen, None, first_hole)


def compare_range_in_process(
    spec: ReaderSpec, leaves_path: Path, low: int, high: int, covered: int, page_size: int
) -> RangeOutcome:
    """:func:`compare_range` in a worker process, on its own connection."""
    reader = spec.open()
    try:
        with LeafFile(leaves_path) as leaves:
            return compare_range(reader, leaves, low, high, covered, page_size)
    finally:
        reader.close()
