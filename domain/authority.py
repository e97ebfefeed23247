"""Which authority of the order (2.3, 2.4, 2.5) gives a person control over a chat.

docs/regulation.md: a platform administrator controls every chat of the school (2.3); a teacher
controls the chats they created or were made owner or moderator of (2.4); a class teacher
controls the class chat and parents' chat of each class assigned to them, plus their own
chats (2.5). Students and parents moderate nothing.

Callers build the ``ActorStanding`` and ``ChatControl`` as they held when the act occurred
(``School.is_administrator(person, at)``, ``Chat.control_at(at)``, ...), so authority is
judged at ``occurred_at``, not at recording time.
"""

from __future__ import annotations

from dataclasses import dataclass

from sferum_audit.domain.errors import ActorNotPermitted
from sferum_audit.domain.regulation import (
    CLASS_CHAT,
    CLASS_TEACHER,
    PARENTS_CHAT,
    PLATFORM_ADMINISTRATOR,
    TEACHER,
)


@dataclass(frozen=True, slots=True)
class ActorStanding:
    """What the rest of the model knows about a person, for deciding their authority."""

    person_id: str
    is_administrator: bool
    is_teacher: bool
    classes_taught: frozenset[str]


@dataclass(frozen=True, slots=True)
class ChatControl:
    """The facts about a chat that decide who controls it."""

    kind: str
    class_id: str | None
    creator_id: str
    owner_id: str | None
    moderator_ids: frozenset[str]


def authorities_over(chat: ChatControl, actor: ActorStanding) -> frozenset[str]:
    """Every authority code under which ``actor`` controls ``chat``; empty if none."""
    granted: set[str] = set()
    if actor.is_administrator:
        granted.add(PLATFORM_ADMINISTRATOR)
    own_chat = actor.person_id in {chat.creator_id, chat.owner_id} | chat.moderator_ids
    if actor.is_teacher and own_chat:
        granted.add(TEACHER)
    if actor.classes_taught:
        class_chat_of_theirs = (
            chat.kind in {CLASS_CHAT, PARENTS_CHAT} and chat.class_id in actor.classes_taught
        )
        if class_chat_of_theirs or own_chat:
            granted.add(CLASS_TEACHER)
    return frozenset(granted)


class RoleNotHeld(ActorNotPermitted):
    """The actor claims a role (teacher, administrator ...) the records do not give them."""

    code = "role-not-held"


def check_actor_role(
    actor_role: str, standing: ActorStanding, profile_role: str | None, profile_active: bool
) -> None:
    """Refuses a command whose actor claims a role they do not hold at this school.

    ``school-administration`` (2.2) and ``system`` are accepted only by the commands that
    name them; every other role is checked against the school and the actor's profile.
    """
    holds = {
        "administrator": standing.is_administrator,
        "teacher": standing.is_teacher,
        "class-teacher": bool(standing.classes_taught),
        "student": profile_role == "student" and profile_active,
        "parent": profile_role == "parent" and profile_active,
        "security-officer": profile_role == "security-officer" and profile_active,
    }
    if actor_role in {"school-administration", "system"}:
        raise RoleNotHeld(f"a {actor_role} actor may not send this command")
    if not holds.get(actor_role, False):
        raise RoleNotHeld(f"{standing.person_id} does not act as {actor_role} at this school")
