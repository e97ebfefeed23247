"""Closed by default: the data folder is 0700, every store file 0600.

The report's attack: on the SQLite default, events.sqlite, subject-keys.sqlite and
views.sqlite were 0644 in a 0755 folder, and another local user copied them and decrypted
a pupil's name. Each test starts from the permissive umask 022 the attacker relied on.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from integrity_helpers import record_school

from sferum_audit.application.bootstrap import build_audit_log
from sferum_audit.application.settings import Settings
from sferum_audit.integrity.sealer import Sealer
from sferum_audit.integrity.settings import IntegritySettings
from sferum_audit.projections.database import ViewsDatabase


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def everything_under(folder: Path) -> list[Path]:
    return [folder, *folder.rglob("*")]


def test_the_sqlite_stores_views_and_evidence_are_readable_by_their_owner_only(
    tmp_path: Path, permissive_umask: None, unique: str
) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    app = build_audit_log(settings)
    views = ViewsDatabase.sqlite_file(settings.data_dir / "views.sqlite")
    try:
        record_school(app, f"s{unique}", 5)
        sealer = Sealer(
            app.recorder, settings.data_dir, IntegritySettings(log_origin="t.example/x")
        )
        assert sealer.run_once(force=True).checkpoint is not None
        sealer.close()
        with views.engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE probe (x)")
        # While the stores are open, with their write-ahead logs beside them.
        names = {p.name for p in settings.data_dir.iterdir()}
        assert {"events.sqlite", "subject-keys.sqlite", "views.sqlite", "integrity"} <= names
        assert {"events.sqlite-wal", "events.sqlite-shm", "views.sqlite-wal"} <= names
        for path in everything_under(settings.data_dir):
            expected = 0o700 if path.is_dir() else 0o600
            assert mode(path) == expected, f"{path} is {oct(mode(path))}"
    finally:
        views.engine.dispose()
        app.close()


def test_files_left_open_by_an_earlier_version_are_closed_on_start(
    tmp_path: Path, permissive_umask: None
) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    for name in ("events.sqlite", "subject-keys.sqlite", "views.sqlite-wal"):
        (data / name).touch(mode=0o644)
    build_audit_log(Settings(data_dir=data)).close()
    assert mode(data) == 0o700
    for name in ("events.sqlite", "subject-keys.sqlite", "views.sqlite-wal"):
        assert mode(data / name) == 0o600
