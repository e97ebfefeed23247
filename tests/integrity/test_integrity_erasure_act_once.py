"""An erasure's act is written once: the first writer wins, whole, and every later one
(a redelivery, a rerun, another instance) keeps it."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path

from sferum_audit.integrity.erasure_act import new_act, write_act_once


def act(marker: str) -> object:
    return new_act(
        act_id="er/1",
        school_id="sch-1",
        operator_name="School 1",
        subject_id="p-1",
        requested_by="p-1",
        administrator_id="adm-1",
        reason=marker,
        destroyed_at=datetime(2024, 12, 10, tzinfo=UTC),
        erasure_event={},
        key_destroyed_now=True,
        system="sferum-audit",
        extract=[],
    )


def test_the_first_act_written_stays_and_later_writers_are_told(tmp_path: Path) -> None:
    path, written = write_act_once(tmp_path, act("first"))  # type: ignore[arg-type]
    assert written
    again, written_again = write_act_once(tmp_path, act("second"))  # type: ignore[arg-type]
    assert again == path
    assert not written_again
    assert json.loads(path.read_text(encoding="utf-8"))["reason"] == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["er_1.json", "er_1.txt"]


def test_writers_racing_leave_one_whole_act(tmp_path: Path) -> None:
    results: list[bool] = []
    threads = [
        threading.Thread(
            target=lambda n=n: results.append(write_act_once(tmp_path, act(f"w{n}"))[1])  # type: ignore[arg-type]
        )
        for n in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(True) == 1
    document = json.loads((tmp_path / "er_1.json").read_text(encoding="utf-8"))
    assert document["reason"].startswith("w")
    # the readable act is the winner's too
    assert f"(reason): {document['reason']}" in (tmp_path / "er_1.txt").read_text("utf-8")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
