"""The integrity evidence files: the leaf file, the checkpoint log, the sealer's state.

* ``leaves.bin`` holds the leaf hash of every sealed position, 32 bytes each, leaf index
  ``i`` (position ``i + 1``) at offset ``32 * i``. It lets ``verify`` name the exact
  position where the store differs; its content is itself protected by the signed
  checkpoints (``verify`` recomputes the root of its first ``N`` leaves for every
  checkpoint of size ``N`` before trusting it).
* ``checkpoints.log`` holds every signed checkpoint, one JSON object a line:
  ``{"signed_at": "<UTC ISO 8601>", "checkpoint": "<C2SP signed note text>"}``.
  Only the note is evidence; ``signed_at`` is for people.
* ``tree-state.bin`` is the sealer's compact Merkle state (:class:`merkle.CompactState`),
  a cache that spares re-hashing ``leaves.bin`` on start.

All three are appended to or replaced by the sealer only; a torn last write (a crash
mid-append) is cut off by the sealer when it starts again.
"""

from __future__ import annotations

import json
import mmap
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType

from sferum_audit.integrity.checkpoint import Checkpoint, parse_checkpoint
from sferum_audit.integrity.merkle import HASH_SIZE, CompactState
from sferum_audit.integrity.note import NoteError

__all__ = [
    "CheckpointEntry",
    "CheckpointLog",
    "EvidenceError",
    "LeafFile",
    "read_state",
    "write_state",
]


class EvidenceError(ValueError):
    """An evidence file is malformed or inconsistent."""


# -- the leaf file ------------------------------------------------------------------------------


class LeafFile:
    """Random and sequential reads of ``leaves.bin`` (and appends, for the sealer)."""

    def __init__(self, path: Path, *, writable: bool = False) -> None:
        """Open ``path``; a missing file reads as empty (and is created if ``writable``)."""
        self.path = path
        self._writable = writable
        self._map: mmap.mmap | None = None
        self._mapped_count = 0
        if writable:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        elif path.exists():
            self._fd = os.open(path, os.O_RDONLY)
        else:
            self._fd = -1

    def __enter__(self) -> LeafFile:
        """Use as a context manager that closes the file."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the file."""
        self.close()

    def close(self) -> None:
        """Release the file and its mapping."""
        if self._map is not None:
            self._map.close()
            self._map = None
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def byte_size(self) -> int:
        """The file's length in bytes (0 if it does not exist)."""
        return os.fstat(self._fd).st_size if self._fd >= 0 else 0

    def count(self) -> int:
        """How many whole leaves the file holds."""
        return self.byte_size() // HASH_SIZE

    def read(self, start: int, count: int) -> bytes:
        """The concatenated leaves ``start .. start + count - 1`` (fewer at the end)."""
        if self._fd < 0 or count <= 0:
            return b""
        return os.pread(self._fd, count * HASH_SIZE, start * HASH_SIZE)

    def leaf(self, index: int) -> bytes:
        """The leaf hash at ``index`` (a memory-mapped read)."""
        if index >= self._mapped_count:
            self._remap()
            if not 0 <= index < self._mapped_count:
                raise IndexError(f"leaf {index} is beyond the {self._mapped_count} sealed")
        assert self._map is not None
        offset = index * HASH_SIZE
        return self._map[offset : offset + HASH_SIZE]

    def _remap(self) -> None:
        count = self.count()
        if self._map is not None:
            self._map.close()
            self._map = None
        self._mapped_count = 0
        if count:
            self._map = mmap.mmap(self._fd, count * HASH_SIZE, access=mmap.ACCESS_READ)
            self._mapped_count = count

    def cut_partial(self) -> None:
        """Drop a torn last leaf (fewer than 32 bytes), left by a crash mid-append."""
        self._require_writable()
        size = self.byte_size()
        if size % HASH_SIZE:
            os.ftruncate(self._fd, size - size % HASH_SIZE)

    def cut_to(self, count: int) -> None:
        """Keep only the first ``count`` leaves (the sealer, rolling back unsigned leaves)."""
        self._require_writable()
        os.ftruncate(self._fd, count * HASH_SIZE)

    def append(self, data: bytes) -> None:
        """Append concatenated leaf hashes at the end of the file."""
        self._require_writable()
        if len(data) % HASH_SIZE:
            raise ValueError("leaf data must be whole 32-byte hashes")
        offset = self.byte_size()
        view = memoryview(data)
        while view:
            written = os.pwrite(self._fd, view, offset)
            offset += written
            view = view[written:]

    def sync(self) -> None:
        """Flush appended leaves to stable storage."""
        if self._fd >= 0:
            os.fsync(self._fd)

    def _require_writable(self) -> None:
        if not self._writable:
            raise RuntimeError("the leaf file was opened read-only")


# -- the checkpoint log -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CheckpointEntry:
    """One line of ``checkpoints.log``: its signed note, parsed but NOT verified."""

    line: int
    signed_at: str | None
    note: str
    checkpoint: Checkpoint


class CheckpointLog:
    """Reads and appends ``checkpoints.log``."""

    def __init__(self, path: Path) -> None:
        """The log at ``path`` (missing means no checkpoints yet)."""
        self.path = path

    def read(self) -> tuple[list[CheckpointEntry], str | None]:
        """Every checkpoint in file order, and a note if a torn last line was ignored.

        Raise :class:`EvidenceError` naming the line of anything malformed: the file
        is only ever appended to by the sealer, so a bad complete line is tampering.
        """
        if not self.path.exists():
            return [], None
        data = self.path.read_bytes()
        torn: str | None = None
        if data and not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            torn = f"{self.path.name}: ignored an incomplete last line (a write cut short)"
            data = data[:cut]
        entries = []
        for number, raw in enumerate(data.splitlines(), 1):
            entries.append(self._parse_line(number, raw))
        return entries, torn

    def read_lenient(self) -> tuple[list[CheckpointEntry], list[str], str | None]:
        """Like :meth:`read`, but a bad line is reported and skipped, not raised."""
        if not self.path.exists():
            return [], [], None
        data = self.path.read_bytes()
        torn: str | None = None
        if data and not data.endswith(b"\n"):
            data = data[: data.rfind(b"\n") + 1]
            torn = f"{self.path.name}: ignored an incomplete last line (a write cut short)"
        entries, problems = [], []
        for number, raw in enumerate(data.splitlines(), 1):
            try:
                entries.append(self._parse_line(number, raw))
            except EvidenceError as exc:
                problems.append(str(exc))
        return entries, problems, torn

    def _parse_line(self, number: int, raw: bytes) -> CheckpointEntry:
        where = f"{self.path.name} line {number}"
        try:
            record = json.loads(raw)
        except ValueError as exc:
            raise EvidenceError(f"{where} is not JSON: {exc}") from None
        if not isinstance(record, dict) or not isinstance(record.get("checkpoint"), str):
            raise EvidenceError(f"{where} has no 'checkpoint' text")
        signed_at = record.get("signed_at")
        note = record["checkpoint"]
        try:
            checkpoint = parse_checkpoint(note)
        except NoteError as exc:
            raise EvidenceError(f"{where}: {exc}") from None
        return CheckpointEntry(
            number, signed_at if isinstance(signed_at, str) else None, note, checkpoint
        )

    def last(self) -> CheckpointEntry | None:
        """The latest complete checkpoint, reading only the end of the file."""
        if not self.path.exists():
            return None
        with self.path.open("rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            chunk = 1 << 16
            while True:
                start = max(0, size - chunk)
                handle.seek(start)
                data = handle.read(size - start)
                end = data.rfind(b"\n")
                if end < 0:
                    if start == 0:
                        return None
                    chunk *= 4
                    continue
                begin = data.rfind(b"\n", 0, end) + 1
                if begin == 0 and start > 0:
                    chunk *= 4  # the last line is longer than what was read
                    continue
                raw = data[begin:end]
                # Line numbers are only known when reading the whole file.
                return self._parse_line(0, raw)

    def cut_torn_tail(self) -> None:
        """Drop an incomplete last line (the sealer, on start)."""
        if not self.path.exists():
            return
        with self.path.open("r+b") as handle:
            data = handle.read()
            if data and not data.endswith(b"\n"):
                handle.truncate(data.rfind(b"\n") + 1)

    def append(self, note: str, signed_at: datetime) -> None:
        """Append one signed checkpoint and flush it to stable storage."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        line = json.dumps(
            {"signed_at": signed_at.isoformat(), "checkpoint": note}, ensure_ascii=False
        )
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (line + "\n").encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)


# -- the sealer's state -------------------------------------------------------------------------


def read_state(path: Path) -> CompactState | None:
    """The saved compact state, or ``None`` if there is none or it does not decode."""
    try:
        return CompactState.from_bytes(path.read_bytes())
    except (OSError, ValueError):
        return None


def write_state(path: Path, state: CompactState) -> None:
    """Replace the saved state atomically (write aside, fsync, rename)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, state.to_bytes())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
