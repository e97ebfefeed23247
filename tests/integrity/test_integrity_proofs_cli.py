"""``seal``, ``verify``, ``prove``, ``check-proof`` and ``public-key`` on the command line:
proofs are checked offline with nothing but the file and the public key."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from integrity_helpers import Cli, SealedLog, head, one_error_line, record_school

from sferum_audit.application.settings import Settings
from sferum_audit.integrity.keys import public_key_text
from sferum_audit.integrity.offline_check import ProofFileError, check_proof

ORIGIN = "test.example/sferum-audit"


@pytest.fixture
def cli(sealed: SealedLog) -> Cli:
    return Cli(sealed.settings)


def public_key(cli: Cli) -> str:
    result = cli("public-key")
    assert result.exit_code == 0, result.output
    return str(result.stdout.strip())


def prove(cli: Cli, tmp_path: Path, *args: str) -> dict[str, Any]:
    out = tmp_path / f"proof-{'-'.join(args)}.json"
    result = cli("prove", *args, "-o", str(out))
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(out.read_text())
    return document


def test_seal_verify_and_public_key(sqlite_settings: Settings, unique: str) -> None:
    from sferum_audit.application.bootstrap import build_audit_log

    app = build_audit_log(sqlite_settings)
    record_school(app, f"s{unique}", 30)
    cli = Cli(sqlite_settings)
    unsealed = cli("verify")
    one_error_line(unsealed, "no signed checkpoints", "sferum-audit seal")
    sealed = cli("seal")
    assert sealed.exit_code == 0, sealed.output
    assert f"signed checkpoint at size {head(app)}" in sealed.stdout
    key = public_key(cli)
    assert key.startswith("sferum-audit/")
    assert len(key.split("+", 2)) == 3
    verified = cli("verify", "--public-key", key)
    assert verified.exit_code == 0, verified.output
    assert verified.stdout.startswith(f"OK: positions 1..{head(app)} match 1 signed checkpoints")
    app.close()


def test_verify_names_the_first_bad_position_and_exits_1(sealed: SealedLog, cli: Cli) -> None:
    sealed.dba.flip_byte(17)
    result = cli("verify")
    one_error_line(result, "FAILED: first bad position 17", "differs from the sealed record")
    assert "changed: the stored event at position 17" in result.stdout


def test_prove_and_check_an_event_with_the_public_key_only(
    sealed: SealedLog, cli: Cli, tmp_path: Path
) -> None:
    proof = prove(cli, tmp_path, "12")
    assert proof["format"] == "sferum-audit/inclusion-proof/v1"
    assert proof["position"] == 12
    assert proof["leaf_index"] == 11
    assert proof["tree_size"] == head(sealed.app)
    assert proof["checkpoint"].startswith(f"{ORIGIN}\n{head(sealed.app)}\n")
    key_file = tmp_path / "log.pub"
    key_file.write_text(public_key(cli) + "\n")
    # The auditor's side: a store that is not even there.
    auditor = Cli(Settings(data_dir=tmp_path / "nothing-here"))
    result = auditor("check-proof", str(tmp_path / "proof-12.json"), "--public-key", str(key_file))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("OK: the event at position 12 (")
    assert not (tmp_path / "nothing-here" / "integrity").exists()


def test_prove_writes_to_stdout_and_seals_what_is_not_sealed_yet(
    sealed: SealedLog, cli: Cli
) -> None:
    record_school(sealed.app, f"{sealed.school}-b", 10)
    position = head(sealed.app)
    result = cli("prove", str(position))
    assert result.exit_code == 0, result.output
    proof = json.loads(result.stdout)
    assert proof["tree_size"] == position
    assert check_proof(proof, public_key(cli)).position == position


def alter_state(proof: dict[str, Any]) -> None:
    state = bytearray(base64.b64decode(proof["event"]["state"]))
    state[3] ^= 1
    proof["event"]["state"] = base64.b64encode(bytes(state)).decode()


def alter_path(proof: dict[str, Any]) -> None:
    node = bytearray(base64.b64decode(proof["audit_path"][0]))
    node[0] ^= 1
    proof["audit_path"][0] = base64.b64encode(bytes(node)).decode()


def alter_position(proof: dict[str, Any]) -> None:
    proof["position"] += 1
    proof["leaf_index"] += 1
    proof["event"]["position"] += 1


def alter_checkpoint(proof: dict[str, Any]) -> None:
    proof["checkpoint"] = proof["checkpoint"].replace("\n", "\n1", 1)


def alter_leaf(proof: dict[str, Any]) -> None:
    proof["event"]["originator_version"] += 1
    del proof["leaf_hash"]


def drop_path(proof: dict[str, Any]) -> None:
    proof["audit_path"] = proof["audit_path"][:-1]


@pytest.mark.parametrize(
    ("alter", "message"),
    [
        (alter_state, "do not hash to the stated leaf_hash"),
        (alter_path, "leads to root"),
        (alter_position, "do not hash to the stated leaf_hash"),
        (alter_checkpoint, "invalid signature"),
        (alter_leaf, "leads to root"),
        (drop_path, "too few"),
    ],
)
def test_a_tampered_proof_file_fails(
    sealed: SealedLog, cli: Cli, tmp_path: Path, alter: Any, message: str
) -> None:
    proof = prove(cli, tmp_path, "33")
    alter(proof)
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(proof))
    result = cli("check-proof", str(forged), "--public-key", public_key(cli))
    one_error_line(result, "proof does not hold", message)


def test_a_proof_fails_with_another_key(sealed: SealedLog, cli: Cli, tmp_path: Path) -> None:
    proof = prove(cli, tmp_path, "5")
    other = public_key_text(Ed25519PrivateKey.generate(), ORIGIN)
    with pytest.raises(ProofFileError, match=r"not signed by key|invalid signature"):
        check_proof(proof, other)
    with pytest.raises(ProofFileError, match="public key"):
        check_proof(proof, "not a key")


def test_consistency_proof_between_two_checkpoints(
    sealed: SealedLog, cli: Cli, tmp_path: Path
) -> None:
    old = head(sealed.app)
    record_school(sealed.app, f"{sealed.school}-b", 15)
    assert cli("seal").exit_code == 0
    new = head(sealed.app)
    proof = prove(cli, tmp_path, "--consistency", str(old), str(new))
    assert (proof["old_size"], proof["new_size"]) == (old, new)
    path = tmp_path / f"proof---consistency-{old}-{new}.json"
    result = cli("check-proof", str(path), "--public-key", public_key(cli))
    assert result.exit_code == 0, result.output
    assert f"at size {new}" in result.stdout
    assert f"checkpoint at size {old}" in result.stdout
    node = bytearray(base64.b64decode(proof["consistency_path"][0]))
    node[5] ^= 1
    proof["consistency_path"][0] = base64.b64encode(bytes(node)).decode()
    with pytest.raises(ProofFileError, match="consistency proof fails"):
        check_proof(proof, public_key(cli))


def test_prove_errors_are_one_line(sealed: SealedLog, cli: Cli, tmp_path: Path) -> None:
    size = head(sealed.app)
    one_error_line(cli("prove", "--consistency", "3", str(size)), "no signed checkpoint of size 3")
    one_error_line(cli("prove", str(size + 50)), "no event at position")
    one_error_line(cli("prove"), "give either POSITION or --consistency", exit_code=2)
    sealed.dba.flip_byte(8)
    one_error_line(cli("prove", "8"), "not the one that was sealed")
    missing = cli("check-proof", str(tmp_path / "absent.json"), "--public-key", "x+1+y")
    assert missing.exit_code != 0
    assert "Traceback" not in missing.output
    garbage = tmp_path / "garbage.json"
    garbage.write_text("[1, 2]")
    one_error_line(cli("check-proof", str(garbage), "--public-key", public_key(cli)), "JSON object")


def test_a_kept_checkpoint_is_checked_by_verify(
    sealed: SealedLog, cli: Cli, tmp_path: Path
) -> None:
    kept = tmp_path / "kept.txt"
    printed = cli("checkpoint")
    assert printed.exit_code == 0, printed.output
    assert printed.stdout.startswith(f"{ORIGIN}\n{head(sealed.app)}\n")
    kept.write_text(printed.stdout)
    result = cli("verify", "--checkpoint", str(kept))
    assert result.exit_code == 0, result.output
    assert "match 1 signed checkpoints" in result.stdout  # the same checkpoint, counted once
    one_error_line(cli("checkpoint", "--size", "3"), "not a checkpoint of size 3")
    sealed.dba.flip_byte(head(sealed.app))
    (sealed.data_dir / "integrity" / "leaves.bin").unlink()  # and the evidence is gone
    failed = cli("verify", "--checkpoint", str(kept))
    one_error_line(failed, "FAILED")
    assert "the store does not reproduce the root signed by" in failed.stdout
