"""The garbage collector's thresholds during a bulk replay, and after it."""

from __future__ import annotations

import gc

import pytest

from sferum_audit.projections.collection import fewer_collections


def test_thresholds_are_raised_for_the_block_and_restored_after_a_failure() -> None:
    before = gc.get_threshold()
    seen: list[tuple[int, ...]] = []

    def failing_replay() -> None:
        with fewer_collections(50_000):
            seen.append(gc.get_threshold())
            raise RuntimeError("inside")

    with pytest.raises(RuntimeError, match="inside"):
        failing_replay()
    assert seen == [(max(50_000, before[0]), *before[1:])]
    assert gc.get_threshold() == before


def test_a_higher_threshold_is_kept() -> None:
    before = gc.get_threshold()
    gc.set_threshold(100_000, *before[1:])
    try:
        with fewer_collections(20_000):
            assert gc.get_threshold()[0] == 100_000
    finally:
        gc.set_threshold(*before)
