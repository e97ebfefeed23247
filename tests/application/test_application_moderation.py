"""Moderation through the service: each authority allowed where it holds, refused elsewhere.

docs/regulation.md: an administrator controls every chat (2.3); a teacher the chats they created,
own or moderate (2.4); a class teacher the class and parents' chat of their classes plus
their own chats (2.5); students and parents moderate nothing; warnings need 2.5.
"""

from __future__ import annotations

import pytest
from sferum_app_builder import (
    ADMIN,
    CLASS_TEACHER,
    CLASS_TEACHER_6B,
    PARENT,
    STUDENT,
    STUDENT_6B,
    TEACHER,
    As,
    SchoolBuilder,
)


def content(chat_id: str, authority: str, **extra: str) -> dict[str, str]:
    """The fields of a remove-content / block-content command."""
    return {
        "chat_id": chat_id,
        "authority": authority,
        "ground": "4.2.4",
        "message_id": "msg-17",
        "author_id": STUDENT.id,
        "reason": "оскорбление одноклассника",
        **extra,
    }


def test_administrator_removes_content_in_any_chat_under_2_3(school: SchoolBuilder) -> None:
    school.teacher_chat("math-5a", owner=TEACHER)
    for chat_id in ("school-channel", "staff-room", "class-6b", "parents-5a", "math-5a"):
        result = school.ok("remove-content", ADMIN, **content(chat_id, "2.3"))
        assert school.event_types(result) == ["Chat.ContentRemoved"]
        (event,) = school.events_of(result)
        assert (event.authority, event.ground, event.message_id) == ("2.3", "4.2.4", "msg-17")
        assert (event.ctx.actor_id, event.ctx.actor_role) == (ADMIN.id, "administrator")


def test_teacher_moderates_the_chat_they_created_under_2_4(school: SchoolBuilder) -> None:
    school.teacher_chat("math-5a", owner=TEACHER)
    result = school.ok("block-content", TEACHER, **content("math-5a", "2.4"))
    (event,) = school.events_of(result)
    assert type(event).__name__ == "ContentBlocked"
    assert (event.authority, event.ctx.actor_role) == ("2.4", "teacher")


def test_teacher_moderates_a_chat_they_were_made_moderator_of(school: SchoolBuilder) -> None:
    assert (
        school.refused("remove-content", TEACHER, **content("class-5a", "2.4"))
        == "chat-not-under-control"
    )
    school.ok("appoint-chat-moderator", ADMIN, chat_id="class-5a", profile_id=TEACHER.id)
    result = school.ok("remove-content", TEACHER, **content("class-5a", "2.4"))
    assert school.events_of(result)[0].authority == "2.4"


def test_teacher_cannot_moderate_a_class_chat_or_another_teachers_chat(
    school: SchoolBuilder,
) -> None:
    school.teacher_chat("history-6b", owner=CLASS_TEACHER_6B("teacher"))
    for chat_id in ("class-5a", "parents-6b", "staff-room", "history-6b"):
        code = school.refused("remove-content", TEACHER, **content(chat_id, "2.4"))
        assert code == "chat-not-under-control", chat_id


@pytest.mark.parametrize("chat_id", ["class-5a", "parents-5a"])
def test_class_teacher_moderates_class_and_parents_chat_of_their_class_under_2_5(
    school: SchoolBuilder, chat_id: str
) -> None:
    school.add(chat_id, PARENT.id if chat_id.startswith("parents") else STUDENT.id)
    member = PARENT.id if chat_id.startswith("parents") else STUDENT.id
    result = school.ok(
        "block-member",
        CLASS_TEACHER,
        chat_id=chat_id,
        authority="2.5",
        ground="4.2.4",
        member_id=member,
        reason="систематические оскорбления",
    )
    (event,) = school.events_of(result)
    assert (event.authority, event.member_id, event.ctx.actor_role) == (
        "2.5",
        member,
        "class-teacher",
    )
    assert member in school.chat(chat_id).blocked


@pytest.mark.parametrize("chat_id", ["class-6b", "parents-6b"])
def test_class_teacher_cannot_moderate_other_class_chat(
    school: SchoolBuilder, chat_id: str
) -> None:
    code = school.refused("remove-content", CLASS_TEACHER, **content(chat_id, "2.5"))
    assert code == "chat-not-under-control"


def test_class_teacher_acting_in_class_chat_under_2_4_is_refused(school: SchoolBuilder) -> None:
    code = school.refused(
        "remove-content",
        CLASS_TEACHER("teacher"),
        **content("class-5a", "2.4"),
    )
    assert code == "authority-not-held"


def test_class_teacher_moderates_own_chat_under_2_4_as_teacher_and_2_5_as_class_teacher(
    school: SchoolBuilder,
) -> None:
    school.teacher_chat("reading-club", owner=CLASS_TEACHER("teacher"))
    as_teacher = school.ok(
        "remove-content",
        CLASS_TEACHER("teacher"),
        **content("reading-club", "2.4"),
    )
    as_class_teacher = school.ok(
        "remove-content",
        CLASS_TEACHER,
        **content("reading-club", "2.5", message_id="msg-18"),
    )
    assert school.events_of(as_teacher)[0].authority == "2.4"
    assert school.events_of(as_class_teacher)[0].authority == "2.5"


def test_teacher_without_a_class_acting_as_class_teacher_is_refused(school: SchoolBuilder) -> None:
    school.teacher_chat("math-5a", owner=TEACHER)
    # The claimed role is checked against the chat: 2.5 is not held in their own chat ...
    code = school.refused(
        "remove-content",
        TEACHER("class-teacher"),
        **content("math-5a", "2.5"),
    )
    assert code == "authority-not-held"
    # ... nor in a class chat, which they do not control at all.
    code = school.refused(
        "remove-content",
        TEACHER("class-teacher"),
        **content("class-5a", "2.5"),
    )
    assert code == "chat-not-under-control"


def test_authority_must_match_the_role_it_is_exercised_in(school: SchoolBuilder) -> None:
    code = school.refused("remove-content", ADMIN, **content("class-5a", "2.5"))
    assert code == "authority-does-not-match-role"
    code = school.refused(
        "remove-content",
        CLASS_TEACHER,
        **content("class-5a", "2.3"),
    )
    assert code == "authority-does-not-match-role"


def test_a_non_administrator_claiming_2_3_is_refused(school: SchoolBuilder) -> None:
    code = school.refused(
        "remove-content",
        CLASS_TEACHER("administrator"),
        **content("class-5a", "2.3"),
    )
    assert code == "authority-not-held"


@pytest.mark.parametrize(
    ("actor", "chat_id", "authority"),
    [
        (STUDENT, "class-5a", "2.4"),
        (PARENT, "parents-5a", "2.5"),
        (STUDENT_6B, "class-6b", "2.3"),
    ],
)
def test_students_and_parents_moderate_nothing(
    school: SchoolBuilder, actor: As, chat_id: str, authority: str
) -> None:
    code = school.refused("remove-content", actor, **content(chat_id, authority))
    assert code == "students-and-parents-do-not-moderate"


def test_released_class_teacher_loses_control_of_the_class_chat(school: SchoolBuilder) -> None:
    school.ok("remove-content", CLASS_TEACHER, **content("class-5a", "2.5"))
    school.ok("release-class-teacher", ADMIN, class_id="5a")
    code = school.refused(
        "remove-content",
        CLASS_TEACHER("teacher"),
        **content("class-5a", "2.4"),
    )
    assert code == "chat-not-under-control"


def test_moderation_in_an_unknown_chat_is_refused(school: SchoolBuilder) -> None:
    code = school.refused("remove-content", ADMIN, **content("no-such-chat", "2.3"))
    assert code == "unknown-chat"


# -- warnings about liability (2.5) ------------------------------------------------------------


def warn(chat_id: str, authority: str, member: str = STUDENT.id) -> dict[str, str]:
    return {
        "chat_id": chat_id,
        "authority": authority,
        "ground": "4.2.4",
        "member_id": member,
        "reason": "предупреждение об ответственности за оскорбления",
    }


def test_class_teacher_warns_about_liability_under_2_5(school: SchoolBuilder) -> None:
    school.add("class-5a", STUDENT.id)
    result = school.ok("warn-about-liability", CLASS_TEACHER, **warn("class-5a", "2.5"))
    (event,) = school.events_of(result)
    assert type(event).__name__ == "LiabilityWarned"
    assert (event.authority, event.member_id) == ("2.5", STUDENT.id)


def test_administrator_cannot_warn_about_liability(school: SchoolBuilder) -> None:
    school.add("class-5a", STUDENT.id)
    assert (
        school.refused("warn-about-liability", ADMIN, **warn("class-5a", "2.3"))
        == "warning-needs-class-teacher"
    )


def test_teacher_cannot_warn_about_liability_even_in_own_chat(school: SchoolBuilder) -> None:
    school.teacher_chat("math-5a", owner=TEACHER)
    school.add("math-5a", STUDENT.id, actor=TEACHER)
    assert (
        school.refused("warn-about-liability", TEACHER, **warn("math-5a", "2.4"))
        == "warning-needs-class-teacher"
    )


def test_class_teacher_cannot_warn_in_another_class_chat(school: SchoolBuilder) -> None:
    school.add("class-6b", STUDENT_6B.id)
    assert (
        school.refused(
            "warn-about-liability", CLASS_TEACHER, **warn("class-6b", "2.5", STUDENT_6B.id)
        )
        == "chat-not-under-control"
    )


# -- blocking --------------------------------------------------------------------------------------


def test_block_and_unblock_are_recorded_with_authority_and_reason(school: SchoolBuilder) -> None:
    school.add("class-5a", STUDENT.id)
    blocked = school.ok(
        "block-member",
        CLASS_TEACHER,
        chat_id="class-5a",
        authority="2.5",
        ground="4.2.5",
        member_id=STUDENT.id,
        reason="распространял чужие фото",
    )
    chat = school.chat("class-5a")
    assert STUDENT.id in chat.blocked
    assert STUDENT.id not in chat.members
    unblocked = school.ok(
        "unblock-member",
        ADMIN,
        chat_id="class-5a",
        authority="2.3",
        member_id=STUDENT.id,
        reason="родители провели беседу",
    )
    assert school.event_types(blocked) == ["Chat.MemberBlocked"]
    (event,) = school.events_of(unblocked)
    assert (type(event).__name__, event.authority, event.reason) == (
        "MemberUnblocked",
        "2.3",
        "родители провели беседу",
    )
    assert school.chat("class-5a").blocked == set()


def test_teacher_cannot_unblock_in_a_chat_outside_their_control(school: SchoolBuilder) -> None:
    school.add("class-5a", STUDENT.id)
    school.ok(
        "block-member",
        ADMIN,
        chat_id="class-5a",
        authority="2.3",
        ground="4.2.4",
        member_id=STUDENT.id,
        reason="оскорбления",
    )
    code = school.refused(
        "unblock-member",
        TEACHER,
        chat_id="class-5a",
        authority="2.4",
        member_id=STUDENT.id,
        reason="простили",
    )
    assert code == "chat-not-under-control"
    assert school.chat("class-5a").blocked == {STUDENT.id}
