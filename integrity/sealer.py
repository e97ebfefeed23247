"""The sealer: follows the log in global order and signs checkpoints of its Merkle tree.

Each round (:meth:`Sealer.run_once`) reads the events recorded since the last round
straight from the store, appends their leaf hashes (:mod:`leaf_encoding`) to the leaf
file, extends the tree from its saved compact state, and signs a C2SP checkpoint when
there is something new and the last checkpoint is at least
``SFERUM_AUDIT_CHECKPOINT_INTERVAL_SECONDS`` old (or on demand), so a checkpoint is at
most that long behind the log while the sealer follows it.

Everything it writes lives in ``<data_dir>/integrity/`` (see :mod:`evidence`), outside
the event store. Before extending, a round checks that the store still ends where the
sealed log ends and still holds the last sealed event unchanged; if not it raises the
alarm and signs nothing (``verify`` then names the first bad position).

For the service: :meth:`Sealer.follow` (a blocking loop until a ``threading.Event`` is
set), :meth:`Sealer.follow_async` (until an ``asyncio.Event`` is set; the work runs in a
thread), or :class:`SealerThread` (start/stop around the service's lifetime).
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eventsourcing.persistence import ApplicationRecorder

from sferum_audit.integrity.checkpoint import Checkpoint, sign_checkpoint, verify_checkpoint
from sferum_audit.integrity.evidence import (
    CheckpointEntry,
    CheckpointLog,
    EvidenceError,
    LeafFile,
    read_state,
    write_state,
)
from sferum_audit.integrity.keys import public_key_text
from sferum_audit.integrity.leaf_encoding import LeafEncodingError, PageHasher, leaves_with_holes
from sferum_audit.integrity.merkle import MerkleTree
from sferum_audit.integrity.note import NoteError, VerifierKey
from sferum_audit.integrity.settings import (
    IntegrityPaths,
    IntegritySettings,
    check_origin,
    default_origin,
)
from sferum_audit.integrity.store_reader import StoreReader, open_reader, pages

__all__ = ["SealResult", "Sealer", "SealerThread", "resolve_origin"]

log = structlog.get_logger(__name__)

_MAX_HOLES_LISTED = 20


@dataclass(frozen=True, slots=True)
class SealResult:
    """What one sealing round did."""

    size: int
    """Positions sealed in total (the tree size) after the round."""
    appended: int
    """Positions sealed by this round."""
    checkpoint: Checkpoint | None
    """The checkpoint signed by this round, if any."""
    latest_checkpoint_size: int
    """Size of the latest signed checkpoint after the round (0 if none)."""
    holes: tuple[int, ...] = field(default=())
    """Positions sealed as holes this round (no event there), at most 20 listed."""
    alarm: str | None = None
    """Why the round stopped short and signed nothing, if it did."""

    def describe(self) -> str:
        """One line for people."""
        parts = [f"sealed positions 1..{self.size} ({self.appended} new)"]
        if self.checkpoint is not None:
            parts.append(f"signed checkpoint at size {self.checkpoint.size}")
        else:
            parts.append(f"latest checkpoint at size {self.latest_checkpoint_size}")
        if self.holes:
            parts.append(f"holes at {', '.join(map(str, self.holes))}")
        if self.alarm:
            parts.append(f"ALARM: {self.alarm}")
        return "; ".join(parts)


def resolve_origin(settings: IntegritySettings, latest: CheckpointEntry | None) -> str:
    """The configured origin, else the existing checkpoints' origin, else the default.

    A configured origin that differs from the existing checkpoints' is refused: one log
    has one name, and its verifier key is named after it.
    """
    existing = latest.checkpoint.origin if latest is not None else None
    if settings.log_origin:
        origin = check_origin(settings.log_origin)
        if existing is not None and existing != origin:
            raise EvidenceError(
                f"SFERUM_AUDIT_LOG_ORIGIN is {origin!r} but the existing checkpoints are "
                f"for {existing!r}; a log keeps its name"
            )
        return origin
    return existing or default_origin()


def _now() -> datetime:
    return datetime.now(UTC)


class Sealer:
    """Seals one store's log into the integrity folder of one data folder."""

    def __init__(
        self,
        recorder: ApplicationRecorder,
        data_dir: Path,
        settings: IntegritySettings | None = None,
        *,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        """Seal ``recorder``'s log; the key is loaded (or made) now."""
        self.settings = settings or IntegritySettings()
        self.paths = IntegrityPaths.of(data_dir)
        self.paths.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._checkpoints = CheckpointLog(self.paths.checkpoints)
        self.origin = resolve_origin(self.settings, self._checkpoints.last())
        self._key: Ed25519PrivateKey = self.settings.load_signing_key(self.paths)
        self._reader: StoreReader = open_reader(recorder)
        self._clock = clock
        self._hasher = PageHasher()

    @property
    def verifier_key(self) -> VerifierKey:
        """The public key that checks this log's checkpoints."""
        return VerifierKey.parse(public_key_text(self._key, self.origin))

    def public_key_text(self) -> str:
        """``<origin>+<key ID>+<base64 key>``: what auditors configure."""
        return public_key_text(self._key, self.origin)

    def close(self) -> None:
        """Release the store reader."""
        self._reader.close()

    # -- one round --------------------------------------------------------------------------

    def run_once(self, *, force: bool = False) -> SealResult:
        """Seal what the log holds now; sign if due (or if ``force`` and anything is new).

        Raise :class:`evidence.EvidenceError` if the integrity files contradict each
        other or the key; problems with the store come back as ``SealResult.alarm``.
        """
        with self._locked():
            return self._run(force)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self.paths.lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _run(self, force: bool) -> SealResult:
        self._checkpoints.cut_torn_tail()
        latest = self._checkpoints.last()
        self._check_latest(latest)
        latest_size = latest.checkpoint.size if latest else 0
        with LeafFile(self.paths.leaves, writable=True) as leaves:
            leaves.cut_partial()
            tree, state_current = self._load_tree(leaves, latest)
            head = self._reader.head()
            alarm = self._check_store(leaves, tree.size, head)
            holes: list[int] = []
            appended = 0
            if alarm is None:
                appended, alarm = self._append(leaves, tree, head, holes)
            if appended:
                leaves.sync()
        if appended or not state_current:
            write_state(self.paths.state, tree.state())
        if holes:
            log.warning(
                "positions without an event were sealed as holes",
                holes=holes[:_MAX_HOLES_LISTED],
                count=len(holes),
            )
        signed: Checkpoint | None = None
        if alarm is None and tree.size > latest_size and (force or self._due(latest)):
            signed = Checkpoint(self.origin, tree.size, tree.root())
            note = sign_checkpoint(signed, self._key)
            self._checkpoints.append(note, self._clock())
            latest_size = signed.size
            log.info("checkpoint signed", size=signed.size, origin=self.origin)
        if alarm is not None:
            log.error("sealing stopped", alarm=alarm, sealed=tree.size)
        return SealResult(
            tree.size,
            appended,
            signed,
            latest_size,
            tuple(holes[:_MAX_HOLES_LISTED]),
            alarm,
        )

    def _check_latest(self, latest: CheckpointEntry | None) -> None:
        if latest is None:
            return
        try:
            verify_checkpoint(latest.note, self.verifier_key, origin=self.origin)
        except NoteError as exc:
            raise EvidenceError(
                f"the latest checkpoint in {self.paths.checkpoints} does not verify with "
                f"this log's key ({exc}); a changed signing key or origin cannot continue "
                "an existing log"
            ) from None

    def _load_tree(
        self, leaves: LeafFile, latest: CheckpointEntry | None
    ) -> tuple[MerkleTree, bool]:
        """The tree of the leaf file, and whether the saved state already matched it."""
        count = leaves.count()
        if latest is not None and latest.checkpoint.size > count:
            raise EvidenceError(
                f"{leaves.path} holds {count} leaves but the latest checkpoint covers "
                f"{latest.checkpoint.size}: the leaf file was cut short"
            )
        state = read_state(self.paths.state)
        if state is not None and state.size <= count:
            tree = MerkleTree.from_state(state)
        else:
            tree = MerkleTree()
        current = state is not None and state.size == count
        self._extend_from_file(tree, leaves, count)
        stale = latest is not None and tree.size == latest.checkpoint.size
        if stale and latest is not None and tree.root() != latest.checkpoint.root_hash:
            tree = MerkleTree()  # the saved state may be stale: rebuild from the leaves
            self._extend_from_file(tree, leaves, count)
            if tree.root() != latest.checkpoint.root_hash:
                raise EvidenceError(
                    f"{leaves.path} does not hash to the latest signed checkpoint "
                    f"(size {count}); run `sferum-audit verify`"
                )
            current = False
        return tree, current

    @staticmethod
    def _extend_from_file(tree: MerkleTree, leaves: LeafFile, count: int) -> None:
        step = 1 << 16
        for start in range(tree.size, count, step):
            tree.extend_aligned(leaves.read(start, min(step, count - start)))

    def _check_store(self, leaves: LeafFile, sealed: int, head: int) -> str | None:
        """The store must still end at or after the sealed log, with its last event intact."""
        if head < sealed:
            return (
                f"the store ends at position {head} but positions up to {sealed} were "
                "sealed: events were removed from the end; run `sferum-audit verify`"
            )
        if sealed == 0:
            return None
        rows = self._reader.rows(sealed - 1, sealed, 1)
        expected = leaves.leaf(sealed - 1)
        try:
            found, _ = leaves_with_holes(rows, self._hasher, sealed, sealed)
        except LeafEncodingError as exc:
            return f"the last sealed event is malformed now: {exc}"
        if found[0] != expected:
            return (
                f"the last sealed position {sealed} no longer holds what was sealed; "
                "run `sferum-audit verify`"
            )
        return None

    def _append(
        self, leaves: LeafFile, tree: MerkleTree, head: int, holes: list[int]
    ) -> tuple[int, str | None]:
        start = tree.size
        position = start
        page_size = self.settings.integrity_page_size
        for page in pages(self._reader, start, head, page_size):
            last = page[-1][0]
            try:
                hashed, page_holes = leaves_with_holes(page, self._hasher, position + 1, last)
            except LeafEncodingError as exc:
                good = self._seal_before_bad_row(leaves, tree, page, position, holes)
                return good + position - start, f"cannot seal: {exc}"
            deleted = self._deletion(page_holes)
            if deleted is not None:
                first = page_holes[0]
                keep = first - position - 1
                if keep:
                    leaves.append(b"".join(hashed[:keep]))
                    tree.extend(hashed[:keep])
                return first - 1 - start, deleted
            leaves.append(b"".join(hashed))
            tree.extend(hashed)
            holes.extend(page_holes)
            position = last
        return position - start, None

    def _deletion(self, holes: list[int]) -> str | None:
        """Why the first of ``holes`` must be a deleted event, or ``None`` if it may be a
        position the store skipped (PostgreSQL's rolled-back inserts).

        SQLite never skips a position. On PostgreSQL, a rolled-back insert leaves every
        aggregate's versions whole, while a deleted event leaves a later version of its
        aggregate without the one before it.
        """
        if not holes:
            return None
        first = holes[0]
        if self._reader.gapless:
            return (
                f"position {first} has no event, and this store never skips a position: "
                "an event was deleted before it was sealed; run `sferum-audit verify`"
            )
        gap = self._reader.first_version_gap(after=first)  # the events since: a few
        if gap is not None:
            return (
                f"position {first} has no event and the event at position {gap[0]} is "
                f"version {gap[1]} of its aggregate without version {gap[1] - 1}: an event "
                "was deleted before it was sealed; run `sferum-audit verify`"
            )
        return None

    def _seal_before_bad_row(
        self,
        leaves: LeafFile,
        tree: MerkleTree,
        page: list[tuple[int, object, int, str, bytes]],
        position: int,
        holes: list[int],
    ) -> int:
        """Seal the rows of ``page`` before the first one that does not encode."""
        good = []
        for row in page:
            try:
                self._hasher.leaf(row)
            except LeafEncodingError:
                break
            good.append(row)
        if not good:
            return 0
        last = good[-1][0]
        try:
            hashed, page_holes = leaves_with_holes(good, self._hasher, position + 1, last)
        except LeafEncodingError:
            return 0
        leaves.append(b"".join(hashed))
        tree.extend(hashed)
        holes.extend(page_holes)
        return last - position

    def _due(self, latest: CheckpointEntry | None) -> bool:
        if latest is None or latest.signed_at is None:
            return True
        try:
            signed_at = datetime.fromisoformat(latest.signed_at)
        except ValueError:
            return True
        age = (self._clock() - signed_at).total_seconds()
        return age >= self.settings.checkpoint_interval_seconds

    # -- following the log ------------------------------------------------------------------

    def run_logged(self, *, force: bool = False) -> SealResult | None:
        """:meth:`run_once`, logging instead of raising (for loops that must go on)."""
        try:
            return self.run_once(force=force)
        except Exception:
            log.exception("sealing round failed; retrying")
            return None

    def follow(self, stop: threading.Event, poll_seconds: float | None = None) -> None:
        """Seal rounds every ``poll_seconds`` until ``stop`` is set, then a final forced one.

        A failing round is logged and retried, waiting longer after each failure (up to
        a minute).
        """
        poll = poll_seconds if poll_seconds is not None else self.settings.seal_poll_seconds
        failures = 0
        while not stop.is_set():
            failures = 0 if self.run_logged() is not None else failures + 1
            stop.wait(min(poll * 2**failures, 60.0) if failures else poll)
        self.run_logged(force=True)

    async def follow_async(self, stop: asyncio.Event, poll_seconds: float | None = None) -> None:
        """:meth:`follow` for an event loop: each round runs in a worker thread."""
        poll = poll_seconds if poll_seconds is not None else self.settings.seal_poll_seconds
        failures = 0
        while not stop.is_set():
            done = await asyncio.to_thread(self.run_logged)
            failures = 0 if done is not None else failures + 1
            with suppress(TimeoutError):
                await asyncio.wait_for(
                    stop.wait(), timeout=min(poll * 2**failures, 60.0) if failures else poll
                )
        await asyncio.to_thread(self.run_logged, force=True)


class SealerThread:
    """A background thread running :meth:`Sealer.follow` while the service runs."""

    def __init__(self, sealer: Sealer, poll_seconds: float | None = None) -> None:
        """Prepare the thread; :meth:`start` starts it."""
        self.sealer = sealer
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=sealer.follow, args=(self._stop, poll_seconds), name="sealer", daemon=True
        )

    def start(self) -> None:
        """Start following the log."""
        self._thread.start()

    def stop(self, timeout: float | None = 30.0) -> None:
        """Stop after a final forced round that signs whatever is new."""
        self._stop.set()
        self._thread.join(timeout)
