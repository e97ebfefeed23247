"""Unauthorised-access reports (4.2.2) through the service."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sferum_app_builder import (
    ADMIN,
    CLASS_TEACHER,
    OTHER_PARENT,
    PARENT,
    SECURITY,
    STUDENT,
    STUDENT_6B,
    T0,
    TEACHER,
    As,
    SchoolBuilder,
)


def report(school: SchoolBuilder, actor: As, affected: str = STUDENT.id, incident="inc-1"):
    return school.send(
        "report-unauthorised-access",
        actor,
        incident_id=incident,
        affected_profile_id=affected,
        elzhur_account_id="elz-100",
        noticed_at=T0,
        how_noticed="уведомление о входе с нового устройства",
        description="в профиле появились чужие сообщения",
        told={"school-administrator": T0, "platform-operator": T0 + timedelta(minutes=1)},
    )


def test_holder_reports_unauthorised_access(school: SchoolBuilder) -> None:
    result = report(school, STUDENT)
    assert result.status == "recorded"
    (event,) = school.events_of(result)
    assert (type(event).__name__, event.reporter_relation) == ("Reported", "holder")
    assert set(event.told) == {"school-administrator", "platform-operator"}
    assert school.incident("inc-1").state == "reported"


def test_parent_reports_for_their_child(school: SchoolBuilder) -> None:
    result = report(school, PARENT)
    assert result.status == "recorded"
    assert school.events_of(result)[0].reporter_relation == "parent"


@pytest.mark.parametrize(
    ("actor", "code"),
    [
        (OTHER_PARENT, "not-account-holder-or-parent"),
        (STUDENT_6B, "not-account-holder-or-parent"),
        (ADMIN, "not-account-holder-or-parent"),
        (SECURITY, "not-account-holder-or-parent"),
        (PARENT("student"), "role-not-held"),
    ],
    ids=["other-parent", "classmate", "administrator", "security", "parent-as-student"],
)
def test_others_cannot_report_access_to_someones_account(
    school: SchoolBuilder, actor: As, code: str
) -> None:
    result = report(school, actor)
    assert (result.status, result.error_code) == ("rejected", code)


def test_incident_of_an_unknown_profile_or_twice_is_refused(school: SchoolBuilder) -> None:
    assert report(school, STUDENT, affected="ghost").error_code == "invalid-value"
    assert report(school, STUDENT).status == "recorded"
    assert report(school, STUDENT).error_code == "access-incident-already-exists"


def handle(school: SchoolBuilder, step: str, actor: As = SECURITY):
    fields = {"incident_id": "inc-1"}
    if step == "take-containment-step":
        fields |= {"step": "sessions-revoked", "note": "все сессии завершены"}
    elif step in {"resolve-incident", "dismiss-incident"}:
        fields |= {"findings": "доступ получил одноклассник по паролю"}
    return school.send(step, actor, **fields)


def test_incident_moves_forward_reported_acknowledged_contained_resolved(
    school: SchoolBuilder,
) -> None:
    report(school, STUDENT)
    for step, state in [
        ("acknowledge-incident", "acknowledged"),
        ("take-containment-step", "contained"),
        ("take-containment-step", "contained"),
        ("resolve-incident", "resolved"),
    ]:
        assert handle(school, step).status == "recorded", step
        assert school.incident("inc-1").state == state


def test_administrator_handles_incidents_as_security_staff(school: SchoolBuilder) -> None:
    report(school, STUDENT)
    assert handle(school, "acknowledge-incident", ADMIN).status == "recorded"
    assert handle(school, "dismiss-incident", ADMIN).status == "recorded"
    assert school.incident("inc-1").state == "dismissed"


@pytest.mark.parametrize(
    "actor",
    [STUDENT, PARENT, TEACHER, CLASS_TEACHER, ADMIN("teacher"), TEACHER("security-officer")],
    ids=["holder", "parent", "teacher", "class-teacher", "admin-as-teacher", "claims-security"],
)
def test_only_security_staff_handle_incidents(school: SchoolBuilder, actor: As) -> None:
    report(school, STUDENT)
    result = handle(school, "acknowledge-incident", actor)
    assert (result.status, result.error_code) == ("rejected", "not-security-staff")
    handle(school, "acknowledge-incident")
    for step in ("take-containment-step", "resolve-incident", "dismiss-incident"):
        assert handle(school, step, actor).error_code == "not-security-staff", step
    assert school.incident("inc-1").state == "acknowledged"


@pytest.mark.parametrize(
    ("done", "attempt"),
    [
        ([], "take-containment-step"),
        ([], "resolve-incident"),
        ([], "dismiss-incident"),
        (["acknowledge-incident"], "acknowledge-incident"),
        (["acknowledge-incident", "take-containment-step"], "acknowledge-incident"),
        (["acknowledge-incident", "resolve-incident"], "take-containment-step"),
        (["acknowledge-incident", "resolve-incident"], "dismiss-incident"),
        (["acknowledge-incident", "dismiss-incident"], "resolve-incident"),
        (["acknowledge-incident", "dismiss-incident"], "acknowledge-incident"),
    ],
)
def test_incident_states_never_go_back(
    school: SchoolBuilder, done: list[str], attempt: str
) -> None:
    report(school, STUDENT)
    for step in done:
        assert handle(school, step).status == "recorded"
    state = school.incident("inc-1").state
    result = handle(school, attempt)
    assert (result.status, result.error_code) == ("rejected", "incident-state-order")
    assert school.incident("inc-1").state == state


def test_handling_an_unknown_incident_is_refused(school: SchoolBuilder) -> None:
    assert handle(school, "acknowledge-incident").error_code == "unknown-access-incident"


def test_reporter_records_a_later_notification_once(school: SchoolBuilder) -> None:
    school.send(
        "report-unauthorised-access",
        STUDENT,
        incident_id="inc-1",
        affected_profile_id=STUDENT.id,
        noticed_at=T0,
        how_noticed="письмо",
        description="чужой вход",
    )
    fields = {"incident_id": "inc-1", "party": "platform-operator", "told_at": T0}
    assert school.refused("record-notification", ADMIN, **fields) == "not-account-holder-or-parent"
    school.ok("record-notification", STUDENT, **fields)
    assert school.incident("inc-1").told == {"platform-operator": T0}
    assert school.refused("record-notification", STUDENT, **fields) == "incident-state-order"
