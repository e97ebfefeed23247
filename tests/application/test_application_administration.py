"""What only a platform administrator (2.3) may do: appoint administrators, assign class
teachers, annul invitations; and profile registration."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sferum_app_builder import (
    ADMIN,
    CLASS_TEACHER,
    DIRECTOR,
    STUDENT,
    T0,
    TEACHER,
    As,
    SchoolBuilder,
)

from sferum_audit.application.service import AuditLog


def test_school_is_registered_by_the_school_administration(school: SchoolBuilder) -> None:
    registered = school.school()
    assert registered.is_administrator(ADMIN.id)
    assert set(registered.state.classes) == {"5a", "6b"}
    assert set(school.chat("school-channel").members) == set()
    code = school.refused(
        "register-school", DIRECTOR, name="Дубль", order_ref="2", first_administrator_id="x"
    )
    assert code == "school-already-exists"


def test_registration_by_anyone_but_the_school_administration_is_refused(
    app: AuditLog, unique: str
) -> None:
    builder = SchoolBuilder(app, unique)
    code = builder.refused(
        "register-school", ADMIN, name="Школа", order_ref="1", first_administrator_id=ADMIN.id
    )
    assert code == "not-school-administration"


def test_administrator_appoints_an_administrator_who_then_acts_under_2_3(
    school: SchoolBuilder,
) -> None:
    school.ok("appoint-administrator", ADMIN, person_id=TEACHER.id, order_ref="приказ 12")
    assert school.school().is_administrator(TEACHER.id)
    school.ok("create-class", TEACHER("administrator"), class_id="7v", name="7В")
    assert "7v" in school.school().state.classes


@pytest.mark.parametrize(
    ("actor", "code"),
    [(TEACHER, "not-administrator"), (CLASS_TEACHER, "not-administrator")],
)
def test_non_administrators_cannot_appoint_administrators(
    school: SchoolBuilder, actor: As, code: str
) -> None:
    assert (
        school.refused("appoint-administrator", actor, person_id=actor.id, order_ref="сам себе")
        == code
    )
    assert not school.school().is_administrator(actor.id)


def test_claiming_the_administrator_role_without_holding_it_is_refused(
    school: SchoolBuilder,
) -> None:
    code = school.refused(
        "appoint-administrator", TEACHER("administrator"), person_id=TEACHER.id, order_ref="1"
    )
    assert code == "role-not-held"
    code = school.refused(
        "assign-class-teacher", STUDENT("administrator"), class_id="5a", teacher_id=TEACHER.id
    )
    assert code == "role-not-held"


def test_administrator_acting_as_teacher_cannot_do_2_3_acts(school: SchoolBuilder) -> None:
    """A 2.3 act is recorded as the administrator's, never under another role they hold."""
    school.ok("appoint-administrator", ADMIN, person_id=TEACHER.id, order_ref="приказ 12")
    for command_type, fields in [
        ("appoint-administrator", {"person_id": CLASS_TEACHER.id, "order_ref": "приказ 13"}),
        ("assign-class-teacher", {"class_id": "6b", "teacher_id": TEACHER.id}),
        ("create-class", {"class_id": "7v", "name": "7В"}),
        ("transfer-student", {"person_id": STUDENT.id, "to_class_id": "6b"}),
        ("record-departure", {"person_id": STUDENT.id, "reason": "переезд"}),
    ]:
        assert school.refused(command_type, TEACHER, **fields) == "not-administrator", command_type
    school.ok("create-class", TEACHER("administrator"), class_id="7v", name="7В")


def test_administrator_assigns_a_class_teacher_who_gains_2_5_over_the_class_chat(
    school: SchoolBuilder,
) -> None:
    school.ok("release-class-teacher", ADMIN, class_id="5a")
    school.ok("assign-class-teacher", ADMIN, class_id="5a", teacher_id=TEACHER.id)
    assert school.school().classes_taught_by(TEACHER.id) == {"5a"}
    school.ok(
        "remove-content",
        TEACHER("class-teacher"),
        chat_id="class-5a",
        authority="2.5",
        ground="law",
        message_id="m1",
        author_id=STUDENT.id,
        reason="нарушает закон",
    )


def test_non_administrators_cannot_assign_class_teachers(school: SchoolBuilder) -> None:
    for actor in (TEACHER, CLASS_TEACHER, CLASS_TEACHER("teacher")):
        code = school.refused("assign-class-teacher", actor, class_id="6b", teacher_id=actor.id)
        assert code == "not-administrator"
    assert school.school().classes_taught_by(CLASS_TEACHER.id) == {"5a"}


def test_only_teachers_are_assigned_as_class_teachers(school: SchoolBuilder) -> None:
    code = school.refused("assign-class-teacher", ADMIN, class_id="5a", teacher_id=STUDENT.id)
    assert code == "invalid-value"
    code = school.refused("assign-class-teacher", ADMIN, class_id="9z", teacher_id=TEACHER.id)
    assert code == "unknown-class"


def test_administrator_annuls_an_unused_invitation(school: SchoolBuilder) -> None:
    school.ok(
        "issue-invitation",
        CLASS_TEACHER,
        invitation_id="inv-1",
        chat_id="class-5a",
        role="student",
        expires_at=T0 + timedelta(days=7),
    )
    for actor in (CLASS_TEACHER, CLASS_TEACHER("teacher"), TEACHER, STUDENT):
        code = school.refused("annul-invitation", actor, invitation_id="inv-1", reason="утечка")
        assert code == "actor-not-permitted"
    assert school.invitation("inv-1").status == "issued"
    result = school.ok("annul-invitation", ADMIN, invitation_id="inv-1", reason="ссылка утекла")
    assert school.event_types(result) == ["Invitation.Annulled"]
    assert school.invitation("inv-1").status == "annulled"


def test_annulling_an_unknown_invitation_is_refused(school: SchoolBuilder) -> None:
    assert (
        school.refused("annul-invitation", ADMIN, invitation_id="nope", reason="безопасность")
        == "unknown-invitation"
    )


def test_removing_administrators_keeps_at_least_one(school: SchoolBuilder) -> None:
    assert (
        school.refused("remove-administrator", ADMIN, person_id=ADMIN.id, reason="ухожу")
        == "last-administrator"
    )
    school.ok(
        "appoint-administrator", ADMIN, person_id=school.teaching_staff("adm2"), order_ref="1"
    )
    school.ok("remove-administrator", As("adm2", "administrator"), person_id=ADMIN.id, reason="ок")
    assert school.school().state.administrators == {"adm2"}


# -- profiles ------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["student", "parent"])
def test_students_and_parents_register_their_own_profiles(school: SchoolBuilder, role: str) -> None:
    school.ok(
        "register-profile",
        As("new-person", role),
        profile_id="new-person",
        role=role,
        display_name="Новенький",
    )
    assert school.profile("new-person").role == role


def test_a_profile_is_registered_by_its_holder_in_their_role_or_by_an_administrator(
    school: SchoolBuilder,
) -> None:
    code = school.refused(
        "register-profile", STUDENT, profile_id="someone", role="student", display_name="Кто-то"
    )
    assert code == "actor-not-permitted"
    code = school.refused(
        "register-profile",
        As("new", "student"),
        profile_id="new",
        role="parent",
        display_name="Не тот",
    )
    assert code == "actor-not-permitted"
    assert (
        school.refused(
            "register-profile", ADMIN, profile_id=STUDENT.id, role="student", display_name="Дубль"
        )
        == "profile-already-exists"
    )


@pytest.mark.parametrize("role", ["security-officer", "teacher"])
def test_staff_profiles_are_not_self_registered(school: SchoolBuilder, role: str) -> None:
    code = school.refused(
        "register-profile",
        As("newcomer", role),
        profile_id="newcomer",
        role=role,
        display_name="Новенький",
    )
    assert code == "actor-not-permitted"
    school.ok("register-profile", ADMIN, profile_id="newcomer", role=role, display_name="Новенький")
    assert school.profile("newcomer").role == role


def test_nobody_becomes_security_staff_by_registering_themselves(school: SchoolBuilder) -> None:
    school.ok(
        "report-unauthorised-access",
        STUDENT,
        incident_id="inc-1",
        affected_profile_id=STUDENT.id,
        noticed_at=T0,
        how_noticed="письмо о входе",
        description="чужой вход",
    )
    intruder = As("intruder", "security-officer")
    code = school.refused(
        "register-profile",
        intruder,
        profile_id=intruder.id,
        role="security-officer",
        display_name="Я охрана",
    )
    assert code == "actor-not-permitted"
    assert school.refused("acknowledge-incident", intruder, incident_id="inc-1") == (
        "not-security-staff"
    )
    assert school.incident("inc-1").state == "reported"
