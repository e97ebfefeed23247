"""Garbage-collector settings for the processes that work a batch or a page at a time.

A batch of commands, or a page of a replay, allocates tens of thousands of short-lived
container objects (commands, events, parsed fields, rows) while the process holds many
long-lived ones (the aggregate cache, the views' key cache). With CPython's default
first threshold (a young collection every 700 allocations) the collector ran thousands
of times and kept re-scanning the long-lived objects: about a third of the ingest's CPU
(189 vs 133 microseconds per command) and a fifth of a 1M-event replay (about 4 s vs
0.4 s of collection). Almost all of that garbage is freed by reference counting anyway;
the collector stays on, it only runs less often.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

YOUNG_THRESHOLD: Final = 50_000
"""Allocations between young collections in the pipeline process (CPython's default: 700)."""

BULK_THRESHOLD: Final = 20_000
"""The same during a replay, a check or an as-of build (measured there)."""


def tune_for_batches() -> None:
    """For the life of the pipeline process: fewer, larger collections; the older
    generations keep their ratios, and a higher threshold set by an operator is kept."""
    young, middle, old = gc.get_threshold()
    gc.set_threshold(max(YOUNG_THRESHOLD, young), middle, old)


@contextmanager
def fewer_collections(threshold: int = BULK_THRESHOLD) -> Iterator[None]:
    """Raises the collector's first threshold to ``threshold`` (if lower) for the block,
    and restores the thresholds after it, also when the block fails."""
    before = gc.get_threshold()
    gc.set_threshold(max(threshold, before[0]), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)
