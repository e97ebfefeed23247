"""Reading pages ahead in a thread: the same pages in the same order, errors where they
happened, and no thread left behind."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from sferum_audit.application.bootstrap import build_audit_log
from sferum_audit.application.settings import Settings
from sferum_audit.projections.pages import PageReader, read_ahead


def numbers(upto: int, produced: list[int], fail_at: int | None = None) -> Iterator[int]:
    for n in range(upto):
        if n == fail_at:
            raise LookupError(f"page {n} could not be read")
        produced.append(n)
        yield n


def reader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "sferum-audit-read-ahead"]


def test_every_page_in_order() -> None:
    produced: list[int] = []
    with read_ahead(numbers(50, produced), depth=2) as pages:
        assert list(pages) == list(range(50))
    assert not reader_threads()


def test_an_error_comes_after_the_pages_before_it() -> None:
    seen: list[int] = []

    def consume() -> None:
        with read_ahead(numbers(10, [], fail_at=6)) as pages:
            seen.extend(pages)

    with pytest.raises(LookupError, match="page 6"):
        consume()
    assert seen == [0, 1, 2, 3, 4, 5]
    assert not reader_threads()


def test_leaving_early_stops_the_reader() -> None:
    produced: list[int] = []
    with read_ahead(numbers(1000, produced), depth=2) as pages:
        for n in pages:
            if n == 3:
                break
    assert not reader_threads()
    assert len(produced) <= 4 + 2 + 1  # what was taken, what waited, and one in hand


@pytest.mark.postgres
def test_the_services_postgres_recorder_is_read_with_the_plain_page_query(
    postgres_settings: Settings,
) -> None:
    app = build_audit_log(postgres_settings)
    try:
        assert PageReader(app.recorder, [], 100).on_postgres()
    finally:
        app.close()
