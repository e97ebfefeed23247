"""Small factories for domain unit tests: a command context and an actor's standing."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

from sferum_audit.domain.authority import ActorStanding
from sferum_audit.domain.chat import Candidate, Chat
from sferum_audit.domain.context import CommandContext

KALININGRAD = timezone(timedelta(hours=2))
T0 = datetime(2024, 11, 25, 9, 0, tzinfo=KALININGRAD)
SCHOOL = "school-58"

_counter = itertools.count(1)


def ctx(
    actor_id: str,
    actor_role: str,
    *,
    at: datetime | None = None,
    command_id: str | None = None,
) -> CommandContext:
    """A context for one command; each call gets a new command id unless one is given."""
    number = next(_counter)
    command_id = command_id or f"cmd-{number}"
    return CommandContext(
        actor_id=actor_id,
        actor_role=actor_role,
        occurred_at=at or T0 + timedelta(minutes=number),
        command_id=command_id,
        correlation_id=command_id,
    )


def standing(
    person_id: str,
    *,
    admin: bool = False,
    teacher: bool = False,
    classes: tuple[str, ...] = (),
) -> ActorStanding:
    return ActorStanding(
        person_id=person_id,
        is_administrator=admin,
        is_teacher=teacher,
        classes_taught=frozenset(classes),
    )


ADMIN = standing("adm", admin=True)
TEACHER = standing("teacher-ivanova", teacher=True)
CLASS_TEACHER_5A = standing("ct-petrova", teacher=True, classes=("5a",))
STUDENT = standing("student-kolya")
PARENT = standing("parent-olga")


def class_chat(class_id: str = "5a", kind: str = "class") -> Chat:
    """A class chat (or parents' chat) opened by the administrator with the class."""
    return Chat.open(
        ctx("adm", "administrator"),
        SCHOOL,
        f"{kind}-{class_id}",
        kind,
        f"{class_id} {kind}",
        creator_id="adm",
        owner_id=None,
        class_id=class_id,
    )


def teacher_chat(owner: str = "teacher-ivanova", chat_id: str = "math-5a") -> Chat:
    """A subject chat created and owned by ``owner``."""
    return Chat.open(
        ctx(owner, "teacher"),
        SCHOOL,
        chat_id,
        "subject",
        "Математика 5А",
        creator_id=owner,
        owner_id=owner,
        class_id="5a",
        subject="math",
    )


def candidate(person_id: str, role: str, class_id: str = "5a") -> Candidate:
    """A person who may join the chats of ``class_id``: a student of it, a parent of one of
    its students, or a teacher (an administrator joins as the teacher they are)."""
    if role == "student":
        return Candidate(person_id, "student", student_class=class_id)
    if role == "parent":
        return Candidate(person_id, "parent", children_classes=frozenset({class_id}))
    return Candidate(person_id, "teacher", classes_taught=frozenset({class_id}))
