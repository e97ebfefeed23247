"""Who may erase whom: only an administrator of the school where the person is
registered, on the request of the person or of a parent registered for that child, and
only a person the log knows. Every refusal records nothing and destroys no key."""

from __future__ import annotations

from typing import Any

import pytest

from sferum_audit.application.commands import ErasePersonalData, parse_command
from sferum_audit.application.erasure import erase
from sferum_audit.application.sample_school import sample_school
from sferum_audit.application.service import AuditLog


def two_schools(app: AuditLog, unique: str) -> dict[str, str]:
    """Two sample schools; who is who in the first, and the second's administrator."""
    home, other = sample_school(f"h{unique}"), sample_school(f"o{unique}")
    results = app.handle_batch([parse_command(c) for c in home + other])
    assert all(r.accepted for r in results)
    removal = next(c for c in home if c["type"] == "remove-content")
    student = removal["author_id"]
    parent = next(
        c["profile_id"]
        for c in home
        if c["type"] == "register-profile" and student in c.get("children", [])
    )
    other_parent = next(
        c["profile_id"]
        for c in home
        if c["type"] == "register-profile"
        and c["role"] == "parent"
        and c["profile_id"] != parent
        and student not in c.get("children", [])
    )
    return {
        "school": home[0]["school_id"],
        "admin": home[0]["first_administrator_id"],
        "student": student,
        "parent": parent,
        "other_parent": other_parent,
        "other_school": other[0]["school_id"],
        "other_admin": other[0]["first_administrator_id"],
    }


def erasure(who: dict[str, str], **changes: str) -> ErasePersonalData:
    raw: dict[str, Any] = {
        "command_id": "erase-" + "-".join(f"{k}={v}" for k, v in sorted(changes.items())),
        "type": "erase-personal-data",
        "school_id": who["school"],
        "actor": {"id": who["admin"], "role": "administrator"},
        "occurred_at": "2024-12-09T10:00:00+00:00",
        "erasure_id": "er-1",
        "subject_id": who["student"],
        "requested_by": who["parent"],
        "basis": "заявление родителя, 152-ФЗ ст. 21",
    }
    actor = changes.pop("actor", None)
    if actor is not None:
        raw["actor"] = {"id": actor, "role": "administrator"}
    raw.update(changes)
    command = parse_command(raw)
    assert isinstance(command, ErasePersonalData)
    return command


def refused_without_trace(app: AuditLog, command: ErasePersonalData, code: str) -> None:
    keys = app.subject_keys
    keys.ensure_keys([command.subject_id])  # a key to lose, even for an unknown id
    head = app.recorder.max_notification_id()
    outcome = erase(app, command)
    assert outcome.result.status == "rejected"
    assert outcome.result.error_code == code, outcome.result.as_dict()
    after = app.recorder.select_notifications((head or 0) + 1, 100)
    # nothing but the bookkeeping of the refusal (its receipt) is recorded
    assert [n.topic.rsplit(":", 1)[-1] for n in after] in ([], ["CommandReceipt.Refused"])
    assert not outcome.key_destroyed_now
    assert app.subject_keys.key_for_reading(command.subject_id) is not None


def test_an_administrator_of_another_school_may_not_erase_a_pupil(
    app: AuditLog, unique: str
) -> None:
    who = two_schools(app, unique)
    # The other school's administrator, acting for their own school...
    refused_without_trace(
        app,
        erasure(who, school_id=who["other_school"], actor=who["other_admin"]),
        "erasure-not-permitted",
    )
    # ...or claiming the pupil's school, which they do not administer.
    refused_without_trace(app, erasure(who, actor=who["other_admin"]), "erasure-not-permitted")


def test_a_person_the_log_does_not_know_cannot_be_erased(app: AuditLog, unique: str) -> None:
    who = two_schools(app, unique)
    for ghost in ("../../etc/x", f"ghost-{unique}"):
        refused_without_trace(
            app, erasure(who, subject_id=ghost, requested_by=ghost), "unknown-data-subject"
        )


def test_only_the_person_or_their_registered_parent_may_ask(app: AuditLog, unique: str) -> None:
    who = two_schools(app, unique)
    refused_without_trace(
        app, erasure(who, requested_by=who["other_parent"]), "erasure-not-permitted"
    )
    refused_without_trace(app, erasure(who, requested_by=who["admin"]), "erasure-not-permitted")


@pytest.mark.parametrize("requester", ["student", "parent"])
def test_the_schools_administrator_erases_on_the_persons_or_parents_request(
    app: AuditLog, unique: str, requester: str
) -> None:
    who = two_schools(app, unique)
    outcome = erase(app, erasure(who, requested_by=who[requester]))
    assert outcome.result.status == "recorded", outcome.result.as_dict()
    assert outcome.key_destroyed_now
    assert app.subject_keys.key_for_reading(who["student"]) is None
