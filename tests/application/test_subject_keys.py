"""Subject keys: made once per person, shared by every process, gone for good once destroyed."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sferum_audit.application.settings import Settings
from sferum_audit.application.subject_keys import SubjectKeys


@pytest.fixture
def two_processes(settings: Settings) -> Iterator[tuple[SubjectKeys, SubjectKeys]]:
    first, second = SubjectKeys.from_settings(settings), SubjectKeys.from_settings(settings)
    try:
        yield first, second
    finally:
        first.close()
        second.close()


def test_a_key_made_by_one_process_is_the_key_another_process_uses(
    two_processes: tuple[SubjectKeys, SubjectKeys], unique: str
) -> None:
    first, second = two_processes
    subject = f"p-{unique}"
    first.ensure_keys([subject])
    second.ensure_keys([subject, f"p-other-{unique}"])

    made = first.key_for_reading(subject)
    assert made is not None
    assert second.key_for_writing(subject) == made


def test_many_new_subjects_each_get_their_own_key_in_one_call(
    two_processes: tuple[SubjectKeys, SubjectKeys], unique: str
) -> None:
    first, second = two_processes
    subjects = [f"p-{n}-{unique}" for n in range(1200)]  # more than one statement's chunk
    first.ensure_keys(subjects)

    keys = [second.key_for_reading(s) for s in subjects]
    assert None not in keys
    assert len(set(keys)) == len(subjects)


def test_a_destroyed_key_is_not_made_again_by_another_process(
    two_processes: tuple[SubjectKeys, SubjectKeys], unique: str
) -> None:
    first, second = two_processes
    subject = f"p-{unique}"
    first.ensure_keys([subject])
    assert first.destroy(subject)

    second.ensure_keys([subject])
    assert second.key_for_writing(subject) is None
    assert second.key_for_reading(subject) is None


def test_several_processes_opening_a_new_store_at_once_all_succeed(tmp_path: Path) -> None:
    failures: list[BaseException] = []
    for attempt in range(20):  # the race was lost about one time in eight
        settings = Settings(data_dir=tmp_path / f"store-{attempt}")

        def open_and_close(settings: Settings = settings) -> None:
            try:
                SubjectKeys.from_settings(settings).close()
            except BaseException as error:  # collected for the assertion
                failures.append(error)

        threads = [threading.Thread(target=open_and_close) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert failures == []
