"""``check-proof``: check a proof file offline, with nothing but the file and the public key.

This is the auditor's side and is kept independent of the code that made the proof: it
uses only :mod:`proof_check` (the RFC 9162 verifier, written apart from :mod:`merkle`),
the signed-note checks of :mod:`checkpoint`/:mod:`note`, and its own re-implementation
of the leaf encoding below — not :mod:`leaf_encoding`, not :mod:`merkle`. A bug in the
prover is then unlikely to be repeated here.

The leaf input of an event (format ``sferum-audit/leaf/v1``) is::

    0x01 | position (8 bytes, big-endian, signed) | originator UUID (16 bytes)
         | originator version (8 bytes, big-endian, signed)
         | topic length (4 bytes, big-endian) | topic (UTF-8)
         | state length (4 bytes, big-endian) | state (the stored bytes)

and the leaf hash is ``SHA-256(0x00 || leaf input)``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

from sferum_audit.integrity.checkpoint import Checkpoint, verify_checkpoint
from sferum_audit.integrity.note import NoteError, VerifierKey
from sferum_audit.integrity.proof_check import (
    ProofError,
    hash_leaf,
    verify_consistency,
    verify_inclusion,
)

__all__ = ["CheckedProof", "ProofFileError", "check_proof", "check_proof_file", "leaf_of_event"]

_INCLUSION = "sferum-audit/inclusion-proof/v1"
_CONSISTENCY = "sferum-audit/consistency-proof/v1"
_LEAF_FORMAT = "sferum-audit/leaf/v1"


class ProofFileError(ValueError):
    """The proof file is not a well-formed proof, or it does not prove its claim."""


@dataclass(frozen=True, slots=True)
class CheckedProof:
    """What a proof established."""

    kind: str
    checkpoint: Checkpoint
    old_checkpoint: Checkpoint | None = None
    position: int | None = None
    event_type: str | None = None

    def describe(self) -> str:
        """One line for people."""
        cp = self.checkpoint
        root = base64.b64encode(cp.root_hash).decode("ascii")
        if self.kind == "inclusion":
            return (
                f"OK: the event at position {self.position} ({self.event_type}) is in the "
                f"log {cp.origin} of size {cp.size}, root {root}"
            )
        assert self.old_checkpoint is not None
        return (
            f"OK: the log {cp.origin} at size {cp.size} (root {root}) extends its "
            f"checkpoint at size {self.old_checkpoint.size}"
        )


def _field(doc: Mapping[str, Any], name: str, kind: type, where: str = "proof") -> Any:
    value = doc.get(name)
    if kind is int and isinstance(value, bool):
        value = None  # JSON true is not a number
    if not isinstance(value, kind):
        raise ProofFileError(f"{where} field {name!r} is missing or not a {kind.__name__}")
    return value


def _b64(text: object, what: str) -> bytes:
    if not isinstance(text, str):
        raise ProofFileError(f"{what} is not a base64 string")
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error):
        raise ProofFileError(f"{what} is not valid base64") from None
    return raw


def _hashes(values: object, what: str) -> list[bytes]:
    if not isinstance(values, list):
        raise ProofFileError(f"{what} is not a list")
    return [_b64(v, f"{what}[{i}]") for i, v in enumerate(values)]


def leaf_of_event(
    position: int, originator_id: UUID, version: int, topic: str, state: bytes
) -> bytes:
    """The leaf hash of an event, per the encoding in this module's docstring."""
    topic_bytes = topic.encode("utf-8")
    data = bytearray(b"\x01")
    data += position.to_bytes(8, "big", signed=True)
    data += originator_id.bytes
    data += version.to_bytes(8, "big", signed=True)
    data += len(topic_bytes).to_bytes(4, "big")
    data += topic_bytes
    data += len(state).to_bytes(4, "big")
    data += state
    return hash_leaf(bytes(data))


def _checkpoint(note: object, key: VerifierKey, what: str) -> Checkpoint:
    if not isinstance(note, str):
        raise ProofFileError(f"{what} is missing or not text")
    try:
        return verify_checkpoint(note, key, origin=key.name)
    except NoteError as exc:
        raise ProofFileError(f"{what}: {exc}") from None


def _check_inclusion(doc: Mapping[str, Any], key: VerifierKey) -> CheckedProof:
    leaf_format = doc.get("leaf_encoding", _LEAF_FORMAT)
    if leaf_format != _LEAF_FORMAT:
        raise ProofFileError(f"unknown leaf encoding {leaf_format!r}")
    checkpoint = _checkpoint(doc.get("checkpoint"), key, "checkpoint")
    position = _field(doc, "position", int)
    index = _field(doc, "leaf_index", int)
    size = _field(doc, "tree_size", int)
    event = _field(doc, "event", dict)
    if index != position - 1:
        raise ProofFileError(f"leaf index {index} is not position {position} - 1")
    if size != checkpoint.size:
        raise ProofFileError(
            f"the proof is for tree size {size} but its checkpoint is of size {checkpoint.size}"
        )
    if _field(event, "position", int, "event") != position:
        raise ProofFileError("the event's position is not the proof's position")
    try:
        originator = UUID(_field(event, "originator_id", str, "event"))
    except ValueError:
        raise ProofFileError("the event's originator_id is not a UUID") from None
    version = _field(event, "originator_version", int, "event")
    topic = _field(event, "topic", str, "event")
    state = _b64(event.get("state"), "the event's state")
    try:
        leaf = leaf_of_event(position, originator, version, topic, state)
    except (OverflowError, UnicodeEncodeError):
        raise ProofFileError("the event's fields are out of range for the leaf encoding") from None
    stated = doc.get("leaf_hash")
    if stated is not None and _b64(stated, "leaf_hash") != leaf:
        raise ProofFileError(
            "the event's fields do not hash to the stated leaf_hash: the event was altered"
        )
    path = _hashes(doc.get("audit_path"), "audit_path")
    try:
        verify_inclusion(leaf, index, size, path, checkpoint.root_hash)
    except ProofError as exc:
        raise ProofFileError(f"inclusion proof fails: {exc}") from None
    return CheckedProof(
        "inclusion", checkpoint, position=position, event_type=topic.rsplit(":", 1)[-1]
    )


def _check_consistency(doc: Mapping[str, Any], key: VerifierKey) -> CheckedProof:
    old = _checkpoint(doc.get("old_checkpoint"), key, "old_checkpoint")
    new = _checkpoint(doc.get("new_checkpoint"), key, "new_checkpoint")
    old_size = _field(doc, "old_size", int)
    new_size = _field(doc, "new_size", int)
    if (old_size, new_size) != (old.size, new.size):
        raise ProofFileError(
            f"the proof is for sizes {old_size} and {new_size} but its checkpoints are of "
            f"sizes {old.size} and {new.size}"
        )
    path = _hashes(doc.get("consistency_path"), "consistency_path")
    try:
        verify_consistency(old.size, new.size, old.root_hash, new.root_hash, path)
    except ProofError as exc:
        raise ProofFileError(f"consistency proof fails: {exc}") from None
    return CheckedProof("consistency", new, old_checkpoint=old)


def check_proof(document: Mapping[str, Any], public_key: VerifierKey | str) -> CheckedProof:
    """Check a parsed proof document against the log's public key.

    ``public_key`` is the verifier key string ``<origin>+<key ID>+<base64 key>`` (what
    ``sferum-audit public-key`` prints). Raise :class:`ProofFileError` saying what
    failed; return what the proof established.
    """
    try:
        key = public_key if isinstance(public_key, VerifierKey) else VerifierKey.parse(public_key)
    except NoteError as exc:
        raise ProofFileError(f"public key: {exc}") from None
    kind = document.get("format")
    if kind == _INCLUSION:
        return _check_inclusion(document, key)
    if kind == _CONSISTENCY:
        return _check_consistency(document, key)
    raise ProofFileError(f"unknown proof format {kind!r}")


def check_proof_file(path: Path, public_key: VerifierKey | str) -> CheckedProof:
    """Read the proof file at ``path`` and :func:`check_proof` it."""
    try:
        document = json.loads(path.read_bytes())
    except ValueError as exc:
        raise ProofFileError(f"{path} is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise ProofFileError(f"{path} does not hold a JSON object")
    return check_proof(document, public_key)
