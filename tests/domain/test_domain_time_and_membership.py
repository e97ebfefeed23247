"""Domain guards of issue 11: terms judged at a moment, who may join a class's chats, a
link's role, and lifecycle steps in order."""

from __future__ import annotations

from datetime import timedelta

import pytest
from domain_factories import ADMIN, SCHOOL, T0, class_chat, ctx

from sferum_audit.domain.chat import Candidate
from sferum_audit.domain.errors import DomainError
from sferum_audit.domain.history import Term, held_at
from sferum_audit.domain.invitation import Invitation
from sferum_audit.domain.school import School

HOUR = timedelta(hours=1)


def test_a_term_holds_from_its_start_until_before_its_end() -> None:
    term = Term(T0, T0 + HOUR)
    assert term.holds_at(T0)
    assert term.holds_at(T0 + HOUR - timedelta(seconds=1))
    assert not term.holds_at(T0 + HOUR)
    assert not term.holds_at(T0 - timedelta(seconds=1))
    assert held_at([Term(T0)], None)
    assert not held_at([term], None)


def school_at_t0() -> School:
    s = School.register(ctx("director", "school-administration", at=T0), SCHOOL, "58", "1", "adm")
    s.create_class(ctx("adm", "administrator", at=T0), "5a", "5А")
    return s


def test_a_class_teachers_authority_is_judged_at_the_moment_asked() -> None:
    s = school_at_t0()
    s.assign_class_teacher(ctx("adm", "administrator", at=T0 + HOUR), "5a", "ct")
    s.release_class_teacher(ctx("adm", "administrator", at=T0 + 3 * HOUR), "5a")
    assert s.classes_taught_by("ct", T0 + 2 * HOUR) == {"5a"}
    assert s.classes_taught_by("ct", T0) == frozenset()
    assert s.classes_taught_by("ct", T0 + 3 * HOUR) == frozenset()
    assert s.classes_taught_by("ct") == frozenset()


def test_an_administrator_act_dated_before_the_school_or_appointment_is_refused() -> None:
    s = school_at_t0()
    with pytest.raises(DomainError) as refused:
        s.check_existed_at(T0 - HOUR)
    assert refused.value.code == "dated-before-fact"
    s.admit(ctx("adm", "administrator", at=T0 + HOUR), "t2", "staff", None)
    s.appoint_administrator(ctx("adm", "administrator", at=T0 + 2 * HOUR), "t2", "1", True)
    with pytest.raises(DomainError) as refused:
        s.create_class(ctx("t2", "administrator", at=T0 + HOUR), "6b", "6Б")
    assert refused.value.code == "dated-before-fact"


def test_appointment_needs_the_staff_roster_and_a_teacher_profile() -> None:
    s = school_at_t0()
    with pytest.raises(DomainError) as refused:
        s.appoint_administrator(ctx("adm", "administrator"), "s1", "1", True)
    assert refused.value.code == "not-teaching-staff"
    s.admit(ctx("adm", "administrator"), "t2", "staff", None)
    with pytest.raises(DomainError) as refused:
        s.appoint_administrator(ctx("adm", "administrator"), "t2", "1", False)
    assert refused.value.code == "not-teaching-staff"


@pytest.mark.parametrize(
    ("kind", "who", "allowed"),
    [
        ("class", Candidate("s", "student", student_class="5a"), True),
        ("class", Candidate("s", "student", student_class="6b"), False),
        ("class", Candidate("p", "parent", children_classes=frozenset({"5a"})), True),
        ("class", Candidate("p", "parent", children_classes=frozenset({"6b"})), False),
        ("class", Candidate("t", "teacher"), False),
        ("class", Candidate("t", "teacher", classes_taught=frozenset({"5a"})), True),
        ("parents", Candidate("s", "student", student_class="5a"), False),
        ("parents", Candidate("p", "parent", children_classes=frozenset({"5a"})), True),
        ("parents", Candidate("t", "teacher", classes_taught=frozenset({"5a"})), True),
    ],
)
def test_class_and_parents_chats_are_for_their_class(
    kind: str, who: Candidate, allowed: bool
) -> None:
    chat = class_chat("5a", kind)
    if allowed:
        chat.check_may_join(who)
        return
    with pytest.raises(DomainError) as refused:
        chat.check_may_join(who)
    assert refused.value.code == "membership-not-allowed"


def invitation(role: str, chat_kind: str = "staff-room") -> Invitation:
    return Invitation.issue(
        ctx("adm", "administrator", at=T0),
        frozenset({"2.3"}),
        ADMIN,
        SCHOOL,
        "inv",
        "staff-room",
        role,
        T0 + 24 * HOUR,
        chat_kind,
    )


def test_a_link_is_redeemed_in_its_own_role_only() -> None:
    link = invitation("teacher")
    with pytest.raises(DomainError) as refused:
        link.redeem(ctx("s1", "student", at=T0 + HOUR), "s1", "student", False)
    assert refused.value.code == "invitation-role-mismatch"
    assert link.status == "issued"
    link.redeem(ctx("t1", "teacher", at=T0 + HOUR), "t1", "teacher", False)


def test_a_link_is_not_redeemed_before_it_was_issued() -> None:
    link = invitation("teacher")
    with pytest.raises(DomainError) as refused:
        link.redeem(ctx("t1", "teacher", at=T0 - HOUR), "t1", "teacher", False)
    assert refused.value.code == "dated-before-previous-step"


def test_a_staff_room_link_cannot_name_a_student() -> None:
    with pytest.raises(DomainError) as refused:
        invitation("student")
    assert refused.value.code == "invitation-role-not-for-chat"
