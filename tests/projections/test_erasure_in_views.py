"""Erasure (152-FZ): the live views forget a person's personal data when the erasure is
recorded, and a rebuild after the key is destroyed gives exactly the same rows."""

from __future__ import annotations

from typing import Any

from sferum_audit.application.commands import ErasePersonalData, parse_command
from sferum_audit.application.erasure import erase
from sferum_audit.application.service import AuditLog
from sferum_audit.domain.personal_data import ERASED
from sferum_audit.projections import queries
from sferum_audit.projections.database import ViewsDatabase
from sferum_audit.projections.replay import check, digests, rebuild
from sferum_audit.projections.runner import ViewRunner


def erase_person(app: AuditLog, school: str, person: str) -> None:
    command = parse_command(
        {
            "command_id": f"{school}-erase-{person}",
            "type": "erase-personal-data",
            "school_id": school,
            "actor": {"id": f"{school}-admin", "role": "administrator"},
            "occurred_at": "2024-12-05T10:00:00+00:00",
            "erasure_id": f"e-{person}",
            "subject_id": person,
            "requested_by": person,
            "basis": "заявление субъекта",
        }
    )
    assert isinstance(command, ErasePersonalData)
    outcome: Any = erase(app, command)
    assert outcome.result.accepted, outcome.result.as_dict()


def test_erasure_reaches_every_view_and_matches_a_rebuild(
    recorded: AuditLog, current: ViewsDatabase, school: str
) -> None:
    s1, s2 = f"{school}-s1", f"{school}-s2"
    erase_person(recorded, school, s2)
    erase_person(recorded, school, s1)
    runner = ViewRunner(recorded, current)
    runner.catch_up()
    rows = queries.audit_rows(current, queries.AuditFilter(school=school))
    about = {r["target_id"]: r["reason"] for r in rows}
    assert about == {s1: ERASED, s2: ERASED}
    profiles = {p["profile_id"]: p["display_name"] for p in queries.profiles(current, school)}
    assert profiles[s1] == profiles[s2] == ERASED
    assert profiles[f"{school}-t1"] == "Анна Петровна"
    from datetime import UTC, datetime

    incident = next(
        i
        for i in queries.incidents(current, datetime.now(UTC), school=school)
        if i["incident_id"] == "inc-1"
    )
    assert incident["description"] == incident["how_noticed"] == incident["findings"] == ERASED
    assert {step["note"] for step in incident["containment_steps"]} == {ERASED}
    outcome = check(recorded, current)
    assert outcome.ok, [d.describe() for d in outcome.differences]
    before = digests(current, current.live, runner.names)
    assert rebuild(recorded, current).digests == before
