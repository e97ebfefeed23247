"""C2SP signed notes with Ed25519 keys (https://c2sp.org/signed-note).

A signed note is UTF-8 text ending in a newline, a blank line, and one or more
signature lines ``— <key name> <base64(key ID || signature)>``. Checkpoints
(:mod:`checkpoint`) are signed notes; using the same format as Go's checksum
database, Sigstore, Trillian/Tessera logs and their witnesses means auditors can
check our checkpoints with existing tools (e.g. ``golang.org/x/mod/sumdb/note``).

Only Ed25519 (signature type 0x01) is implemented. A key is published as a
*verifier key* string ``<name>+<hex key ID>+<base64(0x01 || public key)>``, the
form that Go's ``note.NewVerifier`` and the witness ecosystem accept.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

__all__ = [
    "ED25519_SIGNATURE_TYPE",
    "NoteError",
    "NoteSignature",
    "NoteVerificationError",
    "SignedNote",
    "VerifierKey",
    "is_valid_key_name",
    "key_id",
    "parse_note",
    "sign_note",
    "verifier_key_text",
    "verify_note",
]

ED25519_SIGNATURE_TYPE: Final = 0x01
"""Signature type identifier byte of Ed25519 in the signed-note spec."""

SIGNATURE_PREFIX: Final = "\u2014 "  # em dash, space
MAX_SIGNATURES: Final = 100
"""Parsing limit on signature lines; the spec requires accepting at least 16."""

_KEY_ID_SIZE: Final = 4
_ED25519_SIG_SIZE: Final = 64


class NoteError(ValueError):
    """A note, key or signature line is malformed."""


class NoteVerificationError(NoteError):
    """A note is well formed but not validly signed by the expected key."""


def is_valid_key_name(name: str) -> bool:
    """Tell whether ``name`` may be a key name: non-empty, no spaces, no ``+``."""
    return bool(name) and "+" not in name and not any(ch.isspace() for ch in name)


def _raw_public_key(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id(name: str, public_key: Ed25519PublicKey) -> bytes:
    """Return the 4-byte key ID ``SHA-256(name || 0x0A || 0x01 || public key)[:4]``.

    Signature lines carry it so that a verifier can tell which of its keys
    (if any) made a signature without trying them all.
    """
    material = bytes([ED25519_SIGNATURE_TYPE]) + _raw_public_key(public_key)
    return hashlib.sha256(name.encode() + b"\n" + material).digest()[:_KEY_ID_SIZE]


def _b64decode(text: str, what: str) -> bytes:
    """Strict standard base64: valid alphabet, padding, and canonical form."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error) as exc:
        raise NoteError(f"{what} is not valid base64") from exc
    if base64.b64encode(raw).decode("ascii") != text:
        raise NoteError(f"{what} is not canonical base64")
    return raw


@dataclass(frozen=True, slots=True, eq=False)
class VerifierKey:
    """A named Ed25519 public key that signed notes are checked against."""

    name: str
    public_key: Ed25519PublicKey

    def __post_init__(self) -> None:
        if not is_valid_key_name(self.name):
            raise NoteError(f"invalid key name {self.name!r}: empty, or has a space or '+'")

    def __eq__(self, other: object) -> bool:
        """Keys are equal when name and public key bytes are."""
        if not isinstance(other, VerifierKey):
            return NotImplemented
        return self.text() == other.text()

    def __hash__(self) -> int:
        """Hash of the verifier key string, consistent with ``==``."""
        return hash(self.text())

    @property
    def key_id(self) -> bytes:
        """The 4-byte key ID, see :func:`key_id`."""
        return key_id(self.name, self.public_key)

    @property
    def label(self) -> str:
        """``<name>+<hex key ID>``, how errors and logs refer to the key."""
        return f"{self.name}+{self.key_id.hex()}"

    def text(self) -> str:
        """Return the verifier key string ``<name>+<hex key ID>+<base64(0x01 || key)>``."""
        material = bytes([ED25519_SIGNATURE_TYPE]) + _raw_public_key(self.public_key)
        return f"{self.label}+{base64.b64encode(material).decode('ascii')}"

    @classmethod
    def parse(cls, text: str) -> VerifierKey:
        """Parse a verifier key string, checking its key ID against the key.

        Raise :class:`NoteError` if the text is not an Ed25519 verifier key or
        its key ID does not match the name and key it carries.
        """
        parts = text.strip().split("+", 2)
        if len(parts) != 3:
            raise NoteError("a verifier key has the form <name>+<hex key ID>+<base64 key>")
        name, id_hex, key_b64 = parts
        if len(id_hex) != 2 * _KEY_ID_SIZE:
            raise NoteError(f"verifier key ID {id_hex!r} is not 8 hex digits")
        try:
            stated_id = bytes.fromhex(id_hex)
        except ValueError as exc:
            raise NoteError(f"verifier key ID {id_hex!r} is not 8 hex digits") from exc
        material = _b64decode(key_b64, "verifier key material")
        if not material or material[0] != ED25519_SIGNATURE_TYPE:
            raise NoteError("verifier key is not an Ed25519 key (type byte 0x01)")
        if len(material) != 33:
            raise NoteError(f"Ed25519 verifier key is {len(material) - 1} bytes, not 32")
        key = cls(name, Ed25519PublicKey.from_public_bytes(material[1:]))
        if key.key_id != stated_id:
            raise NoteError(
                f"verifier key ID {id_hex} does not match its name and key "
                f"(expected {key.key_id.hex()})"
            )
        return key

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Tell whether ``signature`` is this key's Ed25519 signature of ``message``."""
        try:
            self.public_key.verify(signature, message)
        except InvalidSignature:
            return False
        return True


def verifier_key_text(name: str, public_key: Ed25519PublicKey) -> str:
    """Return the verifier key string for ``public_key`` under ``name``."""
    return VerifierKey(name, public_key).text()


@dataclass(frozen=True, slots=True)
class NoteSignature:
    """One signature line: key name, 4-byte key ID and the signature bytes."""

    key_name: str
    key_id: bytes
    signature: bytes

    def line(self) -> str:
        """Return the line ``— <name> <base64(key ID || signature)>\\n``."""
        blob = base64.b64encode(self.key_id + self.signature).decode("ascii")
        return f"{SIGNATURE_PREFIX}{self.key_name} {blob}\n"


@dataclass(frozen=True, slots=True)
class SignedNote:
    """A parsed, not yet verified, signed note: the signed text and its signatures."""

    text: str
    signatures: tuple[NoteSignature, ...]

    def encode(self) -> str:
        """Return the note in its text form."""
        return self.text + "\n" + "".join(s.line() for s in self.signatures)


def _check_text(text: str) -> None:
    """Valid UTF-8, no ASCII control characters except newline (spec, Format)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise NoteError("note is not valid UTF-8") from exc
    for ch in text:
        if ch < " " and ch != "\n":
            raise NoteError(f"note contains the control character {ch!r}")


def sign_note(text: str, private_key: Ed25519PrivateKey, key_name: str) -> str:
    """Sign ``text`` (which must end in a newline) and return the signed note."""
    if not text.endswith("\n"):
        raise NoteError("note text must end with a newline")
    _check_text(text)
    signer = VerifierKey(key_name, private_key.public_key())
    signature = private_key.sign(text.encode("utf-8"))
    return SignedNote(text, (NoteSignature(key_name, signer.key_id, signature),)).encode()


def parse_note(message: str | bytes) -> SignedNote:
    """Split a signed note into its text and signature lines, checking the syntax only.

    The text is everything up to and including the newline before the *last*
    blank line. Nothing is verified: use :func:`verify_note` before trusting it.
    """
    if isinstance(message, bytes):
        try:
            message = message.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise NoteError("note is not valid UTF-8") from exc
    _check_text(message)
    split = message.rfind("\n\n")
    if split < 0:
        raise NoteError("note has no blank line before its signatures")
    text, block = message[: split + 1], message[split + 2 :]
    if not block or not block.endswith("\n"):
        raise NoteError("note has no signature lines, or they do not end with a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"note has more than {MAX_SIGNATURES} signatures")
    signatures = []
    for number, line in enumerate(lines, 1):
        if not line.startswith(SIGNATURE_PREFIX):
            raise NoteError(f"signature line {number} does not start with an em dash and a space")
        name, sep, blob = line[len(SIGNATURE_PREFIX) :].partition(" ")
        if not sep or not is_valid_key_name(name) or not blob:
            raise NoteError(f"signature line {number} is not '— <key name> <base64>'")
        raw = _b64decode(blob, f"signature line {number}")
        if len(raw) <= _KEY_ID_SIZE:
            raise NoteError(f"signature line {number} is too short to hold a key ID and signature")
        signatures.append(NoteSignature(name, raw[:_KEY_ID_SIZE], raw[_KEY_ID_SIZE:]))
    return SignedNote(text, tuple(signatures))


def verify_note(message: str | bytes | SignedNote, verifier: VerifierKey) -> SignedNote:
    """Check that the note is signed by ``verifier`` and return it parsed.

    Signatures by other keys are ignored, as the spec requires (they may be
    witnesses' cosignatures or a rotated key). Raise
    :class:`NoteVerificationError` if no signature line is by this key (same
    name *and* key ID) or if any such line does not verify.
    """
    note = message if isinstance(message, SignedNote) else parse_note(message)
    wanted_id = verifier.key_id
    mine = [s for s in note.signatures if s.key_name == verifier.name and s.key_id == wanted_id]
    if not mine:
        found = ", ".join(f"{s.key_name}+{s.key_id.hex()}" for s in note.signatures)
        raise NoteVerificationError(
            f"note is not signed by key {verifier.label}; it is signed by: {found}"
        )
    signed_bytes = note.text.encode("utf-8")
    for sig in mine:
        if len(sig.signature) != _ED25519_SIG_SIZE or not verifier.verify(
            signed_bytes, sig.signature
        ):
            raise NoteVerificationError(
                f"invalid signature by key {verifier.label}: the note text or "
                "the signature was altered, or it was signed by another key"
            )
    return note
