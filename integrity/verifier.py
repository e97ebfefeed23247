"""``verify``: recompute the log's Merkle leaves from the store and check them against the
signed checkpoints, naming the first position that does not match.

Two passes, each streaming (memory does not grow with the log):

1. **The evidence.** Every checkpoint in ``checkpoints.log`` (and any checkpoint an
   auditor kept and passes in) is checked against the log's public key. Then the root of
   the first ``N`` leaves of ``leaves.bin`` is recomputed for every checkpoint size ``N``
   and compared with the signed root. All roots come from one sequence of leaves, so
   passing this also shows every checkpoint is consistent with the latest (an
   append-only history); two checkpoints of one size with different roots are a fork.
   Once this passes, ``leaves.bin`` is as good as the signatures up to the latest size.
2. **The store.** Every stored row is re-encoded and hashed (:mod:`leaf_encoding`), a
   position without a row as a hole, and compared with the authenticated leaf of its
   position, a page at a time. The first difference is the first bad position:

   * a stored byte, id, version or topic changed, or two rows swapped: ``changed``;
   * a row deleted (a hole where an event was sealed): ``missing``;
   * a row put where the sealed log has none, or rows renumbered: ``inserted``/``changed``;
   * the store ending before the sealed log does: ``truncated``;
   * rows out of order or not encodable (non-UUID id, NULL state): ``malformed``.

If the leaf file itself fails a checkpoint, it cannot name positions past the last
checkpoint it does reproduce; the store is then hashed into its own tree and checked
against the checkpoints directly, which still catches any tampering and names the range
``(previous checkpoint, failing checkpoint]`` it lies in. Events recorded after the
latest checkpoint are counted as not yet sealed, not as errors.
"""

from __future__ import annotations

import base64
import multiprocessing
import os
import time
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from eventsourcing.persistence import ApplicationRecorder

from sferum_audit.integrity.checkpoint import Checkpoint, verify_checkpoint
from sferum_audit.integrity.evidence import CheckpointLog, EvidenceError, LeafFile
from sferum_audit.integrity.leaf_encoding import (
    LeafEncodingError,
    PageHasher,
    hole_leaf_hash,
    leaves_with_holes,
)
from sferum_audit.integrity.merkle import HASH_SIZE, MerkleTree
from sferum_audit.integrity.note import NoteError, VerifierKey, parse_note
from sferum_audit.integrity.scan import (
    Finding,
    RangeOutcome,
    compare_range,
    compare_range_in_process,
)
from sferum_audit.integrity.settings import IntegrityPaths, IntegritySettings, default_origin
from sferum_audit.integrity.store_reader import StoreReader, open_reader, pages

__all__ = [
    "Finding",
    "TrustedCheckpoint",
    "VerifyReport",
    "raw_rows",
    "verify_log",
    "verify_store",
]

PARALLEL_MIN = 100_000
"""Below this many positions ``verify`` compares in one process (workers cost ~0.1 s)."""


@dataclass(frozen=True, slots=True)
class TrustedCheckpoint:
    """A checkpoint whose signature verified, and where it came from."""

    checkpoint: Checkpoint
    source: str
    from_log: bool = True


@dataclass
class VerifyReport:
    """The outcome of :func:`verify_log`."""

    store: str
    head: int = 0
    sealed: int = 0
    checkpoints: int = 0
    latest: Checkpoint | None = None
    compared: int = 0
    holes: int = 0
    unsealed: int = 0
    seconds: float = 0.0
    workers: int = 1
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing is wrong and at least one checkpoint was checked."""
        return not self.findings and self.latest is not None

    @property
    def first_bad_position(self) -> int | None:
        """The lowest position named by a finding, if any."""
        positions = [f.position for f in self.findings if f.position is not None]
        return min(positions) if positions else None

    @property
    def rate(self) -> float:
        """Positions compared per second."""
        return self.compared / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        """The one line that says whether the log verified."""
        if self.ok:
            assert self.latest is not None
            tail = (
                f"; {self.unsealed} later events not yet in a signed checkpoint"
                if self.unsealed
                else ""
            )
            return (
                f"OK: positions 1..{self.latest.size} match {self.checkpoints} signed "
                f"checkpoints of {self.latest.origin} (latest root "
                f"{base64.b64encode(self.latest.root_hash).decode()}){tail}"
            )
        first = self.first_bad_position
        if first is not None:
            finding = min(
                (f for f in self.findings if f.position is not None),
                key=lambda f: f.position or 0,
            )
            return f"FAILED: first bad position {first}: {finding.message}"
        return f"FAILED: {self.findings[0].message}" if self.findings else "FAILED"

    def lines(self) -> list[str]:
        """Everything for people: the summary, each finding, the notes, the figures."""
        out = [self.summary()]
        out += [f"  {f.kind}: {f.message}" for f in self.findings]
        out += [f"  note: {note}" for note in self.notes]
        out.append(
            f"  store {self.store}: head {self.head}; sealed {self.sealed}; "
            f"{self.checkpoints} checkpoints; {self.compared} positions compared "
            f"({self.holes} holes) in {self.seconds:.2f} s ({self.rate:,.0f}/s, "
            f"{self.workers} processes)"
        )
        return out


# -- pass 1: checkpoints and the leaf file ------------------------------------------------------


def _trusted_checkpoints(
    log: CheckpointLog,
    key: VerifierKey | None,
    extra: Sequence[tuple[str, str]],
    report: VerifyReport,
) -> tuple[list[TrustedCheckpoint], VerifierKey | None]:
    entries, problems, torn = log.read_lenient()
    report.findings += [Finding("checkpoint", problem) for problem in problems]
    if torn:
        report.notes.append(torn)
    notes = [(e.note, f"{log.path.name} line {e.line}", True) for e in entries]
    notes += [(note, source, False) for note, source in extra]
    if not notes:
        return [], key
    if key is None:
        return [], None
    trusted: list[TrustedCheckpoint] = []
    for note, source, from_log in notes:
        try:
            checkpoint = verify_checkpoint(note, key, origin=key.name)
        except NoteError as exc:
            report.findings.append(Finding("checkpoint", f"{source}: {exc}"))
            continue
        trusted.append(TrustedCheckpoint(checkpoint, source, from_log))
    by_size: dict[int, TrustedCheckpoint] = {}
    previous = 0
    for item in trusted:
        size = item.checkpoint.size
        if item.from_log and size < previous:
            report.findings.append(
                Finding(
                    "checkpoint",
                    f"{item.source}: size {size} is smaller than the checkpoint before it "
                    f"({previous}): the log shrank",
                )
            )
        if item.from_log:
            previous = max(previous, size)
        other = by_size.get(size)
        if other is not None and other.checkpoint.root_hash != item.checkpoint.root_hash:
            report.findings.append(
                Finding(
                    "checkpoint",
                    f"{other.source} and {item.source} sign different roots for size {size}: "
                    "the log was forked",
                )
            )
        by_size.setdefault(size, item)
    return sorted(by_size.values(), key=lambda t: t.checkpoint.size), key


def _authenticate_leaves(
    leaves: LeafFile, trusted: list[TrustedCheckpoint], report: VerifyReport
) -> int:
    """Check the leaf file against every checkpoint; return how far it is authentic."""
    count = leaves.count()
    tree = MerkleTree()
    authentic = 0
    step = 1 << 16
    for item in trusted:
        size = item.checkpoint.size
        if size > count:
            report.findings.append(
                Finding(
                    "evidence",
                    f"{leaves.path.name} holds {count} leaves but {item.source} covers "
                    f"{size}: the sealer's leaf file was cut short or replaced",
                )
            )
            return authentic
        while tree.size < size:
            tree.extend_aligned(leaves.read(tree.size, min(step, size - tree.size)))
        if tree.root() != item.checkpoint.root_hash:
            report.findings.append(
                Finding(
                    "evidence",
                    f"{leaves.path.name} does not reproduce the root signed by {item.source} "
                    f"(size {size}): the integrity folder was altered; positions after "
                    f"{authentic} are checked against the checkpoints only",
                )
            )
            return authentic
        authentic = size
    return count  # every checkpoint matched: the unsigned tail is the sealer's record too


# -- pass 2: the store --------------------------------------------------------------------------


class _StoreTree:
    """In degraded mode: the store's own tree, checked against every checkpoint."""

    def __init__(self, trusted: list[TrustedCheckpoint], report: VerifyReport) -> None:
        self.tree = MerkleTree()
        self.pending = list(trusted)
        self.report = report
        self.last_good = 0
        self.failed = False

    def extend(self, leaves: list[bytes]) -> None:
        for leaf in leaves:
            if self.failed:
                return
            self.tree.append(leaf)
            while self.pending and self.pending[0].checkpoint.size <= self.tree.size:
                self._check(self.pending.pop(0))

    def _check(self, item: TrustedCheckpoint) -> None:
        if self.failed:
            return
        if item.checkpoint.size == 0 or self.tree.root() == item.checkpoint.root_hash:
            self.last_good = item.checkpoint.size
            return
        self.failed = True
        self.report.findings.append(
            Finding(
                "store",
                f"the store does not reproduce the root signed by {item.source}: an event "
                f"at a position in {self.last_good + 1}..{item.checkpoint.size} was "
                "changed, removed, inserted or moved",
            )
        )


def _degraded_scan(
    reader: StoreReader,
    leaves: LeafFile,
    authentic: int,
    trusted: list[TrustedCheckpoint],
    report: VerifyReport,
    page_size: int,
) -> None:
    """The leaf file is only good up to ``authentic``: name what it can, and check the
    store against every checkpoint with the store's own tree."""
    covered = trusted[-1].checkpoint.size
    exact = compare_range(reader, leaves, 0, min(report.head, authentic), covered, page_size)
    _add(report, exact, reader.gapless)
    if exact.finding is not None:
        return
    tree = _StoreTree(trusted, report)
    hasher = PageHasher()
    done = 0
    edited = _EditedEvidence(leaves, authentic)
    for page in pages(reader, 0, min(report.head, covered), page_size):
        last = page[-1][0]
        try:
            hashed, _ = leaves_with_holes(page, hasher, done + 1, last)
        except LeafEncodingError as exc:
            report.findings.append(Finding("malformed", str(exc), exc.position))
            return
        tree.extend(hashed)
        edited.compare(done, hashed)
        done = last
    for start in range(done + 1, covered + 1, 1 << 14):  # no rows there: holes
        stop = min(covered, start + (1 << 14) - 1)
        holes = [hole_leaf_hash(p) for p in range(start, stop + 1)]
        tree.extend(holes)
        edited.compare(start - 1, holes)
    if not tree.failed:
        edited.report(report, covered)


class _EditedEvidence:
    """Where the leaf file first disagrees with the store, past its authentic part.

    When the store reproduces every signed root and the leaf file does not, the store is
    right and the evidence file was edited: ``verify`` names the first position they
    disagree on (or where the file ends too early).
    """

    def __init__(self, leaves: LeafFile, authentic: int) -> None:
        self.leaves = leaves
        self.count = leaves.count()
        self.authentic = authentic
        self.first: int | None = None

    def compare(self, done: int, hashed: list[bytes]) -> None:
        """``hashed`` are the store's leaves of positions ``done + 1 ...``."""
        if self.first is not None or done + len(hashed) <= self.authentic:
            return
        available = max(0, min(len(hashed), self.count - done))
        sealed = self.leaves.read(done, available) if available else b""
        for index in range(len(hashed)):
            if (
                index >= available
                or hashed[index] != sealed[index * HASH_SIZE : (index + 1) * HASH_SIZE]
            ):
                self.first = done + 1 + index
                return

    def report(self, report: VerifyReport, covered: int) -> None:
        if self.first is None:
            return
        ends = self.first > self.count
        what = (
            f"ends after {self.count} leaves"
            if ends
            else f"disagrees with the store first at position {self.first}"
        )
        report.findings.append(
            Finding(
                "evidence",
                f"the store reproduces every signed checkpoint (up to {covered}) but "
                f"{self.leaves.path.name} {what}: the evidence file was edited, not the log",
                self.first,
            )
        )


def _add(report: VerifyReport, outcome: RangeOutcome, gapless: bool = False) -> None:
    report.compared += outcome.compared
    report.holes += outcome.holes
    if outcome.finding is not None:
        report.findings.append(outcome.finding)
    if gapless and outcome.first_hole is not None:
        position = outcome.first_hole
        report.findings.append(
            Finding(
                "missing",
                f"position {position} has no event, and this store never skips a position: "
                "an event was deleted there (before it was sealed, so it was sealed as a "
                "hole)",
                position,
            )
        )


def _check_missing_tail(
    leaves: LeafFile, head: int, sealed: int, covered: int, report: VerifyReport
) -> None:
    """The store ends at ``head`` before the sealed log does: the first sealed event there
    is the first bad position (sealed holes at the very end are not events)."""
    step = 1 << 14
    for start in range(head, sealed, step):
        n = min(step, sealed - start)
        data = leaves.read(start, n)
        for i in range(n):
            position = start + 1 + i
            if data[i * HASH_SIZE : (i + 1) * HASH_SIZE] != hole_leaf_hash(position):
                unsigned = "" if position <= covered else " (not yet in a signed checkpoint)"
                report.findings.append(
                    Finding(
                        "truncated",
                        f"the store ends at position {head} but the sealed log goes on to "
                        f"{sealed}; position {position} is the first event missing (the log "
                        f"was truncated){unsigned}",
                        position,
                    )
                )
                return
            report.compared += 1


def _deleted_not_burned(reader: StoreReader, report: VerifyReport) -> None:
    """On a store that skips positions (PostgreSQL), tell a deleted event from a burned
    sequence number: a rolled-back insert leaves its aggregate's versions whole, a deleted
    event leaves a later version of its aggregate without the one before it."""
    gap = reader.first_version_gap()
    if gap is None:
        return
    position, version = gap
    report.findings.append(
        Finding(
            "missing",
            f"the event at position {position} is version {version} of its aggregate but "
            f"version {version - 1} is in the store nowhere: an event was deleted (an empty "
            "position before it is that event, not a skipped sequence number)",
        )
    )


def _first_unsealed_gap(
    reader: StoreReader, covered: int, head: int, page_size: int, report: VerifyReport
) -> None:
    """On a store that never skips a position, a gap after the latest checkpoint is an
    event deleted before it was sealed (the sealer refuses to go past it)."""
    expected = covered + 1
    for page in pages(reader, covered, head, page_size):
        for row in page:
            if row[0] != expected:
                report.findings.append(
                    Finding(
                        "missing",
                        f"position {expected} has no event, and this store never skips a "
                        "position: an event was deleted there before it was sealed",
                        expected,
                    )
                )
                return
            expected += 1


def _split(high: int, parts: int) -> list[tuple[int, int]]:
    bounds = [high * i // parts for i in range(parts + 1)]
    return [(bounds[i], bounds[i + 1]) for i in range(parts) if bounds[i] < bounds[i + 1]]


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _context() -> multiprocessing.context.BaseContext:
    # fork: the workers start in milliseconds and only open their own connections.
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


# -- the whole check ----------------------------------------------------------------------------


def verify_store(
    reader: StoreReader,
    data_dir: Path,
    verifier_key: VerifierKey | None,
    *,
    trusted_notes: Sequence[tuple[str, str]] = (),
    page_size: int = 20_000,
    workers: int | None = None,
    parallel_min: int = PARALLEL_MIN,
) -> VerifyReport:
    """Verify the store behind ``reader`` against the integrity folder of ``data_dir``.

    ``verifier_key`` checks the checkpoints (``None``: only possible when there are
    none). ``trusted_notes`` are extra signed checkpoints, as ``(note text, source)``,
    that an auditor kept: they must verify and be reproduced like the log's own.
    ``workers`` processes (default: one per core) compare ranges of the store at once
    when there are at least ``parallel_min`` positions and the store can be opened again.
    """
    started = time.perf_counter()
    paths = IntegrityPaths.of(data_dir)
    report = VerifyReport(reader.description)
    trusted, key = _trusted_checkpoints(
        CheckpointLog(paths.checkpoints), verifier_key, trusted_notes, report
    )
    report.checkpoints = len(trusted)
    report.latest = trusted[-1].checkpoint if trusted else None
    if not trusted:
        if not report.findings:
            where = paths.folder
            report.findings.append(
                Finding(
                    "unsealed",
                    f"no signed checkpoints in {where}: nothing to verify against "
                    "(run `sferum-audit seal`)"
                    if key is not None or not paths.checkpoints.exists()
                    else "no key to check the checkpoints with: pass the log's public key "
                    "(--public-key)",
                )
            )
        report.seconds = time.perf_counter() - started
        return report
    covered = trusted[-1].checkpoint.size
    with LeafFile(paths.leaves) as leaves:
        report.sealed = sealed = leaves.count()
        report.head = head = reader.head()
        high = min(head, sealed)
        count = workers if workers is not None else _cpus()
        executor: ProcessPoolExecutor | None = None
        futures: list[Future[RangeOutcome]] = []
        if reader.spec is not None and count > 1 and high >= parallel_min:
            executor = ProcessPoolExecutor(count, mp_context=_context())
            report.workers = count
            futures = [
                executor.submit(
                    compare_range_in_process,
                    reader.spec,
                    paths.leaves,
                    low,
                    part_high,
                    covered,
                    page_size,
                )
                for low, part_high in _split(high, count)
            ]
        try:
            # Meanwhile, here: is the leaf file what the checkpoints signed?
            authentic = _authenticate_leaves(leaves, trusted, report)
            if authentic < covered or authentic < sealed:
                for future in futures:
                    future.cancel()
                _degraded_scan(reader, leaves, authentic, trusted, report, page_size)
            else:
                outcomes = (
                    (future.result() for future in futures)
                    if futures
                    else iter([compare_range(reader, leaves, 0, high, covered, page_size)])
                )
                for outcome in outcomes:
                    _add(report, outcome, reader.gapless)
                    if outcome.finding is not None:
                        break
                if not report.findings and head < sealed:
                    _check_missing_tail(leaves, head, sealed, covered, report)
            report.unsealed = reader.count_after(covered)
            holes_after = report.unsealed < head - covered
            if not reader.gapless and (report.holes or holes_after) and not report.findings:
                _deleted_not_burned(reader, report)
            if reader.gapless and not report.findings and report.unsealed < head - covered:
                _first_unsealed_gap(reader, covered, head, page_size, report)
        finally:
            if executor is not None:
                executor.shutdown(cancel_futures=True)
    report.seconds = time.perf_counter() - started
    return report


def verify_log(
    recorder: ApplicationRecorder,
    data_dir: Path,
    *,
    settings: IntegritySettings | None = None,
    public_key: VerifierKey | str | None = None,
    trusted_checkpoints: Sequence[tuple[str, str]] = (),
    workers: int | None = None,
    parallel_min: int = PARALLEL_MIN,
) -> VerifyReport:
    """Verify ``recorder``'s store; the key is ``public_key`` or the log's own.

    Without ``public_key`` the log's signing key (configured, or the key file in the
    integrity folder) is used, under the checkpoints' origin: an auditor who does not
    trust the server's files passes the published key instead.
    """
    settings = settings or IntegritySettings()
    paths = IntegrityPaths.of(data_dir)
    key = _resolve_key(settings, paths, public_key)
    reader = open_reader(recorder)
    try:
        return verify_store(
            reader,
            data_dir,
            key,
            trusted_notes=trusted_checkpoints,
            page_size=settings.integrity_page_size,
            workers=workers,
            parallel_min=parallel_min,
        )
    finally:
        reader.close()


def _resolve_key(
    settings: IntegritySettings, paths: IntegrityPaths, public_key: VerifierKey | str | None
) -> VerifierKey | None:
    if isinstance(public_key, VerifierKey):
        return public_key
    if isinstance(public_key, str):
        return VerifierKey.parse(public_key)
    if not settings.has_key(paths):
        return None
    private = settings.load_signing_key(paths)
    log = CheckpointLog(paths.checkpoints)
    try:
        latest = log.last()
    except EvidenceError:  # a bad last line, reported by the check itself
        entries = log.read_lenient()[0]
        latest = entries[-1] if entries else None
    if latest is not None:
        name = parse_note(latest.note).signatures[0].key_name
    else:
        name = settings.log_origin or default_origin()
    return VerifierKey(name, private.public_key())


def raw_rows(reader: StoreReader, page_size: int = 20_000) -> int:
    """Read every row and do nothing else: the store's raw scan rate, for comparison."""
    count = 0
    for page in pages(reader, 0, reader.head(), page_size):
        count += len(page)
    return count
