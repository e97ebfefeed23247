"""Moderation in a chat: who may act, under which authority, on what ground (2.3-2.5, 4.2)."""

from __future__ import annotations

import pytest
from domain_factories import (
    ADMIN,
    CLASS_TEACHER_5A,
    PARENT,
    STUDENT,
    TEACHER,
    candidate,
    class_chat,
    ctx,
    teacher_chat,
)

from sferum_audit.domain.authority import ActorStanding
from sferum_audit.domain.chat import Chat
from sferum_audit.domain.errors import ActorNotPermitted, DomainError

ROLE = {"2.3": "administrator", "2.4": "teacher", "2.5": "class-teacher"}


def remove(chat: Chat, actor: ActorStanding, role: str, authority: str, ground: str = "4.2.4"):
    chat.remove_content(
        ctx(actor.person_id, role),
        actor,
        authority,
        ground,
        "msg-1",
        "student-kolya",
        "грубость в адрес одноклассника",
    )


def last_event(chat: Chat) -> Chat.Event:
    return chat.collect_events()[-1]


@pytest.mark.parametrize(
    ("actor", "authority", "make_chat"),
    [
        (ADMIN, "2.3", class_chat),
        (ADMIN, "2.3", teacher_chat),
        (TEACHER, "2.4", teacher_chat),
        (CLASS_TEACHER_5A, "2.5", class_chat),
        (CLASS_TEACHER_5A, "2.5", lambda: class_chat("5a", "parents")),
        (CLASS_TEACHER_5A, "2.5", lambda: teacher_chat(owner="ct-petrova")),
        (CLASS_TEACHER_5A, "2.4", lambda: teacher_chat(owner="ct-petrova")),
    ],
    ids=[
        "admin-class-chat",
        "admin-teacher-chat",
        "teacher-own-chat",
        "class-teacher-class-chat",
        "class-teacher-parents-chat",
        "class-teacher-own-chat-2.5",
        "class-teacher-own-chat-2.4",
    ],
)
def test_moderator_removes_content_in_a_chat_under_their_control(
    actor: ActorStanding, authority: str, make_chat
) -> None:
    chat = make_chat()
    chat.collect_events()
    remove(chat, actor, ROLE[authority], authority)
    event = last_event(chat)
    assert type(event).__name__ == "ContentRemoved"
    assert event.authority == authority
    assert event.ground == "4.2.4"
    assert event.ctx.actor_id == actor.person_id
    assert event.ctx.actor_role == ROLE[authority]


def test_teacher_moderates_chat_they_were_made_moderator_of() -> None:
    chat = class_chat("5a", "class")
    chat.appoint_moderator(ctx("adm", "administrator"), ADMIN, "teacher-ivanova")
    chat.collect_events()
    remove(chat, TEACHER, "teacher", "2.4")
    assert last_event(chat).authority == "2.4"


@pytest.mark.parametrize(
    ("actor", "role", "authority", "make_chat", "code"),
    [
        (TEACHER, "teacher", "2.4", class_chat, "chat-not-under-control"),
        (
            TEACHER,
            "teacher",
            "2.4",
            lambda: teacher_chat(owner="other-teacher"),
            "chat-not-under-control",
        ),
        (
            CLASS_TEACHER_5A,
            "class-teacher",
            "2.5",
            lambda: class_chat("6b"),
            "chat-not-under-control",
        ),
        (
            CLASS_TEACHER_5A,
            "class-teacher",
            "2.5",
            lambda: class_chat("6b", "parents"),
            "chat-not-under-control",
        ),
        (CLASS_TEACHER_5A, "teacher", "2.4", class_chat, "authority-not-held"),
        (TEACHER, "class-teacher", "2.5", teacher_chat, "authority-not-held"),
        (CLASS_TEACHER_5A, "administrator", "2.3", class_chat, "authority-not-held"),
        (ADMIN, "administrator", "2.5", class_chat, "authority-does-not-match-role"),
        (ADMIN, "teacher", "2.3", class_chat, "authority-does-not-match-role"),
        (STUDENT, "student", "2.4", class_chat, "students-and-parents-do-not-moderate"),
        (
            PARENT,
            "parent",
            "2.5",
            lambda: class_chat("5a", "parents"),
            "students-and-parents-do-not-moderate",
        ),
    ],
    ids=[
        "teacher-in-class-chat",
        "teacher-in-other-teachers-chat",
        "class-teacher-in-other-class-chat",
        "class-teacher-in-other-class-parents-chat",
        "class-teacher-in-class-chat-under-2.4",
        "teacher-without-class-as-class-teacher",
        "class-teacher-claiming-2.3",
        "admin-naming-2.5-as-administrator",
        "admin-naming-2.3-as-teacher",
        "student",
        "parent",
    ],
)
def test_moderation_outside_ones_authority_is_refused(
    actor: ActorStanding, role: str, authority: str, make_chat, code: str
) -> None:
    chat = make_chat()
    chat.collect_events()
    with pytest.raises(ActorNotPermitted) as refused:
        remove(chat, actor, role, authority)
    assert refused.value.code == code
    assert chat.collect_events() == []


def test_class_teacher_cannot_moderate_other_class_chat() -> None:
    chat = class_chat("6b")
    with pytest.raises(DomainError) as refused:
        remove(chat, CLASS_TEACHER_5A, "class-teacher", "2.5")
    assert refused.value.code == "chat-not-under-control"


def test_student_who_created_a_chat_record_still_moderates_nothing() -> None:
    chat = teacher_chat(owner="student-kolya")
    with pytest.raises(DomainError) as refused:
        remove(chat, STUDENT, "student", "2.4")
    assert refused.value.code == "students-and-parents-do-not-moderate"


@pytest.mark.parametrize("bad", ["4.2.7", "rudeness", ""])
def test_unknown_ground_is_refused(bad: str) -> None:
    chat = class_chat()
    with pytest.raises(DomainError) as refused:
        remove(chat, ADMIN, "administrator", "2.3", ground=bad)
    assert refused.value.code == "invalid-value"


def test_unknown_authority_is_refused() -> None:
    chat = class_chat()
    with pytest.raises(DomainError) as refused:
        remove(chat, ADMIN, "administrator", "2.2")
    assert refused.value.code == "invalid-value"


@pytest.mark.parametrize(
    "ground", ["4.2.1", "4.2.2", "4.2.3", "4.2.5", "4.2.6", "law", "third-party-rights"]
)
def test_every_ground_of_the_regulation_is_accepted(ground: str) -> None:
    chat = class_chat()
    chat.collect_events()
    remove(chat, ADMIN, "administrator", "2.3", ground=ground)
    assert last_event(chat).ground == ground


# -- reasons -----------------------------------------------------------------------------------


@pytest.mark.parametrize("reason", ["", "   ", "\n\t", "x" * 1001])
def test_moderation_reason_must_be_non_blank_and_at_most_1000_characters(reason: str) -> None:
    chat = class_chat()
    chat.collect_events()
    with pytest.raises(DomainError) as refused:
        chat.block_content(ctx("adm", "administrator"), ADMIN, "2.3", "law", "msg-1", "s", reason)
    assert refused.value.code == "invalid-value"
    assert chat.collect_events() == []


def test_reason_of_exactly_1000_characters_is_accepted() -> None:
    chat = class_chat()
    chat.collect_events()
    chat.block_content(ctx("adm", "administrator"), ADMIN, "2.3", "law", "msg-1", "s", "x" * 1000)
    assert last_event(chat).reason == "x" * 1000


# -- warnings about liability (2.5) -------------------------------------------------------------


def member_chat(*members: str, kind: str = "class") -> Chat:
    chat = class_chat("5a", kind)
    for member in members:
        chat.join(ctx("adm", "administrator"), candidate(member, "student"), "student", "added")
    chat.collect_events()
    return chat


def test_class_teacher_warns_a_member_about_liability_under_2_5() -> None:
    chat = member_chat("student-kolya")
    chat.warn_about_liability(
        ctx("ct-petrova", "class-teacher"), CLASS_TEACHER_5A, "2.5", "4.2.4", "student-kolya", "мат"
    )
    event = last_event(chat)
    assert type(event).__name__ == "LiabilityWarned"
    assert (event.authority, event.member_id) == ("2.5", "student-kolya")


def with_member(chat: Chat, member: str = "student-petya") -> Chat:
    chat.join(ctx("adm", "administrator"), candidate(member, "student"), "student", "added")
    chat.collect_events()
    return chat


@pytest.mark.parametrize(
    ("actor", "role", "authority", "make_chat"),
    [
        (ADMIN, "administrator", "2.3", lambda: with_member(class_chat())),
        (TEACHER, "teacher", "2.4", lambda: with_member(teacher_chat())),
    ],
    ids=["administrator", "teacher-in-own-chat"],
)
def test_warning_about_liability_needs_2_5(
    actor: ActorStanding, role: str, authority: str, make_chat
) -> None:
    chat = make_chat()
    with pytest.raises(DomainError) as refused:
        chat.warn_about_liability(
            ctx(actor.person_id, role), actor, authority, "4.2.4", "student-petya", "мат"
        )
    assert refused.value.code == "warning-needs-class-teacher"
    assert chat.collect_events() == []


def test_class_teacher_cannot_warn_in_another_class_chat() -> None:
    chat = Chat.open(
        ctx("adm", "administrator"),
        "school-58",
        "class-6b",
        "class",
        "6Б",
        creator_id="adm",
        owner_id=None,
        class_id="6b",
    )
    chat.join(
        ctx("adm", "administrator"), candidate("student-petya", "student", "6b"), "student", "added"
    )
    with pytest.raises(DomainError) as refused:
        chat.warn_about_liability(
            ctx("ct-petrova", "class-teacher"),
            CLASS_TEACHER_5A,
            "2.5",
            "4.2.4",
            "student-petya",
            "мат",
        )
    assert refused.value.code == "chat-not-under-control"


def test_warning_names_a_member_of_the_chat() -> None:
    chat = member_chat()
    with pytest.raises(DomainError) as refused:
        chat.warn_about_liability(
            ctx("ct-petrova", "class-teacher"), CLASS_TEACHER_5A, "2.5", "4.2.4", "ghost", "мат"
        )
    assert refused.value.code == "not-member"
