"""The order's rules that hold across aggregates: administrators come from the teaching
staff (2.2, 2.3), a link is used only in its own role (2.3), class chats are for their
class (2.5, 2.7, 2.8), and every act is judged by what held at its ``occurred_at``."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sferum_app_builder import (
    ADMIN,
    CLASS_TEACHER,
    CLASS_TEACHER_6B,
    DIRECTOR,
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

from sferum_audit.application.commands import parse_command

WEEK = T0 + timedelta(days=7)


def removal(school: SchoolBuilder, actor: As, chat_id: str, **envelope: object) -> dict:
    return school.raw(
        "remove-content",
        actor,
        chat_id=chat_id,
        authority={"class-teacher": "2.5", "teacher": "2.4"}.get(actor.role, "2.3"),
        ground="4.2.4",
        message_id="m-1",
        author_id=STUDENT.id,
        reason="оскорбление",
        **envelope,
    )


# -- 1. administrators from the teaching staff who joined the platform -------------------------


def test_a_student_cannot_be_appointed_administrator(school: SchoolBuilder) -> None:
    code = school.refused("appoint-administrator", ADMIN, person_id=STUDENT.id, order_ref="1")
    assert code == "not-teaching-staff"
    assert not school.school().is_administrator(STUDENT.id)


def test_an_id_with_no_profile_and_no_roster_entry_cannot_be_appointed(
    school: SchoolBuilder,
) -> None:
    code = school.refused("appoint-administrator", ADMIN, person_id="nobody", order_ref="1")
    assert code == "not-teaching-staff"


def test_staff_without_a_teacher_profile_cannot_be_appointed(school: SchoolBuilder) -> None:
    school.ok("admit-person", ADMIN, person_id="new-staff", roster_role="staff")
    code = school.refused("appoint-administrator", ADMIN, person_id="new-staff", order_ref="1")
    assert code == "not-teaching-staff"
    school.ok("admit-person", ADMIN, person_id=SECURITY.id, roster_role="staff")
    code = school.refused("appoint-administrator", ADMIN, person_id=SECURITY.id, order_ref="1")
    assert code == "not-teaching-staff"


def test_a_teacher_profile_off_the_staff_roster_cannot_be_appointed(
    school: SchoolBuilder,
) -> None:
    school.ok("register-profile", ADMIN, profile_id="t-new", role="teacher", display_name="Н")
    code = school.refused("appoint-administrator", ADMIN, person_id="t-new", order_ref="1")
    assert code == "not-teaching-staff"


def test_a_teacher_on_the_staff_roster_is_appointed(school: SchoolBuilder) -> None:
    school.ok("appoint-administrator", ADMIN, person_id=TEACHER.id, order_ref="приказ 12")
    assert school.school().is_administrator(TEACHER.id)


def test_the_first_administrator_is_named_by_the_registering_order(app) -> None:  # type: ignore[no-untyped-def]
    builder = SchoolBuilder(app, "first-admin")
    builder.ok(
        "register-school", DIRECTOR, name="Школа", order_ref="1065/1", first_administrator_id="a1"
    )
    assert builder.school().is_administrator("a1")
    builder.ok("create-class", As("a1", "administrator"), class_id="5a", name="5А")


# -- 2. a link is used in its own role ------------------------------------------------------


def issue(school: SchoolBuilder, invitation_id: str, chat_id: str, role: str) -> None:
    school.ok(
        "issue-invitation",
        ADMIN,
        invitation_id=invitation_id,
        chat_id=chat_id,
        role=role,
        expires_at=WEEK,
    )


def test_a_student_cannot_redeem_a_teacher_link_and_the_link_can_still_be_annulled(
    school: SchoolBuilder,
) -> None:
    issue(school, "inv-t", "staff-room", "teacher")
    code = school.refused("redeem-invitation", STUDENT, invitation_id="inv-t")
    assert code == "invitation-role-mismatch"
    assert STUDENT.id not in school.chat("staff-room").members
    assert school.invitation("inv-t").status == "issued"
    school.ok("annul-invitation", ADMIN, invitation_id="inv-t", reason="безопасность (2.3)")
    assert school.invitation("inv-t").status == "annulled"


def test_a_parent_cannot_redeem_a_student_link(school: SchoolBuilder) -> None:
    issue(school, "inv-s", "class-5a", "student")
    assert school.refused("redeem-invitation", PARENT, invitation_id="inv-s") == (
        "invitation-role-mismatch"
    )


def test_an_administrator_link_needs_a_teacher_who_is_an_administrator(
    school: SchoolBuilder,
) -> None:
    issue(school, "inv-a", "staff-room", "administrator")
    code = school.refused("redeem-invitation", TEACHER, invitation_id="inv-a")
    assert code == "invitation-role-mismatch"
    school.ok("appoint-administrator", ADMIN, person_id=TEACHER.id, order_ref="приказ")
    school.ok("redeem-invitation", TEACHER, invitation_id="inv-a")


def test_staff_join_the_staff_room_as_teachers_whatever_the_link_named(
    school: SchoolBuilder,
) -> None:
    school.ok("appoint-administrator", ADMIN, person_id=TEACHER.id, order_ref="приказ")
    issue(school, "inv-a", "staff-room", "administrator")
    school.ok("redeem-invitation", TEACHER, invitation_id="inv-a")
    assert school.chat("staff-room").members == {TEACHER.id: "teacher"}


@pytest.mark.parametrize(
    ("chat_id", "role"),
    [("staff-room", "student"), ("staff-room", "parent"), ("parents-5a", "student")],
)
def test_a_link_cannot_name_a_role_its_chat_is_not_for(
    school: SchoolBuilder, chat_id: str, role: str
) -> None:
    code = school.refused(
        "issue-invitation", ADMIN, invitation_id="i", chat_id=chat_id, role=role, expires_at=WEEK
    )
    assert code == "invitation-role-not-for-chat"


def test_students_cannot_be_added_to_the_staff_room(school: SchoolBuilder) -> None:
    code = school.refused("add-member", ADMIN, chat_id="staff-room", profile_id=STUDENT.id)
    assert code == "membership-not-allowed"


# -- 3. class and parents' chats are for their class -------------------------------------------


def test_a_student_of_another_class_cannot_join_the_class_chat(school: SchoolBuilder) -> None:
    code = school.refused("add-member", ADMIN, chat_id="class-5a", profile_id=STUDENT_6B.id)
    assert code == "membership-not-allowed"
    issue(school, "inv-5a", "class-5a", "student")
    assert school.refused("redeem-invitation", STUDENT_6B, invitation_id="inv-5a") == (
        "membership-not-allowed"
    )
    assert school.invitation("inv-5a").status == "issued"


def test_students_are_not_members_of_the_parents_chat(school: SchoolBuilder) -> None:
    code = school.refused("add-member", ADMIN, chat_id="parents-5a", profile_id=STUDENT.id)
    assert code == "membership-not-allowed"


def test_a_parent_of_another_class_cannot_join_the_class_or_parents_chat(
    school: SchoolBuilder,
) -> None:
    for chat_id in ("class-5a", "parents-5a"):
        code = school.refused("add-member", ADMIN, chat_id=chat_id, profile_id=OTHER_PARENT.id)
        assert code == "membership-not-allowed"


def test_the_class_its_parents_and_its_class_teacher_join_its_chats(
    school: SchoolBuilder,
) -> None:
    school.add("class-5a", STUDENT.id, PARENT.id, CLASS_TEACHER.id, actor=CLASS_TEACHER)
    school.add("parents-5a", PARENT.id, CLASS_TEACHER.id, actor=CLASS_TEACHER)
    assert set(school.chat("class-5a").members) == {STUDENT.id, PARENT.id, CLASS_TEACHER.id}


def test_another_class_teacher_cannot_join_the_class_chat(school: SchoolBuilder) -> None:
    code = school.refused("add-member", ADMIN, chat_id="class-5a", profile_id=CLASS_TEACHER_6B.id)
    assert code == "membership-not-allowed"


def test_a_subject_chat_of_a_class_takes_its_students_parents_and_teachers_only(
    school: SchoolBuilder,
) -> None:
    school.teacher_chat("math-5a", owner=TEACHER)
    school.add("math-5a", STUDENT.id, PARENT.id, CLASS_TEACHER_6B.id, actor=TEACHER)
    code = school.refused("add-member", TEACHER, chat_id="math-5a", profile_id=STUDENT_6B.id)
    assert code == "membership-not-allowed"


def test_a_transfer_takes_the_student_and_their_parent_out_of_the_old_class_chats(
    school: SchoolBuilder,
) -> None:
    school.teacher_chat("math-5a", owner=TEACHER)
    school.add("class-5a", STUDENT.id, PARENT.id)
    school.add("parents-5a", PARENT.id)
    school.add("math-5a", STUDENT.id, PARENT.id)

    result = school.ok("transfer-student", ADMIN, person_id=STUDENT.id, to_class_id="6b")

    assert result.events[0].type == "School.StudentTransferred"
    assert school.event_types(result).count("Chat.MemberRemoved") == 5
    for chat_id in ("class-5a", "parents-5a", "math-5a"):
        assert school.chat(chat_id).members == {}, chat_id
    school.add("class-6b", STUDENT.id, PARENT.id)
    school.add("parents-6b", PARENT.id)


def test_a_parent_with_another_child_in_the_old_class_stays_in_its_chats(
    school: SchoolBuilder,
) -> None:
    school.ok(
        "register-profile",
        As("parent-two", "parent"),
        profile_id="parent-two",
        role="parent",
        display_name="Мама двоих",
        children=[STUDENT.id, "student-sister"],
    )
    school.ok(
        "admit-person", ADMIN, person_id="student-sister", roster_role="student", class_id="5a"
    )
    school.add("parents-5a", "parent-two")
    school.ok("transfer-student", ADMIN, person_id=STUDENT.id, to_class_id="6b")
    assert "parent-two" in school.chat("parents-5a").members


def test_a_released_class_teacher_leaves_the_class_and_parents_chats(
    school: SchoolBuilder,
) -> None:
    school.add("class-5a", CLASS_TEACHER.id)
    school.add("parents-5a", CLASS_TEACHER.id)
    school.ok("release-class-teacher", ADMIN, class_id="5a")
    assert CLASS_TEACHER.id not in school.chat("class-5a").members
    assert CLASS_TEACHER.id not in school.chat("parents-5a").members


# -- 4. an act is judged by what held at its occurred_at ----------------------------------------


def test_an_act_dated_before_the_school_existed_is_refused(school: SchoolBuilder) -> None:
    before = T0 - timedelta(days=1)
    code = school.refused("create-class", ADMIN, class_id="7v", name="7В", at=before)
    assert code == "dated-before-fact"


def test_an_act_dated_before_the_actors_assignment_is_refused(school: SchoolBuilder) -> None:
    before = school.clock  # the set-up is done by now
    school.ok("assign-class-teacher", ADMIN, class_id="6b", teacher_id=TEACHER.id)
    raw = removal(school, TEACHER("class-teacher"), "class-6b") | {
        "occurred_at": (before - timedelta(minutes=1)).isoformat()
    }
    assert school.app.handle(parse_command(raw)).error_code == "dated-before-fact"


def test_an_act_dated_before_the_actors_appointment_is_refused(school: SchoolBuilder) -> None:
    before = school.clock
    school.ok("appoint-administrator", ADMIN, person_id=TEACHER.id, order_ref="приказ")
    code = school.refused(
        "create-class",
        TEACHER("administrator"),
        class_id="7v",
        name="7В",
        at=before - timedelta(minutes=1),
    )
    assert code == "dated-before-fact"


def test_an_act_dated_before_a_release_that_arrives_after_it_is_recorded(
    school: SchoolBuilder,
) -> None:
    done_at = school.clock + timedelta(minutes=1)
    school.clock += timedelta(days=1)
    school.ok("release-class-teacher", ADMIN, class_id="5a")
    raw = removal(school, CLASS_TEACHER, "class-5a") | {"occurred_at": done_at.isoformat()}
    assert school.app.handle(parse_command(raw)).status == "recorded"
    later = removal(school, CLASS_TEACHER, "class-5a")
    assert school.app.handle(parse_command(later)).error_code == "chat-not-under-control"


def test_a_removed_administrators_earlier_act_arriving_late_is_recorded(
    school: SchoolBuilder,
) -> None:
    school.ok("appoint-administrator", ADMIN, person_id=TEACHER.id, order_ref="приказ")
    acted_at = school.clock + timedelta(minutes=1)
    school.clock += timedelta(hours=1)
    school.ok("remove-administrator", ADMIN, person_id=TEACHER.id, reason="приказ 2")
    late = school.raw("create-class", TEACHER("administrator"), class_id="7v", name="7В")
    late["occurred_at"] = acted_at.isoformat()
    assert school.app.handle(parse_command(late)).status == "recorded"
    now = school.raw("create-class", TEACHER("administrator"), class_id="7g", name="7Г")
    assert school.app.handle(parse_command(now)).error_code in {"role-not-held"}


def test_a_removal_dated_before_the_appointment_it_ends_is_refused(school: SchoolBuilder) -> None:
    before = school.clock
    school.ok("appoint-administrator", ADMIN, person_id=TEACHER.id, order_ref="приказ")
    code = school.refused(
        "remove-administrator", ADMIN, person_id=TEACHER.id, reason="ошибка", at=before
    )
    assert code == "dated-before-fact"


def test_a_membership_dated_before_its_chat_was_created_is_refused(school: SchoolBuilder) -> None:
    before = school.clock
    school.teacher_chat("math-5a", owner=TEACHER)
    code = school.refused(
        "add-member", TEACHER, chat_id="math-5a", profile_id=STUDENT.id, at=before
    )
    assert code == "dated-before-fact"


def test_the_audit_row_keeps_both_times(school: SchoolBuilder) -> None:
    result = school.ok("create-class", ADMIN, class_id="7v", name="7В")
    [event, *_] = school.events_of(result)
    assert event.ctx.occurred_at == school.clock
    assert event.timestamp > event.ctx.occurred_at  # recorded now, occurred in 2024


# -- 5. lifecycle steps in order ----------------------------------------------------------------


def report(school: SchoolBuilder) -> None:
    school.ok(
        "report-unauthorised-access",
        STUDENT,
        incident_id="n-1",
        affected_profile_id=STUDENT.id,
        noticed_at=school.clock,
        how_noticed="вход с чужого устройства",
        description="чужой вход",
    )


def test_an_incident_cannot_be_acknowledged_before_it_was_reported(school: SchoolBuilder) -> None:
    before = school.clock
    report(school)
    code = school.refused("acknowledge-incident", SECURITY, incident_id="n-1", at=before)
    assert code == "dated-before-previous-step"
    school.ok("acknowledge-incident", SECURITY, incident_id="n-1")


def test_an_incident_cannot_be_resolved_before_its_last_step(school: SchoolBuilder) -> None:
    report(school)
    school.ok("acknowledge-incident", SECURITY, incident_id="n-1")
    acknowledged = school.clock
    school.ok(
        "take-containment-step", SECURITY, incident_id="n-1", step="password-reset", note="сброс"
    )
    code = school.refused(
        "resolve-incident", SECURITY, incident_id="n-1", findings="итог", at=acknowledged
    )
    assert code == "dated-before-previous-step"


def test_nobody_is_told_before_the_access_was_noticed(school: SchoolBuilder) -> None:
    noticed = school.clock + timedelta(minutes=1)
    code = school.refused(
        "report-unauthorised-access",
        STUDENT,
        incident_id="n-2",
        affected_profile_id=STUDENT.id,
        noticed_at=noticed,
        how_noticed="письмо",
        description="чужой вход",
        told={"school-administrator": noticed - timedelta(hours=1)},
    )
    assert code == "incident-state-order"


def test_an_invitation_cannot_be_redeemed_or_annulled_before_it_was_issued(
    school: SchoolBuilder,
) -> None:
    before = school.clock
    issue(school, "inv-1", "class-5a", "student")
    assert school.refused("redeem-invitation", STUDENT, invitation_id="inv-1", at=before) == (
        "dated-before-previous-step"
    )
    code = school.refused(
        "annul-invitation", ADMIN, invitation_id="inv-1", reason="безопасность", at=before
    )
    assert code == "dated-before-previous-step"


def test_a_students_departure_takes_their_parent_out_of_the_class_chats(
    school: SchoolBuilder,
) -> None:
    school.add("class-5a", STUDENT.id, PARENT.id)
    school.add("parents-5a", PARENT.id)
    school.ok("record-departure", ADMIN, person_id=STUDENT.id, reason="переезд")
    assert school.chat("class-5a").members == {}
    assert school.chat("parents-5a").members == {}


def test_a_former_moderators_act_from_their_term_arriving_late_is_recorded(
    school: SchoolBuilder,
) -> None:
    school.teacher_chat("math-5a", owner=TEACHER)
    school.ok("appoint-chat-moderator", TEACHER, chat_id="math-5a", profile_id=CLASS_TEACHER_6B.id)
    acted_at = school.clock + timedelta(minutes=1)
    school.clock += timedelta(hours=1)
    school.ok("remove-chat-moderator", TEACHER, chat_id="math-5a", profile_id=CLASS_TEACHER_6B.id)
    moderator = As(CLASS_TEACHER_6B.id, "teacher")
    late = removal(school, moderator, "math-5a") | {"occurred_at": acted_at.isoformat()}
    assert school.app.handle(parse_command(late)).status == "recorded"
    now = removal(school, moderator, "math-5a", command_id="after-the-term")
    assert school.app.handle(parse_command(now)).error_code == "chat-not-under-control"


# -- a late membership act cannot undo a movement that came before it was recorded -------------


def test_a_join_dated_before_a_transfer_arriving_after_it_is_refused(
    school: SchoolBuilder,
) -> None:
    school.add("class-5a", STUDENT.id)
    before = school.clock
    school.ok("transfer-student", ADMIN, person_id=STUDENT.id, to_class_id="6b")
    late = before + timedelta(seconds=30)
    for chat_id, person in (("class-5a", STUDENT.id), ("parents-5a", PARENT.id)):
        code = school.refused("add-member", ADMIN, chat_id=chat_id, profile_id=person, at=late)
        assert code in {"membership-not-allowed", "dated-before-previous-step"}, chat_id
    assert school.chat("class-5a").members == {}
    assert school.chat("parents-5a").members == {}


def test_a_redemption_dated_before_a_transfer_arriving_after_it_is_refused(
    school: SchoolBuilder,
) -> None:
    issue(school, "inv-late", "class-5a", "student")
    before = school.clock
    school.ok("transfer-student", ADMIN, person_id=STUDENT.id, to_class_id="6b")
    code = school.refused(
        "redeem-invitation", STUDENT, invitation_id="inv-late", at=before + timedelta(seconds=30)
    )
    assert code == "membership-not-allowed"
    assert school.invitation("inv-late").status == "issued"


def test_a_join_dated_before_a_departure_arriving_after_it_is_refused(
    school: SchoolBuilder,
) -> None:
    before = school.clock
    school.ok("record-departure", ADMIN, person_id=STUDENT.id, reason="переезд")
    late = before + timedelta(seconds=30)
    for chat_id in ("class-5a", "school-channel"):
        code = school.refused("add-member", ADMIN, chat_id=chat_id, profile_id=STUDENT.id, at=late)
        assert code == "membership-not-allowed", chat_id


def test_a_join_dated_before_a_class_teachers_release_arriving_after_it_is_refused(
    school: SchoolBuilder,
) -> None:
    before = school.clock
    school.ok("release-class-teacher", ADMIN, class_id="5a")
    code = school.refused(
        "add-member",
        ADMIN,
        chat_id="parents-5a",
        profile_id=CLASS_TEACHER.id,
        at=before + timedelta(seconds=30),
    )
    assert code == "membership-not-allowed"


def test_leaving_or_removal_cannot_be_dated_before_the_join(school: SchoolBuilder) -> None:
    before = school.clock
    school.add("class-5a", STUDENT.id)
    assert school.refused("leave-chat", STUDENT, chat_id="class-5a", at=before) == (
        "dated-before-previous-step"
    )
    code = school.refused(
        "remove-member", ADMIN, chat_id="class-5a", profile_id=STUDENT.id, reason="x", at=before
    )
    assert code == "dated-before-previous-step"
    assert STUDENT.id in school.chat("class-5a").members


def test_a_block_cannot_be_dated_before_the_join_nor_an_unblock_before_the_block(
    school: SchoolBuilder,
) -> None:
    before = school.clock
    school.add("class-5a", STUDENT.id)
    block = {"chat_id": "class-5a", "authority": "2.3", "ground": "4.2.4"}
    code = school.refused(
        "block-member", ADMIN, **block, member_id=STUDENT.id, reason="грубость", at=before
    )
    assert code == "not-member"
    school.ok("block-member", ADMIN, **block, member_id=STUDENT.id, reason="грубость")
    code = school.refused(
        "unblock-member",
        ADMIN,
        chat_id="class-5a",
        authority="2.3",
        member_id=STUDENT.id,
        reason="извинился",
        at=before,
    )
    assert code == "dated-before-previous-step"


def test_a_late_transfer_dated_before_a_join_still_ends_the_membership(
    school: SchoolBuilder,
) -> None:
    before = school.clock
    school.add("class-5a", STUDENT.id)
    school.ok(
        "transfer-student",
        ADMIN,
        person_id=STUDENT.id,
        to_class_id="6b",
        at=before + timedelta(seconds=30),
    )
    assert school.chat("class-5a").members == {}


def test_an_account_link_cannot_be_dated_before_the_profile_was_registered(
    school: SchoolBuilder,
) -> None:
    school.clock += timedelta(hours=1)
    before = school.clock
    school.ok(
        "register-profile",
        As("student-new", "student"),
        profile_id="student-new",
        role="student",
        display_name="Новенький",
    )
    code = school.refused(
        "link-account", ADMIN, profile_id="student-new", elzhur_account_id="ej-new", at=before
    )
    assert code == "dated-before-fact"


def test_an_unlink_cannot_be_dated_before_the_link(school: SchoolBuilder) -> None:
    before = school.clock
    school.ok("link-account", ADMIN, profile_id=STUDENT.id, elzhur_account_id="ej-kolya")
    code = school.refused("unlink-account", ADMIN, profile_id=STUDENT.id, reason="взлом", at=before)
    assert code == "dated-before-previous-step"
    assert school.profile(STUDENT.id).elzhur_account_id == "ej-kolya"


def test_an_account_cannot_be_claimed_at_a_time_another_profile_held_it(
    school: SchoolBuilder,
) -> None:
    school.ok("link-account", ADMIN, profile_id=STUDENT.id, elzhur_account_id="ej-shared")
    held = school.clock
    school.ok("unlink-account", ADMIN, profile_id=STUDENT.id, reason="ошибка")
    code = school.refused(
        "link-account", ADMIN, profile_id=STUDENT_6B.id, elzhur_account_id="ej-shared", at=held
    )
    assert code == "dated-before-previous-step"


def test_a_teacher_who_left_the_school_cannot_be_made_a_chat_moderator(
    school: SchoolBuilder,
) -> None:
    school.teacher_chat("math-5a", owner=TEACHER)
    school.ok("record-departure", ADMIN, person_id=CLASS_TEACHER_6B.id, reason="уволился")
    code = school.refused(
        "appoint-chat-moderator", TEACHER, chat_id="math-5a", profile_id=CLASS_TEACHER_6B.id
    )
    assert code == "invalid-value"
    assert CLASS_TEACHER_6B.id not in school.chat("math-5a").moderator_ids


def test_a_join_refused_for_another_class_says_so_and_not_no_longer(
    school: SchoolBuilder,
) -> None:
    result = school.send("add-member", ADMIN, chat_id="class-5a", profile_id=STUDENT_6B.id)
    assert result.error_code == "membership-not-allowed"
    assert "no longer" not in (result.error_message or "")


def test_a_security_officer_joins_no_chat_not_even_the_school_channel(
    school: SchoolBuilder,
) -> None:
    for chat_id in ("school-channel", "staff-room"):
        code = school.refused("add-member", ADMIN, chat_id=chat_id, profile_id=SECURITY.id)
        assert code == "membership-not-allowed", chat_id


def test_a_warning_given_before_a_transfer_and_arriving_after_it_is_recorded(
    school: SchoolBuilder,
) -> None:
    school.add("class-5a", STUDENT.id)
    warned_at = school.clock + timedelta(minutes=1)
    school.clock += timedelta(hours=1)
    school.ok("transfer-student", ADMIN, person_id=STUDENT.id, to_class_id="6b")
    school.ok(
        "warn-about-liability",
        CLASS_TEACHER,
        chat_id="class-5a",
        authority="2.5",
        ground="4.2.4",
        member_id=STUDENT.id,
        reason="оскорбления в чате",
        at=warned_at,
    )


def test_a_block_given_before_a_transfer_and_arriving_after_it_is_recorded(
    school: SchoolBuilder,
) -> None:
    school.add("class-5a", STUDENT.id)
    blocked_at = school.clock + timedelta(minutes=1)
    school.clock += timedelta(hours=1)
    school.ok("transfer-student", ADMIN, person_id=STUDENT.id, to_class_id="6b")
    block = {"chat_id": "class-5a", "authority": "2.3", "ground": "4.2.4"}
    school.ok("block-member", ADMIN, **block, member_id=STUDENT.id, reason="x", at=blocked_at)
    assert STUDENT.id in school.chat("class-5a").blocked
    code = school.refused("block-member", ADMIN, **block, member_id=STUDENT.id, reason="x")
    assert code == "member-blocked"


def test_a_warning_dated_before_the_member_joined_is_refused(school: SchoolBuilder) -> None:
    before = school.clock
    school.add("class-5a", STUDENT.id)
    code = school.refused(
        "warn-about-liability",
        CLASS_TEACHER,
        chat_id="class-5a",
        authority="2.5",
        ground="4.2.4",
        member_id=STUDENT.id,
        reason="оскорбления",
        at=before,
    )
    assert code == "not-member"
