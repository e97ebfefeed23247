"""``verify`` trusts the integrity folder only as far as the signatures vouch for it."""

from __future__ import annotations

import json
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from integrity_helpers import SealedLog, head, record_school

from sferum_audit.integrity.checkpoint import Checkpoint, sign_checkpoint
from sferum_audit.integrity.evidence import CheckpointLog
from sferum_audit.integrity.keys import load_or_create_signing_key, public_key_text
from sferum_audit.integrity.leaf_encoding import row_leaf_hash
from sferum_audit.integrity.merkle import MerkleTree
from sferum_audit.integrity.settings import IntegrityPaths
from sferum_audit.integrity.store_reader import open_reader, pages
from sferum_audit.integrity.verifier import verify_log

ORIGIN = "test.example/sferum-audit"


def paths(log: SealedLog) -> IntegrityPaths:
    return IntegrityPaths.of(log.data_dir)


def flip_leaf(log: SealedLog, index: int) -> None:
    with paths(log).leaves.open("r+b") as leaves:
        leaves.seek(32 * index)
        byte = leaves.read(1)
        leaves.seek(32 * index)
        leaves.write(bytes([byte[0] ^ 1]))


def store_tree(log: SealedLog) -> MerkleTree:
    reader = open_reader(log.app.recorder)
    tree = MerkleTree()
    for page in pages(reader, 0, reader.head(), 1000):
        tree.extend(row_leaf_hash(row) for row in page)
    reader.close()
    return tree


def test_a_changed_leaf_file_is_evidence_tampering_named_at_its_first_position(
    sealed: SealedLog,
) -> None:
    flip_leaf(sealed, 10)  # the leaf of position 11
    report = verify_log(sealed.app.recorder, sealed.data_dir)
    assert not report.ok
    assert [f.kind for f in report.findings] == ["evidence", "evidence"], report.lines()
    assert "integrity folder was altered" in report.findings[0].message
    assert "the evidence file was edited, not the log" in report.findings[1].message
    assert report.first_bad_position == 11
    assert report.summary().startswith("FAILED: first bad position 11:")


def test_store_and_leaf_file_rewritten_together_are_still_caught(sealed: SealedLog) -> None:
    """A DBA who also rewrites leaves.bin cannot re-sign: the store misses the signed root."""
    record_school(sealed.app, f"{sealed.school}-b", 10)
    sealed.sealer.run_once(force=True)
    first_size = int(CheckpointLog(paths(sealed).checkpoints).read()[0][0].checkpoint.size)
    position = first_size - 3
    sealed.dba.flip_byte(position)
    reader = open_reader(sealed.app.recorder)
    forged = row_leaf_hash(reader.rows(position - 1, position, 1)[0])
    reader.close()
    with paths(sealed).leaves.open("r+b") as leaves:
        leaves.seek(32 * (position - 1))
        leaves.write(forged)
    report = verify_log(sealed.app.recorder, sealed.data_dir)
    kinds = [f.kind for f in report.findings]
    assert kinds == ["evidence", "store"], report.lines()
    assert f"1..{first_size}" in report.findings[1].message


def test_a_checkpoint_with_a_bad_signature_is_caught(sealed: SealedLog) -> None:
    log_path = paths(sealed).checkpoints
    record = json.loads(log_path.read_text().splitlines()[0])
    note = record["checkpoint"]
    lines = note.split("\n")
    lines[1] = str(int(lines[1]) + 1)  # claim one more event
    record["checkpoint"] = "\n".join(lines)
    log_path.write_text(json.dumps(record) + "\n")
    report = verify_log(sealed.app.recorder, sealed.data_dir)
    assert not report.ok
    assert report.findings[0].kind == "checkpoint"
    assert "invalid signature" in report.findings[0].message


def test_a_malformed_checkpoint_line_is_caught(sealed: SealedLog) -> None:
    with paths(sealed).checkpoints.open("a") as log:
        log.write("not json\n")
    sealed.dba.flip_byte(9)
    report = verify_log(sealed.app.recorder, sealed.data_dir)
    assert not report.ok
    assert "checkpoints.log line 2 is not JSON" in report.findings[0].message
    assert report.first_bad_position == 9, "the good checkpoints still check the store"


def test_an_auditor_held_checkpoint_must_be_reproduced(sealed: SealedLog, tmp_path: Path) -> None:
    """The integrity folder rolled back to an older state cannot hide a later checkpoint
    an auditor kept; a kept checkpoint the log reproduces is fine."""
    folder = paths(sealed).folder
    saved = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    record_school(sealed.app, f"{sealed.school}-b", 10)
    kept = sealed.sealer.run_once(force=True)
    assert kept.checkpoint is not None
    note = CheckpointLog(paths(sealed).checkpoints).last().note  # type: ignore[union-attr]
    assert verify_log(
        sealed.app.recorder, sealed.data_dir, trusted_checkpoints=[(note, "auditor copy")]
    ).ok
    for name, data in saved.items():  # roll the integrity folder back
        (folder / name).write_bytes(data)
    sealed.dba.flip_byte(head(sealed.app))  # and rewrite an event it no longer covers
    assert verify_log(sealed.app.recorder, sealed.data_dir).ok, "the rollback alone hides it"
    report = verify_log(
        sealed.app.recorder, sealed.data_dir, trusted_checkpoints=[(note, "auditor copy")]
    )
    assert not report.ok
    kinds = [f.kind for f in report.findings]
    assert kinds == ["evidence", "store"], report.lines()
    assert "auditor copy" in report.findings[0].message


def test_a_forked_log_is_caught(sealed: SealedLog) -> None:
    """Two signed checkpoints of one size with different roots: the log was forked."""
    key = load_or_create_signing_key(paths(sealed).signing_key)
    size = head(sealed.app)
    fork = sign_checkpoint(Checkpoint(ORIGIN, size, b"\x07" * 32), key)
    report = verify_log(sealed.app.recorder, sealed.data_dir, trusted_checkpoints=[(fork, "fork")])
    assert any("forked" in f.message for f in report.findings), report.lines()


def test_verify_with_a_foreign_public_key_fails(sealed: SealedLog) -> None:
    other = public_key_text(Ed25519PrivateKey.generate(), ORIGIN)
    report = verify_log(sealed.app.recorder, sealed.data_dir, public_key=other)
    assert not report.ok
    assert report.findings[0].kind == "checkpoint"
    own = sealed.sealer.public_key_text()
    assert verify_log(sealed.app.recorder, sealed.data_dir, public_key=own).ok


def test_a_cut_leaf_file_is_caught(sealed: SealedLog) -> None:
    leaves = paths(sealed).leaves
    leaves.write_bytes(leaves.read_bytes()[: 32 * 10])
    report = verify_log(sealed.app.recorder, sealed.data_dir)
    assert [f.kind for f in report.findings] == ["evidence", "evidence"], report.lines()
    assert "cut short" in report.findings[0].message
    assert report.first_bad_position == 11  # where the file ends too early
    assert "ends after 10 leaves" in report.findings[1].message
    # The store itself still reproduces the checkpoint: nothing else is reported.
    latest = CheckpointLog(paths(sealed).checkpoints).last()
    assert latest is not None
    assert store_tree(sealed).root() == latest.checkpoint.root_hash


def test_nothing_sealed_is_not_verified(sealed: SealedLog) -> None:
    paths(sealed).checkpoints.unlink()
    report = verify_log(sealed.app.recorder, sealed.data_dir)
    assert not report.ok
    assert report.findings[0].kind == "unsealed"
    assert "run `sferum-audit seal`" in report.summary()
