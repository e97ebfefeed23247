"""The school: registration (2.2), administrators, classes, class teachers, roster (2.3)."""

from __future__ import annotations

import pytest
from domain_factories import ctx

from sferum_audit.domain.errors import DomainError
from sferum_audit.domain.school import School


def school() -> School:
    s = School.register(
        ctx("director", "school-administration"), "school-58", "Школа 58", "1065/1", "adm"
    )
    s.create_class(ctx("adm", "administrator"), "5a", "5А")
    s.create_class(ctx("adm", "administrator"), "6b", "6Б")
    return s


def test_school_is_registered_by_the_school_administration_with_its_first_administrator() -> None:
    s = school()
    assert s.is_administrator("adm")
    with pytest.raises(DomainError) as refused:
        School.register(ctx("adm", "administrator"), "school-59", "Школа 59", "1", "adm")
    assert refused.value.code == "not-school-administration"


def test_only_an_administrator_appoints_administrators() -> None:
    s = school()
    with pytest.raises(DomainError) as refused:
        s.appoint_administrator(
            ctx("teacher-ivanova", "teacher"), "teacher-ivanova", "приказ 2", True
        )
    assert refused.value.code == "not-administrator"
    assert not s.is_administrator("teacher-ivanova")
    s.admit(ctx("adm", "administrator"), "adm2", "staff", None)
    s.appoint_administrator(ctx("adm", "administrator"), "adm2", "приказ 2", True)
    assert s.state.administrators == {"adm", "adm2"}
    with pytest.raises(DomainError) as refused:
        s.appoint_administrator(ctx("adm", "administrator"), "adm2", "приказ 3", True)
    assert refused.value.code == "already-administrator"


@pytest.mark.parametrize("role", ["teacher", "class-teacher", "security-officer"])
def test_an_administrator_acts_under_2_3_only_in_the_administrator_role(role: str) -> None:
    s = school()
    s.admit(ctx("adm", "administrator"), "t-adm", "staff", None)
    s.appoint_administrator(ctx("adm", "administrator"), "t-adm", "приказ 2", True)
    for act in (
        lambda c: s.appoint_administrator(c, "x", "приказ 3", True),
        lambda c: s.assign_class_teacher(c, "5a", "t-adm"),
        lambda c: s.create_class(c, "7v", "7В"),
        lambda c: s.admit(c, "student-new", "student", "5a"),
    ):
        with pytest.raises(DomainError) as refused:
            act(ctx("t-adm", role))
        assert refused.value.code == "not-administrator"
    assert s.state.administrators == {"adm", "t-adm"}
    assert set(s.state.classes) == {"5a", "6b"}


def test_only_an_administrator_assigns_class_teachers() -> None:
    s = school()
    with pytest.raises(DomainError) as refused:
        s.assign_class_teacher(ctx("teacher-ivanova", "teacher"), "5a", "teacher-ivanova")
    assert refused.value.code == "not-administrator"
    assert s.classes_taught_by("teacher-ivanova") == frozenset()
    s.assign_class_teacher(ctx("adm", "administrator"), "5a", "ct-petrova")
    assert s.classes_taught_by("ct-petrova") == {"5a"}
    with pytest.raises(DomainError) as refused:
        s.assign_class_teacher(ctx("adm", "administrator"), "9z", "ct-petrova")
    assert refused.value.code == "unknown-class"


def test_released_class_teacher_no_longer_teaches_the_class() -> None:
    s = school()
    s.assign_class_teacher(ctx("adm", "administrator"), "5a", "ct-petrova")
    s.release_class_teacher(ctx("adm", "administrator"), "5a")
    assert s.classes_taught_by("ct-petrova") == frozenset()
    with pytest.raises(DomainError) as refused:
        s.release_class_teacher(ctx("adm", "administrator"), "5a")
    assert refused.value.code == "class-teacher-not-assigned"


def test_the_last_administrator_cannot_be_removed_or_leave() -> None:
    s = school()
    s.admit(ctx("adm", "administrator"), "adm", "staff", None)
    with pytest.raises(DomainError) as refused:
        s.remove_administrator(ctx("adm", "administrator"), "adm", "ушёл")
    assert refused.value.code == "last-administrator"
    with pytest.raises(DomainError) as refused:
        s.record_departure(ctx("adm", "administrator"), "adm", "ушёл")
    assert refused.value.code == "last-administrator"
    assert s.is_administrator("adm")


def test_departure_ends_administration_and_class_teaching() -> None:
    s = school()
    s.admit(ctx("adm", "administrator"), "ct-petrova", "staff", None)
    s.appoint_administrator(ctx("adm", "administrator"), "ct-petrova", "приказ", True)
    s.assign_class_teacher(ctx("adm", "administrator"), "5a", "ct-petrova")
    s.record_departure(ctx("adm", "administrator"), "ct-petrova", "уволилась")
    assert not s.is_administrator("ct-petrova")
    assert s.classes_taught_by("ct-petrova") == frozenset()
    assert "ct-petrova" not in s.state.roster


def test_student_is_admitted_into_a_class_and_transferred_to_another() -> None:
    s = school()
    s.admit(ctx("adm", "administrator"), "student-kolya", "student", "5a")
    assert s.transfer_student(ctx("adm", "administrator"), "student-kolya", "6b") == "5a"
    assert s.state.roster["student-kolya"].class_id == "6b"
    with pytest.raises(DomainError) as refused:
        s.transfer_student(ctx("adm", "administrator"), "student-kolya", "6b")
    assert refused.value.code == "class-already-exists"


@pytest.mark.parametrize(
    ("role", "class_id", "code"),
    [
        ("student", None, "unknown-class"),
        ("student", "9z", "unknown-class"),
        ("staff", "5a", "unknown-class"),
        ("alien", None, "invalid-value"),
    ],
)
def test_admission_needs_a_class_for_students_and_none_for_staff(role, class_id, code) -> None:
    s = school()
    with pytest.raises(DomainError) as refused:
        s.admit(ctx("adm", "administrator"), "p", role, class_id)
    assert refused.value.code == code
    assert "p" not in s.state.roster


def test_movement_is_recorded_by_administrators_only() -> None:
    s = school()
    with pytest.raises(DomainError) as refused:
        s.admit(ctx("teacher-ivanova", "teacher"), "student-kolya", "student", "5a")
    assert refused.value.code == "not-administrator"


@pytest.mark.parametrize("reason", ["", "   ", "x" * 1001])
def test_departure_reason_is_required_and_bounded(reason: str) -> None:
    s = school()
    s.admit(ctx("adm", "administrator"), "student-kolya", "student", "5a")
    with pytest.raises(DomainError) as refused:
        s.record_departure(ctx("adm", "administrator"), "student-kolya", reason)
    assert refused.value.code == "invalid-value"
    assert "student-kolya" in s.state.roster
