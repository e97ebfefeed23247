"""Chat membership: joining, blocking and unblocking, leaving; chat creation and ownership."""

from __future__ import annotations

import pytest
from domain_factories import (
    ADMIN,
    CLASS_TEACHER_5A,
    SCHOOL,
    STUDENT,
    TEACHER,
    candidate,
    class_chat,
    ctx,
    standing,
    teacher_chat,
)

from sferum_audit.domain.chat import Chat
from sferum_audit.domain.errors import DomainError


def chat_with(*members: str) -> Chat:
    chat = class_chat()
    for member in members:
        chat.join(ctx("adm", "administrator"), candidate(member, "student"), "student", "added")
    chat.collect_events()
    return chat


def block(chat: Chat, member: str) -> None:
    chat.block_member(ctx("adm", "administrator"), ADMIN, "2.3", "4.2.4", member, "оскорбления")


def unblock(chat: Chat, member: str) -> None:
    chat.unblock_member(ctx("adm", "administrator"), ADMIN, "2.3", member, "извинился")


def test_member_joins_with_the_given_role_and_route() -> None:
    chat = class_chat()
    chat.collect_events()
    chat.join(
        ctx("parent-olga", "parent"),
        candidate("parent-olga", "parent"),
        "parent",
        "invitation",
        "inv-1",
    )
    assert chat.members == {"parent-olga": "parent"}
    event = chat.collect_events()[-1]
    assert (event.role, event.via, event.invitation_id) == ("parent", "invitation", "inv-1")


def test_a_member_cannot_join_twice() -> None:
    chat = chat_with("student-kolya")
    with pytest.raises(DomainError) as refused:
        chat.join(
            ctx("adm", "administrator"), candidate("student-kolya", "student"), "student", "added"
        )
    assert refused.value.code == "already-member"


@pytest.mark.parametrize(("role", "via"), [("security-officer", "added"), ("student", "magic")])
def test_unknown_member_role_or_route_is_refused(role: str, via: str) -> None:
    chat = class_chat()
    with pytest.raises(DomainError) as refused:
        chat.join(ctx("adm", "administrator"), candidate("x", role), role, via)
    assert refused.value.code == "invalid-value"


def test_blocked_member_leaves_the_chat_and_cannot_rejoin_until_unblocked() -> None:
    chat = chat_with("student-kolya")
    block(chat, "student-kolya")
    assert "student-kolya" not in chat.members
    assert chat.blocked == {"student-kolya"}
    for via in ("invitation", "added", "account-link"):
        with pytest.raises(DomainError) as refused:
            chat.join(
                ctx("student-kolya", "student"),
                candidate("student-kolya", "student"),
                "student",
                via,
            )
        assert refused.value.code == "member-blocked"
    unblock(chat, "student-kolya")
    chat.join(
        ctx("student-kolya", "student"),
        candidate("student-kolya", "student"),
        "student",
        "invitation",
    )
    assert chat.members == {"student-kolya": "student"}
    assert chat.blocked == set()


def test_only_a_member_can_be_blocked() -> None:
    chat = chat_with()
    with pytest.raises(DomainError) as refused:
        block(chat, "student-kolya")
    assert refused.value.code == "not-member"


def test_a_moderator_cannot_block_themselves() -> None:
    chat = class_chat()
    chat.join(
        ctx("adm", "administrator"), candidate("adm", "administrator"), "administrator", "added"
    )
    with pytest.raises(DomainError) as refused:
        block(chat, "adm")
    assert refused.value.code == "invalid-value"
    assert "adm" in chat.members


def test_unblocking_someone_not_blocked_is_refused() -> None:
    chat = chat_with("student-kolya")
    with pytest.raises(DomainError) as refused:
        unblock(chat, "student-kolya")
    assert refused.value.code == "member-not-blocked"


def test_unblock_is_a_moderation_action_with_authority() -> None:
    chat = chat_with("student-kolya")
    block(chat, "student-kolya")
    with pytest.raises(DomainError) as refused:
        chat.unblock_member(
            ctx("teacher-ivanova", "teacher"), TEACHER, "2.4", "student-kolya", "простили"
        )
    assert refused.value.code == "chat-not-under-control"
    assert chat.blocked == {"student-kolya"}


def test_leave_and_remove_need_membership() -> None:
    chat = chat_with("student-kolya")
    chat.leave(ctx("student-kolya", "student"))
    assert chat.members == {}
    with pytest.raises(DomainError) as refused:
        chat.leave(ctx("student-kolya", "student"))
    assert refused.value.code == "not-member"
    with pytest.raises(DomainError) as refused:
        chat.remove_member(ctx("adm", "administrator"), "student-kolya", "перевод")
    assert refused.value.code == "not-member"


@pytest.mark.parametrize("reason", ["", " ", "x" * 1001])
def test_remove_member_reason_is_required_and_bounded(reason: str) -> None:
    chat = chat_with("student-kolya")
    with pytest.raises(DomainError) as refused:
        chat.remove_member(ctx("adm", "administrator"), "student-kolya", reason)
    assert refused.value.code == "invalid-value"
    assert "student-kolya" in chat.members


def test_archived_chat_cannot_be_joined() -> None:
    chat = class_chat()
    chat.archive(ctx("adm", "administrator"), ADMIN, "конец года")
    with pytest.raises(DomainError) as refused:
        chat.join(
            ctx("adm", "administrator"), candidate("student-kolya", "student"), "student", "added"
        )
    assert refused.value.code == "chat-archived"


# -- creation and ownership -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("actor", "role"),
    [(ADMIN, "administrator"), (TEACHER, "teacher"), (CLASS_TEACHER_5A, "class-teacher")],
)
def test_administrators_teachers_and_class_teachers_create_chats_they_own(actor, role) -> None:
    chat = Chat.create(
        ctx(actor.person_id, role),
        actor,
        SCHOOL,
        "olymp",
        "free",
        "Олимпиада",
        None,
        None,
        "olympiad",
    )
    assert (chat.creator_id, chat.owner_id) == (actor.person_id, actor.person_id)


@pytest.mark.parametrize(
    ("actor", "role", "kind"),
    [
        (STUDENT, "student", "free"),
        (standing("parent-olga"), "parent", "subject"),
        (TEACHER, "class-teacher", "free"),
        (TEACHER, "administrator", "free"),
        (ADMIN, "administrator", "class"),
        (ADMIN, "administrator", "school-channel"),
    ],
    ids=["student", "parent", "teacher-as-class-teacher", "teacher-as-admin", "class", "channel"],
)
def test_creating_a_chat_is_refused_to_others_and_for_automatic_kinds(actor, role, kind) -> None:
    with pytest.raises(DomainError) as refused:
        Chat.create(
            ctx(actor.person_id, role), actor, SCHOOL, "c", kind, "Чат", None, "math", "project"
        )
    assert refused.value.code == "may-not-create-chat"


@pytest.mark.parametrize(
    ("kind", "subject", "purpose"),
    [
        ("free", None, None),
        ("free", None, "party"),
        ("subject", None, None),
        ("subject", " ", None),
    ],
)
def test_free_chat_needs_a_known_purpose_and_subject_chat_a_subject(kind, subject, purpose) -> None:
    with pytest.raises(DomainError) as refused:
        Chat.create(
            ctx("adm", "administrator"), ADMIN, SCHOOL, "c", kind, "Чат", None, subject, purpose
        )
    assert refused.value.code == "invalid-value"


def test_moderator_appointment_gives_2_4_control_and_removal_takes_it_away() -> None:
    chat = class_chat()
    other = standing("t2", teacher=True)
    chat.appoint_moderator(ctx("adm", "administrator"), ADMIN, "t2")
    chat.remove_content(ctx("t2", "teacher"), other, "2.4", "law", "m1", "s", "незаконно")
    chat.remove_moderator(ctx("adm", "administrator"), ADMIN, "t2")
    with pytest.raises(DomainError) as refused:
        chat.remove_content(ctx("t2", "teacher"), other, "2.4", "law", "m2", "s", "незаконно")
    assert refused.value.code == "chat-not-under-control"


def test_teacher_cannot_appoint_moderators_in_a_chat_they_do_not_control() -> None:
    chat = class_chat()
    with pytest.raises(DomainError) as refused:
        chat.appoint_moderator(ctx("teacher-ivanova", "teacher"), TEACHER, "teacher-ivanova")
    assert refused.value.code == "chat-not-under-control"
    assert chat.moderator_ids == set()


def test_owner_appoints_a_moderator_once() -> None:
    chat = teacher_chat()
    chat.appoint_moderator(ctx("teacher-ivanova", "teacher"), TEACHER, "t2")
    with pytest.raises(DomainError) as refused:
        chat.appoint_moderator(ctx("teacher-ivanova", "teacher"), TEACHER, "t2")
    assert refused.value.code == "already-member"
