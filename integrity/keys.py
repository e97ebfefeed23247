"""The log's Ed25519 signing key: load it, create it once, publish its public half.

The private key signs checkpoints; whoever holds it can sign a forged history,
so it lives in a file readable only by the owner (mode 0600) or comes from
configuration (a secret store). Its public half is published as a signed-note
verifier key string (see :func:`public_key_text`) for auditors.
"""

from __future__ import annotations

import base64
import binascii
import os
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_der_private_key,
    load_pem_private_key,
)

from .note import ED25519_SIGNATURE_TYPE, VerifierKey, verifier_key_text

__all__ = [
    "load_or_create_signing_key",
    "load_signing_key_from_text",
    "private_key_pem",
    "public_key_text",
]

_SEED_SIZE = 32


def private_key_pem(key: Ed25519PrivateKey) -> bytes:
    """Serialise ``key`` as unencrypted PKCS#8 PEM (``-----BEGIN PRIVATE KEY-----``)."""
    return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())


def _from_pkcs8(key: object) -> Ed25519PrivateKey:
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"signing key is a {type(key).__name__}, not an Ed25519 private key")
    return key


def _load_pem(data: bytes) -> Ed25519PrivateKey:
    try:
        return _from_pkcs8(load_pem_private_key(data, password=None))
    except TypeError as exc:  # cryptography's way of saying "it is encrypted"
        raise ValueError("signing key PEM is encrypted; an unencrypted key is expected") from exc


def load_or_create_signing_key(path: Path) -> Ed25519PrivateKey:
    """Read the PEM signing key at ``path``, generating it there on first use.

    A new key is written to a private temporary file (mode 0600) and then
    hard-linked into place, so the key file never exists half-written or with
    looser permissions, and if two processes start at once both end up with
    the one key that won. Raise ValueError if an existing file is not an
    unencrypted Ed25519 PEM key.
    """
    if not path.exists():
        _create_key_file(path)
    return _load_pem(path.read_bytes())


def _create_key_file(path: Path) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    pem = private_key_pem(Ed25519PrivateKey.generate())
    # mkstemp creates the file with mode 0600 (owner read/write only).
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as tmp:
            tmp.write(pem)
            tmp.flush()
            os.fsync(tmp.fileno())
        # link() fails if the target exists: a key created meanwhile by another
        # process is kept and read by the caller, never overwritten.
        try:
            os.link(tmp_name, path)
        except FileExistsError:
            pass
        except OSError:  # a filesystem without hard links
            _write_exclusive(path, pem)
    finally:
        os.unlink(tmp_name)


def _write_exclusive(path: Path, pem: bytes) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
        out.flush()
        os.fsync(out.fileno())


def load_signing_key_from_text(pem_or_base64: str) -> Ed25519PrivateKey:
    """Load a signing key given as text, e.g. from an environment variable.

    Accepted forms: a PKCS#8 PEM block; base64 of the 32-byte Ed25519 seed, of
    ``0x01 || seed`` or of PKCS#8 DER; or a Go ``golang.org/x/mod/sumdb/note``
    signer key ``PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 || seed)>``
    (whose key ID is checked). Error messages never echo the secret.
    """
    text = pem_or_base64.strip()
    if text.startswith("-----BEGIN"):
        return _load_pem(text.encode("ascii"))
    if text.startswith("PRIVATE+KEY+"):
        return _from_note_signer_key(text)
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error) as exc:
        raise ValueError("signing key text is neither PEM nor base64") from exc
    if len(raw) == _SEED_SIZE:
        return Ed25519PrivateKey.from_private_bytes(raw)
    if len(raw) == _SEED_SIZE + 1 and raw[0] == ED25519_SIGNATURE_TYPE:
        return Ed25519PrivateKey.from_private_bytes(raw[1:])
    try:
        return _from_pkcs8(load_der_private_key(raw, password=None))
    except (ValueError, TypeError) as exc:
        raise ValueError(
            f"signing key base64 decodes to {len(raw)} bytes that are neither an "
            "Ed25519 seed nor a PKCS#8 key"
        ) from exc


def _from_note_signer_key(text: str) -> Ed25519PrivateKey:
    parts = text.split("+", 4)
    if len(parts) != 5:
        raise ValueError("signer key must be PRIVATE+KEY+<name>+<hex key ID>+<base64 key>")
    _, _, name, id_hex, key_b64 = parts
    try:
        raw = base64.b64decode(key_b64.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error) as exc:
        raise ValueError("signer key material is not base64") from exc
    if len(raw) != _SEED_SIZE + 1 or raw[0] != ED25519_SIGNATURE_TYPE:
        raise ValueError("signer key is not an Ed25519 key (0x01 and a 32-byte seed)")
    key = Ed25519PrivateKey.from_private_bytes(raw[1:])
    if VerifierKey(name, key.public_key()).key_id.hex() != id_hex.lower():
        raise ValueError(f"signer key ID {id_hex!r} does not match the key and name {name!r}")
    return key


def public_key_text(key: Ed25519PrivateKey | Ed25519PublicKey, name: str) -> str:
    """Return the verifier key string ``<name>+<hex key ID>+<base64(0x01 || key)>``.

    This is what auditors configure to check our checkpoints; ``name`` should be
    the log's origin (the key name its checkpoints are signed under).
    """
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return verifier_key_text(name, public)
