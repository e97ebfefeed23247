"""The signing key: created once with private permissions, then reused; loadable from text."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import generate_private_key
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from sferum_audit.integrity.keys import (
    load_or_create_signing_key,
    load_signing_key_from_text,
    private_key_pem,
    public_key_text,
)
from sferum_audit.integrity.note import VerifierKey

# golang.org/x/mod sumdb/note/note_test.go (TestNewSigner / TestNewVerifier)
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"


def _raw_private(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())


def test_key_is_created_once_with_mode_0600_and_then_reused(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "checkpoint.pem"
    first = load_or_create_signing_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    second = load_or_create_signing_key(path)
    assert _raw_private(first) == _raw_private(second)
    assert [p.name for p in path.parent.iterdir()] == ["checkpoint.pem"]  # no temp files left


def test_an_existing_key_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.pem"
    existing = Ed25519PrivateKey.generate()
    path.write_bytes(private_key_pem(existing))
    assert _raw_private(load_or_create_signing_key(path)) == _raw_private(existing)


def test_a_key_file_that_is_not_ed25519_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "rsa.pem"
    rsa = generate_private_key(public_exponent=65537, key_size=2048)
    path.write_bytes(rsa.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    with pytest.raises(ValueError, match="not an Ed25519"):
        load_or_create_signing_key(path)


def test_an_encrypted_key_is_refused_clearly() -> None:
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, BestAvailableEncryption(b"passphrase")
    ).decode()
    with pytest.raises(ValueError, match="encrypted"):
        load_signing_key_from_text(pem)


def test_key_text_forms_all_load_the_same_key() -> None:
    key = Ed25519PrivateKey.generate()
    seed = _raw_private(key)
    der = key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())
    forms = [
        private_key_pem(key).decode(),
        "\n  " + private_key_pem(key).decode() + "\n",
        base64.b64encode(seed).decode(),
        base64.b64encode(b"\x01" + seed).decode(),
        base64.b64encode(der).decode(),
    ]
    for text in forms:
        assert _raw_private(load_signing_key_from_text(text)) == seed


def test_go_note_signer_key_loads_and_gives_the_go_verifier_key() -> None:
    key = load_signing_key_from_text(PETER_SKEY)
    assert public_key_text(key, "PeterNeumann") == PETER_VKEY
    assert public_key_text(key.public_key(), "PeterNeumann") == PETER_VKEY
    assert VerifierKey.parse(PETER_VKEY).public_key.public_bytes(
        Encoding.Raw, PublicFormat.Raw
    ) == key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


@pytest.mark.parametrize(
    "text",
    [
        PETER_SKEY.replace("c74f20a3", "c74f20a4"),  # key ID does not match
        PETER_SKEY.replace("PeterNeumann", "PeterNeuman"),  # name does not match
        PETER_SKEY[:-4],
        "not a key at all!",
        base64.b64encode(b"\x02" + bytes(32)).decode(),
        base64.b64encode(bytes(31)).decode(),
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    ],
)
def test_bad_key_text_is_refused_without_echoing_it(text: str) -> None:
    with pytest.raises(ValueError) as caught:
        load_signing_key_from_text(text)
    secret_part = text.rsplit("+", 1)[-1][-16:]
    assert secret_part not in str(caught.value)
