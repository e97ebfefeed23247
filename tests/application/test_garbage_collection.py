"""The batch processes collect garbage less often, without turning the collector off;
a replay raises the threshold only for its own duration."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from sferum_audit.application.garbage_collection import (
    YOUNG_THRESHOLD,
    fewer_collections,
    tune_for_batches,
)


@pytest.fixture
def restored_thresholds() -> Iterator[tuple[int, int, int]]:
    before = gc.get_threshold()
    try:
        yield before
    finally:
        gc.set_threshold(*before)


def test_tuning_raises_only_the_young_threshold_and_keeps_collection_on(
    restored_thresholds: tuple[int, int, int],
) -> None:
    gc.set_threshold(700, 10, 10)
    tune_for_batches()
    assert gc.get_threshold() == (YOUNG_THRESHOLD, 10, 10)
    assert gc.isenabled()


def test_tuning_never_lowers_a_higher_threshold_set_by_the_operator(
    restored_thresholds: tuple[int, int, int],
) -> None:
    gc.set_threshold(YOUNG_THRESHOLD * 2, 10, 10)
    tune_for_batches()
    assert gc.get_threshold()[0] == YOUNG_THRESHOLD * 2


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
