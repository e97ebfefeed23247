"""Signed notes and checkpoints against the published C2SP / Go vectors, plus round trips.

Fixed-key vectors, not produced by our code:

* PeterNeumann / EnochRoot keys, the signed "cryptography" note and its exact
  signature lines: golang.org/x/mod sumdb/note/note_test.go (TestNewSigner,
  TestSign, TestOpen) and the package documentation in sumdb/note/note.go.
* The sum.golang.org verifier key: golang/go src/cmd/go/internal/modfetch/key.go.
* A real checkpoint signed by sum.golang.org: transparency-dev/trillian-tessera
  internal/parse/parse_test.go (BenchmarkCheckpointUnsafe; the string there lacks
  the final newline of the signature line, which the note format requires).
* The checkpoint example: C2SP tlog-checkpoint.md.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import replace

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from sferum_audit.integrity.checkpoint import (
    Checkpoint,
    CheckpointError,
    NoteVerificationError,
    VerifierKey,
    parse_checkpoint,
    parse_checkpoint_body,
    sign_checkpoint,
    verifier_key_text,
    verify_checkpoint,
)
from sferum_audit.integrity.keys import load_signing_key_from_text
from sferum_audit.integrity.merkle import root_hash
from sferum_audit.integrity.note import (
    NoteError,
    SignedNote,
    key_id,
    parse_note,
    sign_note,
    verify_note,
)

PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
PETER_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
PETER_SIG = (
    "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6"
    "KE6RyyBwJnAM=\n"
)
ENOCH_SIG = (
    "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33"
    "WWd1RvMc+QQ=\n"
)

SUMDB_VKEY = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"
SUMDB_CHECKPOINT = (
    "go.sum database tree\n"
    "31700353\n"
    "qINS1GRFhWHwdkUeqLEoP4yEMkTBBzxBkGwGQlVlVcs=\n"
    "\n"
    "— sum.golang.org Az3grnmrIUEDFqHzAElIQCPNoRFRAAdFo47fooyWKMHb89k11GJh5zHIfNCOBmwn/C3YI8oW9/C8"
    "DJ87F61QqspBYwM=\n"
)

C2SP_EXAMPLE = (
    "example.com/behind-the-sofa\n"
    "20852163\n"
    "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    "\n"
    "— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q"
    "1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
)

ORIGIN = "sferum-audit.example/school-42"


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def _raw(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


# --- signed-note vectors (golang.org/x/mod/sumdb/note) -------------------------------


def test_signing_with_the_go_test_key_reproduces_the_go_signature() -> None:
    peter = load_signing_key_from_text(PETER_SKEY)
    assert sign_note(PETER_TEXT, peter, "PeterNeumann") == PETER_TEXT + "\n" + PETER_SIG
    assert verifier_key_text("PeterNeumann", peter.public_key()) == PETER_VKEY


def test_key_id_is_sha256_of_name_newline_type_and_key() -> None:
    peter = load_signing_key_from_text(PETER_SKEY)
    expected = hashlib.sha256(b"PeterNeumann\n\x01" + _raw(peter)).digest()[:4]
    assert key_id("PeterNeumann", peter.public_key()) == expected == bytes.fromhex("c74f20a3")


def test_go_verifier_keys_parse_and_print_back() -> None:
    for text in (PETER_VKEY, ENOCH_VKEY, SUMDB_VKEY):
        assert VerifierKey.parse(text).text() == text
    assert VerifierKey.parse(PETER_VKEY) == VerifierKey.parse(PETER_VKEY + "\n")
    assert len({VerifierKey.parse(PETER_VKEY), VerifierKey.parse(PETER_VKEY)}) == 1
    assert VerifierKey.parse(PETER_VKEY) != VerifierKey.parse(ENOCH_VKEY)


def test_note_with_two_signatures_verifies_against_each_key_alone() -> None:
    message = PETER_TEXT + "\n" + PETER_SIG + ENOCH_SIG
    note = parse_note(message)
    assert note.text == PETER_TEXT
    assert [(s.key_name, s.key_id.hex()) for s in note.signatures] == [
        ("PeterNeumann", "c74f20a3"),
        ("EnochRoot", "af0cfe78"),
    ]
    assert note.encode() == message
    assert verify_note(message, VerifierKey.parse(PETER_VKEY)).text == PETER_TEXT
    assert verify_note(message, VerifierKey.parse(ENOCH_VKEY)).text == PETER_TEXT


def test_a_note_not_signed_by_the_key_is_rejected() -> None:
    with pytest.raises(NoteVerificationError, match=r"not signed by key EnochRoot\+af0cfe78"):
        verify_note(PETER_TEXT + "\n" + PETER_SIG, VerifierKey.parse(ENOCH_VKEY))


def test_a_bad_signature_by_a_known_key_rejects_the_note() -> None:
    # note_test.go TestOpen "Invalid signature": four base64 characters spliced in.
    tampered = PETER_SIG[:60] + "ABCD" + PETER_SIG[60:]
    with pytest.raises(NoteVerificationError, match="invalid signature"):
        verify_note(PETER_TEXT + "\n" + tampered + ENOCH_SIG, VerifierKey.parse(PETER_VKEY))


@pytest.mark.parametrize(
    "message",
    [
        # note_test.go TestOpen "Invalid encoded message syntax"
        PETER_TEXT,
        PETER_TEXT + "\n",
        PETER_TEXT + "\n" + PETER_SIG[:-1],
        "\x01" + PETER_TEXT + "\n" + PETER_SIG,
        PETER_TEXT + "\n" + "— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFY"
        "C2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=",
        PETER_TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
        PETER_TEXT + "\n" + PETER_SIG * 101,
    ],
)
def test_malformed_notes_are_rejected(message: str) -> None:
    with pytest.raises(NoteError):
        parse_note(message)


def test_non_canonical_base64_is_rejected() -> None:
    # The last character before "=" of a 68-byte blob has 2 unused bits; "M" -> "N" sets one,
    # which lenient decoders ignore (the same bytes, a different text).
    assert PETER_SIG.endswith("nAM=\n")
    assert base64.b64decode("nAN=") == base64.b64decode("nAM=")
    with pytest.raises(NoteError, match="canonical"):
        parse_note(PETER_TEXT + "\n" + PETER_SIG.replace("nAM=", "nAN="))


def test_invalid_utf8_is_rejected() -> None:
    with pytest.raises(NoteError, match="UTF-8"):
        parse_note(b"\xff" + (PETER_TEXT + "\n" + PETER_SIG).encode())


@pytest.mark.parametrize(
    "text",
    [
        # note_test.go TestNewVerifier: wrong length key / unknown algorithm with adjusted hashes
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        PETER_VKEY.replace("c74f20a3", "c74f20a4"),
        PETER_VKEY.replace("PeterNeumann", "PeterNeuman"),
        PETER_VKEY[:-1],
        "PeterNeumann+c74f20a3",
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ],
)
def test_bad_verifier_keys_are_rejected(text: str) -> None:
    with pytest.raises(NoteError):
        VerifierKey.parse(text)


# --- real checkpoints --------------------------------------------------------------------


def test_a_real_sum_golang_org_checkpoint_verifies() -> None:
    cp = verify_checkpoint(SUMDB_CHECKPOINT, SUMDB_VKEY, origin="go.sum database tree")
    assert cp.origin == "go.sum database tree"
    assert cp.size == 31700353
    assert cp.root_hash == base64.b64decode("qINS1GRFhWHwdkUeqLEoP4yEMkTBBzxBkGwGQlVlVcs=")
    assert cp.extensions == ()


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("31700353", "31700354"),
        ("qINS1", "rINS1"),
        ("go.sum", "Go.sum"),
        ("Az3grnmr", "Az3grnms"),
    ],
)
def test_a_changed_real_checkpoint_fails(old: str, new: str) -> None:
    with pytest.raises(NoteError):
        verify_checkpoint(SUMDB_CHECKPOINT.replace(old, new, 1), SUMDB_VKEY)


def test_the_c2sp_example_parses() -> None:
    cp = parse_checkpoint(C2SP_EXAMPLE)
    assert cp == Checkpoint(
        "example.com/behind-the-sofa",
        20852163,
        base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="),
    )
    [sig] = parse_note(C2SP_EXAMPLE).signatures
    assert sig.key_name == "example.com/behind-the-sofa"
    assert len(sig.signature) == 64
    assert cp.body() == C2SP_EXAMPLE.split("\n\n")[0] + "\n"


# --- our own checkpoints ---------------------------------------------------------------------


def _checkpoint(size: int = 3) -> Checkpoint:
    leaves = [hashlib.sha256(b"\x00" + bytes([i])).digest() for i in range(size)]
    return Checkpoint(ORIGIN, size, root_hash(leaves))


def test_round_trip_sign_parse_verify(key: Ed25519PrivateKey) -> None:
    cp = _checkpoint()
    signed = sign_checkpoint(cp, key)
    assert parse_checkpoint(signed) == cp
    assert verify_checkpoint(signed, VerifierKey(ORIGIN, key.public_key()), origin=ORIGIN) == cp
    assert verify_checkpoint(signed.encode(), verifier_key_text(ORIGIN, key.public_key())) == cp


def test_text_form_matches_the_spec(key: Ed25519PrivateKey) -> None:
    cp = _checkpoint(7)
    signed = sign_checkpoint(cp, key)
    body, sep, sigs = signed.partition("\n\n")
    assert sep == "\n\n"
    assert body.split("\n") == [ORIGIN, "7", base64.b64encode(cp.root_hash).decode()]
    assert signed.endswith("\n")
    assert sigs.count("\n") == 1
    prefix, name, blob = sigs[:-1].split(" ")
    assert prefix == "\u2014"  # em dash, then a space
    assert name == ORIGIN
    raw = base64.b64decode(blob, validate=True)
    assert len(raw) == 4 + 64
    assert raw[:4] == hashlib.sha256(ORIGIN.encode() + b"\n\x01" + _raw(key)).digest()[:4]
    key.public_key().verify(raw[4:], (body + "\n").encode())


def test_every_changed_byte_of_the_body_fails(key: Ed25519PrivateKey) -> None:
    signed = sign_checkpoint(_checkpoint(5), key)
    verifier = VerifierKey(ORIGIN, key.public_key())
    body_length = signed.index("\n\n") + 1
    accepted = []
    for i in range(body_length):
        ch = signed[i]
        replacement = "0" if ch != "0" else "1"
        if ch == "\n":
            replacement = " "
        tampered = signed[:i] + replacement + signed[i + 1 :]
        try:
            verify_checkpoint(tampered, verifier)
        except NoteError:
            continue
        accepted.append(i)
    assert accepted == []


def test_a_wrong_key_fails(key: Ed25519PrivateKey) -> None:
    signed = sign_checkpoint(_checkpoint(), key)
    other = Ed25519PrivateKey.generate()
    with pytest.raises(NoteVerificationError, match="not signed by key"):
        verify_checkpoint(signed, VerifierKey(ORIGIN, other.public_key()))
    # Same name and the expected key ID on the line, but made by another key.
    by_other = parse_note(sign_checkpoint(_checkpoint(), other))
    forged = SignedNote(
        by_other.text,
        (replace(by_other.signatures[0], key_id=key_id(ORIGIN, key.public_key())),),
    ).encode()
    with pytest.raises(NoteVerificationError, match="invalid signature"):
        verify_checkpoint(forged, VerifierKey(ORIGIN, key.public_key()))


def test_a_wrong_origin_fails(key: Ed25519PrivateKey) -> None:
    signed = sign_checkpoint(_checkpoint(), key)
    with pytest.raises(CheckpointError, match=r"expected 'another\.example/log'"):
        verify_checkpoint(
            signed, VerifierKey(ORIGIN, key.public_key()), origin="another.example/log"
        )


def test_cosignatures_by_other_keys_are_ignored(key: Ed25519PrivateKey) -> None:
    signed = sign_checkpoint(_checkpoint(), key)
    witness = sign_note(_checkpoint().body(), Ed25519PrivateKey.generate(), "witness.example")
    both = signed + witness.partition("\n\n")[2]
    assert verify_checkpoint(both, VerifierKey(ORIGIN, key.public_key())) == _checkpoint()


def test_extension_lines_round_trip(key: Ed25519PrivateKey) -> None:
    cp = Checkpoint(ORIGIN, 0, root_hash([]), ("ext one", "ext two"))
    signed = sign_checkpoint(cp, key)
    assert verify_checkpoint(signed, VerifierKey(ORIGIN, key.public_key())) == cp


def test_an_origin_with_spaces_needs_an_explicit_key_name(key: Ed25519PrivateKey) -> None:
    cp = Checkpoint("go.sum database tree", 1, bytes(32))
    with pytest.raises(CheckpointError, match="key name"):
        sign_checkpoint(cp, key)
    signed = sign_checkpoint(cp, key, key_name="sum.example")
    assert verify_checkpoint(signed, VerifierKey("sum.example", key.public_key())) == cp


ROOT_B64 = "qINS1GRFhWHwdkUeqLEoP4yEMkTBBzxBkGwGQlVlVcs="


@pytest.mark.parametrize(
    "body",
    [
        f"log\n42\n{ROOT_B64}",  # no final newline
        "log\n42\n",  # no root
        f"\n42\n{ROOT_B64}\n",  # empty origin
        f"log\n042\n{ROOT_B64}\n",  # leading zero
        f"log\n-42\n{ROOT_B64}\n",
        f"log\n+42\n{ROOT_B64}\n",
        f"log\n 42\n{ROOT_B64}\n",
        f"log\n4_2\n{ROOT_B64}\n",
        f"log\n\u0664\u0662\n{ROOT_B64}\n",  # Arabic-Indic digits: int() would take them
        f"log\n18446744073709551616\n{ROOT_B64}\n",  # 2**64
        "log\n42\nthisisnotright\n",
        "log\n42\nAAAA\n",  # base64, but 3 bytes
        f"log\n42\n{ROOT_B64[:-2]}\n",  # missing padding
        f"log\n42\n{ROOT_B64[:-2]}t=\n",  # non-canonical trailing bits
        f"log\n42\n{ROOT_B64}\n\n",  # empty extension line
    ],
)
def test_malformed_bodies_are_rejected(body: str) -> None:
    with pytest.raises(CheckpointError):
        parse_checkpoint_body(body)


def test_largest_size_and_zero_parse() -> None:
    assert parse_checkpoint_body(f"log\n0\n{ROOT_B64}\n").size == 0
    assert parse_checkpoint_body(f"log\n18446744073709551615\n{ROOT_B64}\n").size == 2**64 - 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"origin": "", "size": 1, "root_hash": bytes(32)},
        {"origin": "a\nb", "size": 1, "root_hash": bytes(32)},
        {"origin": "log", "size": -1, "root_hash": bytes(32)},
        {"origin": "log", "size": 1, "root_hash": bytes(31)},
        {"origin": "log", "size": 1, "root_hash": bytes(32), "extensions": ("",)},
    ],
)
def test_invalid_checkpoints_cannot_be_made(kwargs: dict[str, object]) -> None:
    with pytest.raises(CheckpointError):
        Checkpoint(**kwargs)  # type: ignore[arg-type]
