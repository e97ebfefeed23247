"""Who controls a chat under 2.3 / 2.4 / 2.5 (docs/regulation.md), and role claims."""

from __future__ import annotations

import pytest
from domain_factories import standing

from sferum_audit.domain.authority import (
    ActorStanding,
    ChatControl,
    RoleNotHeld,
    authorities_over,
    check_actor_role,
)


def control(
    kind: str = "subject",
    class_id: str | None = "5a",
    creator: str = "adm",
    owner: str | None = None,
    moderators: tuple[str, ...] = (),
) -> ChatControl:
    return ChatControl(
        kind=kind,
        class_id=class_id,
        creator_id=creator,
        owner_id=owner,
        moderator_ids=frozenset(moderators),
    )


@pytest.mark.parametrize("kind", ["school-channel", "staff-room", "class", "parents", "subject"])
def test_administrator_controls_every_chat_under_2_3(kind: str) -> None:
    chat = control(kind=kind, creator="someone-else", owner="someone-else")
    assert authorities_over(chat, standing("adm2", admin=True)) == {"2.3"}


@pytest.mark.parametrize(
    ("creator", "owner", "moderators"),
    [("t", None, ()), ("adm", "t", ()), ("adm", None, ("t",))],
    ids=["created", "owned", "moderated"],
)
def test_teacher_controls_chats_they_created_own_or_moderate_under_2_4(
    creator: str, owner: str | None, moderators: tuple[str, ...]
) -> None:
    chat = control(creator=creator, owner=owner, moderators=moderators)
    assert authorities_over(chat, standing("t", teacher=True)) == {"2.4"}


def test_teacher_controls_nothing_in_someone_elses_chat() -> None:
    chat = control(creator="adm", owner="other-teacher", moderators=("third",))
    assert authorities_over(chat, standing("t", teacher=True)) == frozenset()


@pytest.mark.parametrize("kind", ["class", "parents"])
def test_class_teacher_controls_class_and_parents_chat_of_their_class_under_2_5_only(
    kind: str,
) -> None:
    chat = control(kind=kind, class_id="5a")
    assert authorities_over(chat, standing("ct", teacher=True, classes=("5a",))) == {"2.5"}


@pytest.mark.parametrize("kind", ["class", "parents"])
def test_class_teacher_does_not_control_another_class_chat(kind: str) -> None:
    chat = control(kind=kind, class_id="6b")
    assert authorities_over(chat, standing("ct", teacher=True, classes=("5a",))) == frozenset()


def test_class_teacher_does_not_control_a_subject_chat_of_their_class_they_do_not_own() -> None:
    chat = control(kind="subject", class_id="5a", creator="t", owner="t")
    assert authorities_over(chat, standing("ct", teacher=True, classes=("5a",))) == frozenset()


def test_class_teacher_controls_own_chat_under_both_2_4_and_2_5() -> None:
    chat = control(kind="free", class_id=None, creator="ct", owner="ct")
    assert authorities_over(chat, standing("ct", teacher=True, classes=("5a",))) == {"2.4", "2.5"}


def test_administrator_who_is_class_teacher_holds_all_three_over_own_class_chat() -> None:
    chat = control(kind="class", class_id="5a", creator="x")
    actor = standing("x", admin=True, teacher=True, classes=("5a",))
    assert authorities_over(chat, actor) == {"2.3", "2.4", "2.5"}


@pytest.mark.parametrize("who", ["student", "parent"])
def test_students_and_parents_control_nothing_even_as_creator(who: str) -> None:
    chat = control(creator=who, owner=who, moderators=(who,))
    assert authorities_over(chat, standing(who)) == frozenset()


# -- claimed roles ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "actor", "profile_role"),
    [
        ("administrator", standing("a", admin=True), None),
        ("teacher", standing("t", teacher=True), "teacher"),
        ("class-teacher", standing("ct", teacher=True, classes=("5a",)), "teacher"),
        ("student", standing("s"), "student"),
        ("parent", standing("p"), "parent"),
        ("security-officer", standing("so"), "security-officer"),
    ],
)
def test_a_held_role_is_accepted(role: str, actor: ActorStanding, profile_role: str | None) -> None:
    check_actor_role(role, actor, profile_role, profile_active=True)


@pytest.mark.parametrize(
    ("role", "actor", "profile_role", "active"),
    [
        ("administrator", standing("t", teacher=True), "teacher", True),
        ("teacher", standing("s"), "student", True),
        ("class-teacher", standing("t", teacher=True), "teacher", True),
        ("student", standing("s"), "student", False),
        ("parent", standing("s"), "student", True),
        ("security-officer", standing("t", teacher=True), "teacher", True),
        ("school-administration", standing("a", admin=True), None, False),
        ("system", standing("a", admin=True), None, False),
    ],
    ids=[
        "teacher-as-admin",
        "student-as-teacher",
        "teacher-without-class-as-class-teacher",
        "student-who-left",
        "student-as-parent",
        "teacher-as-security",
        "school-administration",
        "system",
    ],
)
def test_a_role_not_held_is_refused(
    role: str, actor: ActorStanding, profile_role: str | None, active: bool
) -> None:
    with pytest.raises(RoleNotHeld) as refused:
        check_actor_role(role, actor, profile_role, active)
    assert refused.value.code == "role-not-held"
