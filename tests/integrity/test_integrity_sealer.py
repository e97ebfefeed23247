"""The sealer: checkpoints at most N seconds behind, resumable, refusing to seal over a
tampered store, with the key and origin from configuration or the data folder."""

from __future__ import annotations

import asyncio
import base64
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from integrity_helpers import SealedLog, head, record_school

from sferum_audit.application.service import AuditLog
from sferum_audit.application.settings import Settings
from sferum_audit.integrity.checkpoint import verify_checkpoint
from sferum_audit.integrity.evidence import CheckpointLog, EvidenceError, LeafFile
from sferum_audit.integrity.keys import public_key_text
from sferum_audit.integrity.leaf_encoding import row_leaf_hash
from sferum_audit.integrity.merkle import MerkleTree
from sferum_audit.integrity.sealer import Sealer, SealerThread
from sferum_audit.integrity.settings import IntegrityPaths, IntegritySettings
from sferum_audit.integrity.store_reader import open_reader, pages
from sferum_audit.integrity.verifier import verify_log


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2025, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def fresh_root(app: AuditLog) -> tuple[int, bytes]:
    """The root of the whole store, computed from scratch."""
    reader = open_reader(app.recorder)
    tree = MerkleTree()
    for page in pages(reader, 0, reader.head(), 1000):
        tree.extend(row_leaf_hash(row) for row in page)
    reader.close()
    return tree.size, tree.root()


def test_checkpoints_are_signed_at_most_the_interval_behind(
    sqlite_settings: Settings, unique: str
) -> None:
    from sferum_audit.application.bootstrap import build_audit_log

    app = build_audit_log(sqlite_settings)
    clock = Clock()
    sealer = Sealer(
        app.recorder,
        sqlite_settings.data_dir,
        IntegritySettings(checkpoint_interval_seconds=10),
        clock=clock,
    )
    record_school(app, f"s{unique}", 20)
    first = sealer.run_once()
    assert first.checkpoint is not None, "the first events are signed at once"
    record_school(app, f"s{unique}-b", 20)
    clock.now += timedelta(seconds=4)
    second = sealer.run_once()
    assert second.checkpoint is None
    assert second.appended > 0
    assert second.latest_checkpoint_size == first.checkpoint.size
    clock.now += timedelta(seconds=6)
    third = sealer.run_once()
    assert third.checkpoint is not None
    assert third.checkpoint.size == head(app)
    clock.now += timedelta(seconds=60)
    assert sealer.run_once().checkpoint is None, "nothing new: nothing signed"
    assert (third.checkpoint.size, third.checkpoint.root_hash) == fresh_root(app)
    sealer.close()
    app.close()


def test_checkpoints_are_c2sp_notes_verifiable_with_the_public_key(sealed: SealedLog) -> None:
    entries, torn = CheckpointLog(IntegrityPaths.of(sealed.data_dir).checkpoints).read()
    assert torn is None
    assert len(entries) == 1
    note = entries[0].note
    lines = note.split("\n")
    assert lines[0] == "test.example/sferum-audit"
    assert lines[1] == str(head(sealed.app))
    assert lines[3] == ""
    assert lines[4].startswith("\u2014 test.example/sferum-audit ")
    checkpoint = verify_checkpoint(note, sealed.sealer.public_key_text())
    assert (checkpoint.size, checkpoint.root_hash) == fresh_root(sealed.app)


def test_a_restarted_sealer_continues_the_same_tree(sealed: SealedLog) -> None:
    paths = IntegrityPaths.of(sealed.data_dir)
    record_school(sealed.app, f"{sealed.school}-b", 15)
    restarted = Sealer(sealed.app.recorder, sealed.data_dir, IntegritySettings())
    assert restarted.origin == "test.example/sferum-audit", "the origin stays the log's"
    result = restarted.run_once(force=True)
    assert (result.size, result.checkpoint.root_hash) == fresh_root(sealed.app)  # type: ignore[union-attr]
    # Without the saved state the tree is rebuilt from the leaf file.
    paths.state.unlink()
    record_school(sealed.app, f"{sealed.school}-c", 15)
    again = Sealer(sealed.app.recorder, sealed.data_dir).run_once(force=True)
    assert (again.size, again.checkpoint.root_hash) == fresh_root(sealed.app)  # type: ignore[union-attr]
    restarted.close()
    assert verify_log(sealed.app.recorder, sealed.data_dir).ok


def test_torn_writes_of_a_crash_are_cut_off(sealed: SealedLog) -> None:
    paths = IntegrityPaths.of(sealed.data_dir)
    with paths.leaves.open("ab") as leaves:
        leaves.write(b"\x01" * 13)  # half a leaf
    with paths.checkpoints.open("a") as checkpoints:
        checkpoints.write('{"signed_at": "2025')  # half a line
    report = verify_log(sealed.app.recorder, sealed.data_dir)
    assert report.ok, report.lines()
    assert any("incomplete last line" in note for note in report.notes)
    record_school(sealed.app, f"{sealed.school}-b", 10)
    result = sealed.sealer.run_once(force=True)
    assert result.checkpoint is not None
    assert result.size == head(sealed.app)
    assert paths.leaves.stat().st_size == 32 * result.size
    assert verify_log(sealed.app.recorder, sealed.data_dir).ok


def test_the_sealer_refuses_to_seal_over_a_truncated_or_changed_store(sealed: SealedLog) -> None:
    last = head(sealed.app)
    sealed.dba.flip_byte(last)
    record_school(sealed.app, f"{sealed.school}-b", 10)
    changed = sealed.sealer.run_once(force=True)
    assert changed.checkpoint is None
    assert changed.appended == 0
    assert changed.alarm is not None
    assert f"position {last}" in changed.alarm
    sealed.dba.flip_byte(last)
    sealed.dba.delete_from(last - 2)  # the new events too: the store now ends early
    truncated = sealed.sealer.run_once(force=True)
    assert truncated.alarm is not None
    assert "removed from the end" in truncated.alarm


def test_a_different_key_or_origin_cannot_continue_the_log(
    sealed: SealedLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = Ed25519PrivateKey.generate()
    seed = base64.b64encode(other.private_bytes_raw()).decode()
    monkeypatch.setenv("SFERUM_AUDIT_SIGNING_KEY", seed)
    with pytest.raises(EvidenceError, match="changed signing key"):
        Sealer(sealed.app.recorder, sealed.data_dir).run_once(force=True)
    monkeypatch.delenv("SFERUM_AUDIT_SIGNING_KEY")
    with pytest.raises(EvidenceError, match="a log keeps its name"):
        Sealer(sealed.app.recorder, sealed.data_dir, IntegritySettings(log_origin="other.example"))


def test_the_key_can_come_from_configuration(
    sqlite_settings: Settings, monkeypatch: pytest.MonkeyPatch, unique: str
) -> None:
    from sferum_audit.application.bootstrap import build_audit_log

    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
    monkeypatch.setenv("SFERUM_AUDIT_SIGNING_KEY", pem)
    monkeypatch.setenv("SFERUM_AUDIT_LOG_ORIGIN", "school58.example/audit")
    app = build_audit_log(sqlite_settings)
    record_school(app, f"s{unique}", 10)
    sealer = Sealer(app.recorder, sqlite_settings.data_dir)
    assert sealer.public_key_text() == public_key_text(key, "school58.example/audit")
    assert sealer.run_once(force=True).checkpoint is not None
    assert not IntegrityPaths.of(sqlite_settings.data_dir).signing_key.exists()
    report = verify_log(
        app.recorder,
        sqlite_settings.data_dir,
        public_key=public_key_text(key, "school58.example/audit"),
    )
    assert report.ok, report.lines()
    monkeypatch.setenv("SFERUM_AUDIT_SIGNING_KEY", "not a key")
    with pytest.raises(ValueError, match="SFERUM_AUDIT_SIGNING_KEY"):
        Sealer(app.recorder, sqlite_settings.data_dir)
    sealer.close()
    app.close()


def test_a_new_key_is_made_once_in_the_data_folder(sqlite_settings: Settings) -> None:
    from sferum_audit.application.bootstrap import build_audit_log

    app = build_audit_log(sqlite_settings)
    first = Sealer(app.recorder, sqlite_settings.data_dir)
    second = Sealer(app.recorder, sqlite_settings.data_dir)
    key_file = IntegrityPaths.of(sqlite_settings.data_dir).signing_key
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert first.public_key_text() == second.public_key_text()
    assert first.origin.startswith("sferum-audit/")
    assert first.run_once(force=True).checkpoint is None, "an empty log has nothing to sign"
    app.close()


def test_following_the_log_in_a_thread_signs_what_arrives(sealed: SealedLog) -> None:
    sealed.sealer.settings = sealed.sealer.settings.model_copy(
        update={"checkpoint_interval_seconds": 0}
    )
    follower = SealerThread(sealed.sealer, poll_seconds=0.05)
    follower.start()
    record_school(sealed.app, f"{sealed.school}-b", 10)
    deadline = datetime.now(UTC) + timedelta(seconds=10)
    log = CheckpointLog(IntegrityPaths.of(sealed.data_dir).checkpoints)
    while datetime.now(UTC) < deadline:
        latest = log.last()
        if latest is not None and latest.checkpoint.size == head(sealed.app):
            break
        threading.Event().wait(0.05)
    follower.stop()
    latest = log.last()
    assert latest is not None
    assert latest.checkpoint.size == head(sealed.app)


def test_following_the_log_from_an_event_loop_seals_on_stop(sealed: SealedLog) -> None:
    sealed.sealer.settings = sealed.sealer.settings.model_copy(
        update={"checkpoint_interval_seconds": 3600}
    )
    record_school(sealed.app, f"{sealed.school}-b", 10)

    async def run() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(sealed.sealer.follow_async(stop, poll_seconds=0.05))
        await asyncio.sleep(0.2)
        stop.set()
        await task

    asyncio.run(run())
    latest = CheckpointLog(IntegrityPaths.of(sealed.data_dir).checkpoints).last()
    assert latest is not None
    assert latest.checkpoint.size == head(sealed.app)


def test_the_leaf_file_holds_one_leaf_per_position(sealed: SealedLog) -> None:
    with LeafFile(IntegrityPaths.of(sealed.data_dir).leaves) as leaves:
        assert leaves.count() == head(sealed.app)
        reader = open_reader(sealed.app.recorder)
        row = reader.rows(4, 5, 1)[0]
        reader.close()
        assert leaves.leaf(4) == row_leaf_hash(row)


def test_a_rolled_back_insert_leaves_a_hole_that_is_sealed(
    postgres_settings: Settings, unique: str, tmp_path: Path
) -> None:
    """PostgreSQL skips the sequence values of a failed insert (an optimistic-concurrency
    conflict): the position stays empty for good and is sealed as a hole."""
    from eventsourcing.persistence import IntegrityError, StoredEvent

    from sferum_audit.application.bootstrap import build_audit_log

    app = build_audit_log(postgres_settings)
    record_school(app, f"s{unique}", 20)
    existing = app.recorder.select_notifications(1, 1)[0]
    with pytest.raises(IntegrityError):
        app.recorder.insert_events(
            [
                StoredEvent(
                    existing.originator_id,
                    existing.originator_version,
                    existing.topic,
                    existing.state,
                )
            ]
        )
    gap = head(app) + 1
    record_school(app, f"s{unique}-b", 10)
    sealer = Sealer(app.recorder, postgres_settings.data_dir)
    result = sealer.run_once(force=True)
    assert result.holes == (gap,)
    report = verify_log(app.recorder, postgres_settings.data_dir, workers=1)
    assert report.ok, report.lines()
    assert report.holes == 1
    sealer.close()
    app.close()


@pytest.mark.parametrize("settings", ["postgres"], indirect=True)  # only PostgreSQL has this case
def test_a_long_gap_is_read_across_pages(sealed: SealedLog) -> None:
    """Positions far apart (a long gap) are read page by page and sealed as holes."""
    sealed.sealer.settings = sealed.sealer.settings.model_copy(update={"integrity_page_size": 4})
    start = head(sealed.app)
    sealed.dba.insert(start + 30)
    result = sealed.sealer.run_once(force=True)
    assert result.size == start + 30
    assert result.holes == tuple(range(start + 1, start + 21))  # at most 20 listed
    report = verify_log(sealed.app.recorder, sealed.data_dir)
    assert report.ok, report.lines()
    assert report.holes == 29
