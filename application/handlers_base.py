"""What every command handler shares: the registry and the lookups.

``handles`` registers a handler in ``HANDLERS`` under its command type; the lookups load a
command's school, chat, profile or the actor's standing as they held at ``occurred_at``.
The handlers themselves live in one ``handlers_<family>`` module per command family, and
``sferum_audit.application.handlers`` imports them all.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from sferum_audit.application import commands as c
from sferum_audit.application.unit_of_work import UnitOfWork
from sferum_audit.domain.access_incident import AccessIncident
from sferum_audit.domain.authority import (
    ActorStanding,
    RoleNotHeld,
    check_actor_role,
)
from sferum_audit.domain.chat import Candidate, Chat
from sferum_audit.domain.context import CommandContext, DatedBeforeFact, check_not_before
from sferum_audit.domain.errors import InvalidValue
from sferum_audit.domain.invitation import Invitation
from sferum_audit.domain.profile import Profile
from sferum_audit.domain.regulation import (
    SCHOOL_CHANNEL,
    STAFF_ROOM,
)
from sferum_audit.domain.school import School

Handler = Callable[[UnitOfWork, Any, CommandContext], None]
HANDLERS: dict[str, Handler] = {}
C = TypeVar("C", bound=c.CommandBase)


def handles(
    command_type: str,
) -> Callable[[Callable[[UnitOfWork, C, CommandContext], None]], Handler]:
    def register(func: Callable[[UnitOfWork, C, CommandContext], None]) -> Handler:
        HANDLERS[command_type] = func
        return func

    return register


# -- shared lookups ----------------------------------------------------------------------------


def class_chat_id(class_id: str) -> str:
    return f"class-{class_id}"


def parents_chat_id(class_id: str) -> str:
    return f"parents-{class_id}"


def all_chat_ids(school: School) -> list[str]:
    """Every chat of the school: the two per school, the two per class, and the opened ones."""
    ids = [SCHOOL_CHANNEL, STAFF_ROOM]
    for class_id in school.state.classes:
        ids += [class_chat_id(class_id), parents_chat_id(class_id)]
    return ids + list(school.chat_ids)


def school_of(uow: UnitOfWork, cmd: c.CommandBase) -> School:
    """The command's school; refused if the act is dated before the school was registered."""
    school = uow.get(School, School.create_id(cmd.school_id), "school", cmd.school_id)
    school.check_existed_at(cmd.occurred_at)
    return school


def profile_in(uow: UnitOfWork, school: School, profile_id: str) -> Profile:
    profile = uow.find(Profile, Profile.create_id(profile_id))
    if profile is None or profile.school_id != school.school_id:
        raise InvalidValue(f"profile {profile_id!r} is not registered at school {school.school_id}")
    return profile


def active_profile_in(uow: UnitOfWork, school: School, profile_id: str, at: datetime) -> Profile:
    """The profile, registered by ``at`` and of someone at the school then."""
    profile = profile_in(uow, school, profile_id)
    check_not_before(at, profile.registered_at, f"profile {profile_id!r} was registered")
    if not profile.active_at(at):
        raise InvalidValue(f"{profile_id} has left the school")
    return profile


def standing_of(
    uow: UnitOfWork, school: School, person_id: str, at: datetime | None
) -> tuple[ActorStanding, Profile | None]:
    """What the person was at the school at ``at`` (``None``: now): administrator,
    teacher, class teacher."""
    profile = uow.find(Profile, Profile.create_id(person_id))
    if profile is not None and profile.school_id != school.school_id:
        profile = None
    active = profile is not None and profile.active_at(at)
    standing = ActorStanding(
        person_id=person_id,
        is_administrator=school.is_administrator(person_id, at),
        is_teacher=active and profile is not None and profile.role == "teacher",
        classes_taught=school.classes_taught_by(person_id, at),
    )
    return standing, profile


def verified_actor(
    uow: UnitOfWork, cmd: c.CommandBase
) -> tuple[School, ActorStanding, Profile | None]:
    """The school, and the actor's standing there when the act occurred, once their
    claimed role is confirmed."""
    school = school_of(uow, cmd)
    at = cmd.occurred_at
    standing, profile = standing_of(uow, school, cmd.actor.id, at)
    try:
        check_actor_role(
            cmd.actor.role,
            standing,
            profile.role if profile else None,
            profile is not None and profile.active_at(at),
        )
    except RoleNotHeld:
        now, _ = standing_of(uow, school, cmd.actor.id, None)
        if profile is not None:
            check_actor_role(cmd.actor.role, now, profile.role, profile.active_at())
        elif cmd.actor.role != "administrator" or not now.is_administrator:
            raise
        raise DatedBeforeFact(
            f"{cmd.actor.id} holds the role {cmd.actor.role} now but did not when the act "
            f"occurred ({at.isoformat()}); acts are judged by what held when they occurred"
        ) from None
    return school, standing, profile


def is_admin_at(school: School, cmd: c.CommandBase) -> bool:
    """The actor acts as a platform administrator, and was one when the act occurred."""
    return cmd.actor.role == "administrator" and school.is_administrator(
        cmd.actor.id, cmd.occurred_at
    )


def candidate_of(school: School, profile: Profile, at: datetime | None) -> Candidate:
    """Whether a person may be in a class's chats depends on these facts at ``at``
    (``None``: now)."""
    children: set[str] = set()
    if profile.role == "parent":
        children = {c for kid in profile.children if (c := school.class_of(kid, at))}
    return Candidate(
        person_id=profile.profile_id,
        role=profile.role,
        student_class=school.class_of(profile.profile_id, at)
        if profile.role == "student"
        else None,
        children_classes=frozenset(children),
        classes_taught=school.classes_taught_by(profile.profile_id, at),
    )


def chat_of(uow: UnitOfWork, school: School, chat_id: str) -> Chat:
    return uow.get(Chat, Chat.create_id(school.school_id, chat_id), "chat", chat_id)


def invitation_of(uow: UnitOfWork, cmd: c.CommandBase, invitation_id: str) -> Invitation:
    key = Invitation.create_id(cmd.school_id, invitation_id)
    return uow.get(Invitation, key, "invitation", invitation_id)


def incident_of(uow: UnitOfWork, cmd: c.CommandBase, incident_id: str) -> AccessIncident:
    key = AccessIncident.create_id(cmd.school_id, incident_id)
    return uow.get(AccessIncident, key, "access incident", incident_id)
