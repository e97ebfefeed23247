"""Proof files: an inclusion proof for one event, a consistency proof between checkpoints.

Both are JSON objects that an auditor checks with nothing but the file and the log's
public key (``sferum-audit check-proof``, :mod:`offline_check`).

Inclusion proof (``"format": "sferum-audit/inclusion-proof/v1"``)::

    {
      "format": "sferum-audit/inclusion-proof/v1",
      "leaf_encoding": "sferum-audit/leaf/v1",
      "position": 42,                      # the event's global position (1-based)
      "leaf_index": 41,                    # position - 1
      "event": {                           # the stored record, as stored
        "position": 42,
        "originator_id": "<UUID>",
        "originator_version": 3,
        "topic": "<module:QualName>",
        "state": "<base64 of the stored bytes>"
      },
      "event_type": "Chat.ContentRemoved", # for people; not part of the proof
      "leaf_hash": "<base64>",             # SHA-256(0x00 || leaf input), see leaf_encoding
      "tree_size": 100,                    # = the checkpoint's size
      "audit_path": ["<base64>", ...],     # RFC 9162 inclusion path, leaf upwards
      "checkpoint": "<C2SP signed checkpoint text>"
    }

Consistency proof (``"format": "sferum-audit/consistency-proof/v1"``)::

    {
      "format": "sferum-audit/consistency-proof/v1",
      "old_size": 50, "new_size": 100,
      "old_checkpoint": "<signed text>", "new_checkpoint": "<signed text>",
      "consistency_path": ["<base64>", ...]  # RFC 9162 consistency path
    }

The stored bytes of an event hold its personal fields sealed with the data subject's
key, so a proof carries no readable personal data, and it stays valid after the key is
destroyed: the leaf is over the sealed bytes.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any
from uuid import UUID

from sferum_audit.integrity.checkpoint import Checkpoint
from sferum_audit.integrity.evidence import CheckpointEntry, CheckpointLog, LeafFile
from sferum_audit.integrity.leaf_encoding import (
    LeafEncodingError,
    originator_id_bytes,
    row_leaf_hash,
)
from sferum_audit.integrity.merkle import MerkleProver
from sferum_audit.integrity.settings import IntegrityPaths
from sferum_audit.integrity.store_reader import StoreReader

__all__ = [
    "CONSISTENCY_FORMAT",
    "INCLUSION_FORMAT",
    "LEAF_ENCODING",
    "NotSealedError",
    "ProofBuildError",
    "consistency_proof_document",
    "inclusion_proof_document",
    "write_document",
]

INCLUSION_FORMAT = "sferum-audit/inclusion-proof/v1"
CONSISTENCY_FORMAT = "sferum-audit/consistency-proof/v1"
LEAF_ENCODING = "sferum-audit/leaf/v1"


class ProofBuildError(ValueError):
    """A proof cannot be made: the position, sizes or evidence do not allow it."""


class NotSealedError(ProofBuildError):
    """No signed checkpoint covers the position yet (run the sealer first)."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _entries(paths: IntegrityPaths) -> list[CheckpointEntry]:
    entries, _ = CheckpointLog(paths.checkpoints).read()
    return entries


def _prover_checked(leaves: LeafFile, checkpoint: Checkpoint) -> MerkleProver:
    prover = MerkleProver(leaves.leaf)
    if leaves.count() < checkpoint.size or prover.root(checkpoint.size) != checkpoint.root_hash:
        raise ProofBuildError(
            f"{leaves.path} does not reproduce the checkpoint of size {checkpoint.size}; "
            "run `sferum-audit verify`"
        )
    return prover


def inclusion_proof_document(reader: StoreReader, data_dir: Path, position: int) -> dict[str, Any]:
    """The inclusion proof of the event at ``position`` in the latest signed checkpoint.

    Raise :class:`NotSealedError` if no checkpoint covers it yet, and
    :class:`ProofBuildError` if there is no event there, or the store no longer holds
    what was sealed there.
    """
    if position < 1:
        raise ProofBuildError(f"positions start at 1, not {position}")
    rows = reader.rows(position - 1, position, 1)
    if not rows:
        raise ProofBuildError(f"the store holds no event at position {position}")
    row = rows[0]
    paths = IntegrityPaths.of(data_dir)
    entries = _entries(paths)
    latest = max(entries, key=lambda e: e.checkpoint.size, default=None)
    if latest is None or latest.checkpoint.size < position:
        covered = latest.checkpoint.size if latest else 0
        raise NotSealedError(
            f"position {position} is not covered by a signed checkpoint yet (the latest "
            f"covers 1..{covered}); run `sferum-audit seal`"
        )
    try:
        leaf = row_leaf_hash(row)
        oid = UUID(bytes=originator_id_bytes(row[1]))
    except LeafEncodingError as exc:
        raise ProofBuildError(f"the event at position {position} is malformed: {exc}") from None
    checkpoint = latest.checkpoint
    with LeafFile(paths.leaves) as leaves:
        if leaves.count() < position or leaves.leaf(position - 1) != leaf:
            raise ProofBuildError(
                f"the stored event at position {position} is not the one that was sealed; "
                "run `sferum-audit verify`"
            )
        prover = _prover_checked(leaves, checkpoint)
        path = prover.inclusion_proof(position - 1, checkpoint.size)
    topic = str(row[3])
    state = bytes(row[4])
    return {
        "format": INCLUSION_FORMAT,
        "leaf_encoding": LEAF_ENCODING,
        "position": position,
        "leaf_index": position - 1,
        "event": {
            "position": position,
            "originator_id": str(oid),
            "originator_version": int(row[2]),
            "topic": topic,
            "state": _b64(state),
        },
        "event_type": topic.rsplit(":", 1)[-1],
        "leaf_hash": _b64(leaf),
        "tree_size": checkpoint.size,
        "audit_path": [_b64(node) for node in path],
        "checkpoint": latest.note,
    }


def consistency_proof_document(data_dir: Path, old_size: int, new_size: int) -> dict[str, Any]:
    """The proof that the checkpoint of ``new_size`` extends the one of ``old_size``.

    Both sizes must be sizes of signed checkpoints in the log.
    """
    if not 0 <= old_size <= new_size:
        raise ProofBuildError(f"cannot prove size {old_size} is a prefix of size {new_size}")
    paths = IntegrityPaths.of(data_dir)
    by_size = {e.checkpoint.size: e for e in _entries(paths)}
    missing = [size for size in (old_size, new_size) if size not in by_size]
    if missing:
        known = ", ".join(map(str, sorted(by_size)[-10:])) or "none"
        raise ProofBuildError(
            f"no signed checkpoint of size {missing[0]}; checkpoint sizes are (latest ten): {known}"
        )
    old, new = by_size[old_size], by_size[new_size]
    with LeafFile(paths.leaves) as leaves:
        prover = _prover_checked(leaves, new.checkpoint)
        if prover.root(old_size) != old.checkpoint.root_hash:
            raise ProofBuildError(
                f"{leaves.path} does not reproduce the checkpoint of size {old_size}; "
                "run `sferum-audit verify`"
            )
        path = prover.consistency_proof(old_size, new_size)
    return {
        "format": CONSISTENCY_FORMAT,
        "old_size": old_size,
        "new_size": new_size,
        "old_checkpoint": old.note,
        "new_checkpoint": new.note,
        "consistency_path": [_b64(node) for node in path],
    }


def write_document(document: dict[str, Any], path: Path) -> None:
    """Write a proof (or any JSON document) to ``path`` atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
