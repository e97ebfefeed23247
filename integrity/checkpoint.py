"""Signed checkpoints of the audit log (https://c2sp.org/tlog-checkpoint).

A checkpoint is the log's signed statement "my first N records hash to root R".
Its body is three lines — origin, decimal tree size, base64 RFC 6962 root hash —
plus optional extension lines, each ending in a newline; it is published as a
C2SP signed note (:mod:`note`). Once a checkpoint is out, an inclusion proof
(:mod:`proof_check`) shows a record is covered by it and a consistency proof
shows a later checkpoint extends it, so rewriting history is detectable by
anyone holding an old checkpoint and the log's verifier key.

The example from the spec (body, blank line, signature)::

    example.com/behind-the-sofa
    20852163
    CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=

    — example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Z...

(signature shortened here).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from .note import (
    NoteError,
    NoteVerificationError,
    VerifierKey,
    is_valid_key_name,
    parse_note,
    sign_note,
    verifier_key_text,
    verify_note,
)

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "NoteVerificationError",
    "VerifierKey",
    "parse_checkpoint",
    "parse_checkpoint_body",
    "sign_checkpoint",
    "verifier_key_text",
    "verify_checkpoint",
]

_ROOT_HASH_SIZE: Final = 32
_MAX_TREE_SIZE: Final = (1 << 64) - 1
_DECIMAL = re.compile(r"0|[1-9][0-9]*")


class CheckpointError(NoteError):
    """A checkpoint body is malformed or is not the one that was expected."""


def _check_line(line: str, what: str) -> None:
    if not line:
        raise CheckpointError(f"checkpoint {what} is empty")
    for ch in line:
        if ch < " ":
            raise CheckpointError(f"checkpoint {what} contains the control character {ch!r}")


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A log's tree head: ``origin`` (log identity), tree ``size`` and ``root_hash``.

    ``extensions`` are the optional opaque lines after the root hash (the spec
    discourages them; they are kept so foreign checkpoints round-trip).
    """

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_line(self.origin, "origin")
        if not 0 <= self.size <= _MAX_TREE_SIZE:
            raise CheckpointError(f"checkpoint tree size {self.size} is not a uint64")
        if len(self.root_hash) != _ROOT_HASH_SIZE:
            raise CheckpointError(
                f"checkpoint root hash is {len(self.root_hash)} bytes, not {_ROOT_HASH_SIZE}"
            )
        for i, line in enumerate(self.extensions, 1):
            _check_line(line, f"extension line {i}")

    def body(self) -> str:
        """Return the note text: origin, size, base64 root, extensions, each + ``\\n``."""
        root = base64.b64encode(self.root_hash).decode("ascii")
        lines = [self.origin, str(self.size), root, *self.extensions]
        return "".join(line + "\n" for line in lines)


def parse_checkpoint_body(text: str) -> Checkpoint:
    """Parse a checkpoint body (the note text), strictly per the C2SP spec.

    Raise :class:`CheckpointError` on anything but a non-empty origin, a
    decimal size without leading zeros, a canonical base64 32-byte root hash,
    and non-empty extension lines, each ending in a newline.
    """
    if not text.endswith("\n"):
        raise CheckpointError("checkpoint body must end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise CheckpointError(
            f"checkpoint body has {len(lines)} lines, needs origin, tree size and root hash"
        )
    origin, size_text, root_text, *extensions = lines
    if not _DECIMAL.fullmatch(size_text):
        raise CheckpointError(
            f"checkpoint tree size {size_text!r} is not a decimal number without leading zeros"
        )
    try:
        root = base64.b64decode(root_text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error) as exc:
        raise CheckpointError(f"checkpoint root hash {root_text!r} is not base64") from exc
    if base64.b64encode(root).decode("ascii") != root_text:
        raise CheckpointError(f"checkpoint root hash {root_text!r} is not canonical base64")
    return Checkpoint(origin, int(size_text), root, tuple(extensions))


def sign_checkpoint(
    checkpoint: Checkpoint, private_key: Ed25519PrivateKey, key_name: str | None = None
) -> str:
    """Return ``checkpoint`` as a signed note, signed with ``private_key``.

    The key name defaults to the origin, as the spec recommends; pass one
    explicitly if the origin is not a valid key name (it has spaces or '+').
    """
    name = checkpoint.origin if key_name is None else key_name
    if not is_valid_key_name(name):
        raise CheckpointError(
            f"{name!r} cannot be a key name (empty, or has a space or '+'); pass key_name"
        )
    return sign_note(checkpoint.body(), private_key, name)


def parse_checkpoint(signed: str | bytes) -> Checkpoint:
    """Parse a signed checkpoint WITHOUT checking its signature.

    For display and diagnostics only; trust only :func:`verify_checkpoint`.
    """
    return parse_checkpoint_body(parse_note(signed).text)


def verify_checkpoint(
    signed: str | bytes, verifier: VerifierKey | str, *, origin: str | None = None
) -> Checkpoint:
    """Verify a signed checkpoint against the log's key and return its contents.

    ``verifier`` is a :class:`VerifierKey` or its string form
    ``<name>+<hex key ID>+<base64 key>``. If ``origin`` is given, the
    checkpoint must be for that log. Raise :class:`NoteVerificationError` if
    the note is not validly signed by that key, and :class:`CheckpointError` if
    the signed text is not a well-formed checkpoint or has another origin; both
    are :class:`note.NoteError` (a ``ValueError``).
    """
    key = VerifierKey.parse(verifier) if isinstance(verifier, str) else verifier
    note = verify_note(signed, key)
    checkpoint = parse_checkpoint_body(note.text)
    if origin is not None and checkpoint.origin != origin:
        raise CheckpointError(f"checkpoint is for log {checkpoint.origin!r}, expected {origin!r}")
    return checkpoint
