"""Subjects' keys are stored wrapped under a key-encryption key kept outside the
database; destroying a key rotates it, so a copy of the destroyed key's row taken
before (a dead row version, the WAL, a backup) opens nothing."""

from __future__ import annotations

import base64
import json
import os
import stat

import pytest
import sqlalchemy as sa

from sferum_audit.application.settings import Settings
from sferum_audit.application.subject_keys import SubjectKeys, subject_keys


def stored_row(keys: SubjectKeys, subject: str) -> bytes | None:
    with keys._engine.connect() as conn:
        value = conn.execute(
            sa.select(subject_keys.c.key).where(subject_keys.c.subject_id == subject)
        ).scalar_one()
    return None if value is None else bytes(value)


def test_a_copy_of_a_destroyed_key_taken_before_opens_nothing_after_rotation(
    settings: Settings, unique: str
) -> None:
    keys = SubjectKeys.from_settings(settings)
    try:
        gone, kept = f"p-gone-{unique}", f"p-kept-{unique}"
        keys.ensure_keys([gone, kept])
        key, kept_key = keys.key_for_reading(gone), keys.key_for_reading(kept)
        assert key is not None
        assert kept_key is not None
        copy = stored_row(keys, gone)  # what a dead row, the WAL or a backup would keep
        assert copy is not None
        assert key not in copy  # stored wrapped, not as is
        assert keys._unwrap(gone, copy) == key

        assert keys.destroy(gone)

        assert keys._unwrap(gone, copy) is None  # its KEK is gone from the KEK file
        assert stored_row(keys, gone) is None
    finally:
        keys.close()
    again = SubjectKeys.from_settings(settings)  # a fresh process reads the live keys
    try:
        assert again.key_for_reading(kept) == kept_key
        assert again.key_for_reading(gone) is None
    finally:
        again.close()
    assert stat.S_IMODE(settings.kek_path.stat().st_mode) == 0o600
    assert len(json.loads(settings.kek_path.read_text())["keys"]) == 1


def test_the_kek_file_can_be_sealed_with_a_secret_from_outside(
    sqlite_settings: Settings, unique: str
) -> None:
    secret = base64.b64encode(os.urandom(32)).decode()
    sealed = sqlite_settings.model_copy(update={"key_encryption_key": secret})
    keys = SubjectKeys.from_settings(sealed)
    keys.ensure_keys([f"p-{unique}"])
    key = keys.key_for_reading(f"p-{unique}")
    keys.close()
    assert b'"keys"' not in sealed.kek_path.read_bytes()  # not readable without the secret

    wrong = sqlite_settings.model_copy(
        update={"key_encryption_key": base64.b64encode(os.urandom(32)).decode()}
    )
    with pytest.raises(RuntimeError, match="does not open"):
        SubjectKeys.from_settings(wrong)
    right = SubjectKeys.from_settings(sealed)
    try:
        assert right.key_for_reading(f"p-{unique}") == key
    finally:
        right.close()


def test_rotations_and_writers_at_the_same_time_lose_no_live_key(
    settings: Settings, unique: str
) -> None:
    import threading

    instances = [SubjectKeys.from_settings(settings) for _ in range(3)]
    try:
        doomed = [f"p-doomed-{n}-{unique}" for n in range(6)]
        instances[0].ensure_keys(doomed)
        errors: list[BaseException] = []

        def destroy(keys: SubjectKeys, subjects: list[str]) -> None:
            try:
                for subject in subjects:
                    keys.destroy(subject)
            except BaseException as error:  # reported below
                errors.append(error)

        def write(keys: SubjectKeys) -> None:
            try:
                for n in range(30):
                    keys.ensure_keys([f"p-new-{n}-{unique}"])
            except BaseException as error:  # reported below
                errors.append(error)

        threads = [
            threading.Thread(target=destroy, args=(instances[0], doomed[:3])),
            threading.Thread(target=destroy, args=(instances[1], doomed[3:])),
            threading.Thread(target=write, args=(instances[2],)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        made = {
            f"p-new-{n}-{unique}": instances[2].key_for_reading(f"p-new-{n}-{unique}")
            for n in range(30)
        }
    finally:
        for keys in instances:
            keys.close()
    fresh = SubjectKeys.from_settings(settings)
    try:
        for subject, key in made.items():
            assert key is not None
            assert fresh.key_for_reading(subject) == key, subject
        assert all(fresh.key_for_reading(s) is None for s in doomed)
    finally:
        fresh.close()
