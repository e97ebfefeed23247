"""Unauthorised-access reports (4.2.2): who reports, and states that only move forward."""

from __future__ import annotations

from datetime import timedelta

import pytest
from domain_factories import T0, ctx

from sferum_audit.domain.access_incident import AccessIncident
from sferum_audit.domain.context import CommandContext
from sferum_audit.domain.errors import DomainError


def report(
    actor: str = "student-kolya", role: str = "student", parent_of_affected: bool = False
) -> AccessIncident:
    return AccessIncident.report(
        ctx(actor, role, at=T0),
        "school-58",
        "inc-1",
        "student-kolya",
        parent_of_affected,
        "elz-1",
        T0 - timedelta(hours=1),
        "письмо о входе с нового устройства",
        "кто-то вошёл в аккаунт",
        {"school-administrator": T0},
    )


def staff() -> CommandContext:
    return ctx("so", "security-officer")


def test_holder_reports_access_to_their_account() -> None:
    incident = report()
    assert (incident.state, incident.reporter_id) == ("reported", "student-kolya")
    assert incident.collect_events()[0].reporter_relation == "holder"


def test_parent_reports_for_their_child() -> None:
    incident = report("parent-olga", "parent", parent_of_affected=True)
    assert incident.collect_events()[0].reporter_relation == "parent"


@pytest.mark.parametrize(
    ("actor", "role", "parent_of_affected"),
    [
        ("student-petya", "student", False),
        ("parent-ivan", "parent", False),
        ("parent-olga", "teacher", True),
        ("adm", "administrator", False),
    ],
    ids=["classmate", "other-parent", "parent-not-acting-as-parent", "administrator"],
)
def test_others_cannot_report_someones_account(
    actor: str, role: str, parent_of_affected: bool
) -> None:
    with pytest.raises(DomainError) as refused:
        report(actor, role, parent_of_affected)
    assert refused.value.code == "not-account-holder-or-parent"


def test_access_cannot_be_noticed_after_it_is_reported() -> None:
    with pytest.raises(DomainError) as refused:
        AccessIncident.report(
            ctx("student-kolya", "student", at=T0),
            "school-58",
            "inc-1",
            "student-kolya",
            False,
            None,
            T0 + timedelta(minutes=1),
            "заметил",
            "описание",
            {},
        )
    assert refused.value.code == "invalid-value"


def test_incident_moves_forward_through_every_state_to_resolved() -> None:
    incident = report()
    incident.acknowledge(staff(), True)
    assert incident.state == "acknowledged"
    incident.take_containment_step(staff(), True, "sessions-revoked", "сессии сброшены")
    incident.take_containment_step(staff(), True, "password-reset", "пароль сменён")
    assert (incident.state, incident.containment_steps) == (
        "contained",
        ["sessions-revoked", "password-reset"],
    )
    incident.resolve(staff(), True, "доступ закрыт")
    assert incident.state == "resolved"


def test_incident_may_be_dismissed_after_acknowledgement_without_containment() -> None:
    incident = report()
    incident.acknowledge(staff(), True)
    incident.dismiss(staff(), True, "вход был самого ученика")
    assert incident.state == "dismissed"


@pytest.mark.parametrize(
    ("steps", "action", "code"),
    [
        ((), "contain", "incident-state-order"),
        ((), "resolve", "incident-state-order"),
        ((), "dismiss", "incident-state-order"),
        (("acknowledge",), "acknowledge", "incident-state-order"),
        (("acknowledge", "contain"), "acknowledge", "incident-state-order"),
        (("acknowledge", "resolve"), "contain", "incident-state-order"),
        (("acknowledge", "resolve"), "acknowledge", "incident-state-order"),
        (("acknowledge", "resolve"), "dismiss", "incident-state-order"),
        (("acknowledge", "dismiss"), "resolve", "incident-state-order"),
        (("acknowledge", "contain", "dismiss"), "contain", "incident-state-order"),
    ],
)
def test_incident_states_never_go_back_or_skip_acknowledgement(
    steps: tuple[str, ...], action: str, code: str
) -> None:
    incident = report()
    for step in steps:
        perform(incident, step)
    before = incident.state
    with pytest.raises(DomainError) as refused:
        perform(incident, action)
    assert refused.value.code == code
    assert incident.state == before


def perform(incident: AccessIncident, action: str, *, security: bool = True) -> None:
    actor = ctx("so", "security-officer")
    if action == "acknowledge":
        incident.acknowledge(actor, security)
    elif action == "contain":
        incident.take_containment_step(actor, security, "sessions-revoked", "сброс")
    elif action == "resolve":
        incident.resolve(actor, security, "итог")
    else:
        incident.dismiss(actor, security, "итог")


@pytest.mark.parametrize("action", ["acknowledge", "contain", "resolve", "dismiss"])
def test_only_security_staff_handle_incidents(action: str) -> None:
    incident = report()
    if action != "acknowledge":
        perform(incident, "acknowledge")
    before = incident.state
    with pytest.raises(DomainError) as refused:
        perform(incident, action, security=False)
    assert refused.value.code == "not-security-staff"
    assert incident.state == before


def test_only_the_reporter_records_whom_they_told_and_once_per_party() -> None:
    incident = report()
    with pytest.raises(DomainError) as refused:
        incident.record_notification(ctx("adm", "administrator"), "platform-operator", T0)
    assert refused.value.code == "not-account-holder-or-parent"
    incident.record_notification(ctx("student-kolya", "student"), "platform-operator", T0)
    assert set(incident.told) == {"school-administrator", "platform-operator"}
    with pytest.raises(DomainError) as refused:
        incident.record_notification(ctx("student-kolya", "student"), "platform-operator", T0)
    assert refused.value.code == "incident-state-order"


def test_unknown_containment_step_is_refused() -> None:
    incident = report()
    perform(incident, "acknowledge")
    with pytest.raises(DomainError) as refused:
        incident.take_containment_step(staff(), True, "format-disk", "note")
    assert refused.value.code == "invalid-value"
    assert incident.state == "acknowledged"
