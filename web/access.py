"""What a signed-in person may see and do in the console, read from the views.

The console's roles follow the order: security staff (a ``security-officer`` profile)
handle 4.2.2 reports; teachers and class teachers moderate the chats under their control
(2.4, 2.5); platform administrators (2.3) see everything of their school. Students and
parents have no access, nor has a person who left the school. Which chats a person
controls, and under which authority, is ``domain.authority.authorities_over`` applied to
the chats as the views hold them now; the command's own rules judge the act again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

import sqlalchemy as sa

from sferum_audit.domain.authority import ActorStanding, ChatControl, authorities_over
from sferum_audit.domain.regulation import ROLE_OF_AUTHORITY
from sferum_audit.projections.database import ViewsDatabase

ADMINISTRATOR: Final = "administrator"
SECURITY: Final = "security-officer"
TEACHER: Final = "teacher"
CLASS_TEACHER: Final = "class-teacher"
STAFF_ROLES: Final = frozenset({ADMINISTRATOR, SECURITY, TEACHER, CLASS_TEACHER})


@dataclass(frozen=True)
class ControlledChat:
    chat_id: str
    title: str
    authorities: tuple[str, ...]


@dataclass(frozen=True)
class Standing:
    """A person's standing at their school, as the console uses it."""

    school_id: str
    person_id: str
    display_name: str
    roles: frozenset[str]
    chats: tuple[ControlledChat, ...] = field(default=())

    @property
    def has_access(self) -> bool:
        return bool(self.roles & STAFF_ROLES)

    @property
    def is_administrator(self) -> bool:
        return ADMINISTRATOR in self.roles

    @property
    def handles_incidents(self) -> bool:
        return bool(self.roles & {SECURITY, ADMINISTRATOR})

    @property
    def moderates(self) -> bool:
        return bool(self.chats)

    def chat(self, chat_id: str) -> ControlledChat | None:
        return next((c for c in self.chats if c.chat_id == chat_id), None)

    def role_for(self, authority: str) -> str:
        return ROLE_OF_AUTHORITY.get(authority, TEACHER)

    @property
    def incident_role(self) -> str:
        return SECURITY if SECURITY in self.roles else ADMINISTRATOR


def standing_of(db: ViewsDatabase, school_id: str, person_id: str) -> Standing:
    live = db.live
    schools, admins, classes = (
        live.table("cs_schools"),
        live.table("cs_administrators"),
        live.table("cs_classes"),
    )
    profiles, chats, moderators = (
        live.table("cs_profiles"),
        live.table("cs_chats"),
        live.table("cs_moderators"),
    )
    with db.reading() as conn:
        school_uuid = conn.execute(
            sa.select(schools.c.school_uuid).where(schools.c.school_id == school_id)
        ).scalar()
        profile = conn.execute(
            sa.select(profiles).where(
                profiles.c.profile_id == person_id, profiles.c.school_id == school_id
            )
        ).first()
        if school_uuid is None or profile is None or profile.left_school:
            return Standing(school_id, person_id, "", frozenset())
        is_admin = (
            conn.execute(
                sa.select(admins.c.person_id).where(
                    admins.c.school_uuid == school_uuid, admins.c.person_id == person_id
                )
            ).first()
            is not None
        )
        taught = frozenset(
            conn.execute(
                sa.select(classes.c.class_id).where(
                    classes.c.school_uuid == school_uuid, classes.c.class_teacher_id == person_id
                )
            ).scalars()
        )
        chat_rows = conn.execute(
            sa.select(chats)
            .where(chats.c.school_id == school_id, chats.c.archived == 0)
            .order_by(chats.c.position)
        ).all()
        moderated: dict[str, set[str]] = {}
        for chat_uuid, profile_id in conn.execute(
            sa.select(moderators.c.chat_uuid, moderators.c.profile_id).where(
                moderators.c.chat_uuid.in_([r.chat_uuid for r in chat_rows])
            )
        ):
            moderated.setdefault(chat_uuid, set()).add(profile_id)
    roles = set()
    if is_admin:
        roles.add(ADMINISTRATOR)
    if taught:
        roles.add(CLASS_TEACHER)
    if profile.role in {TEACHER, SECURITY}:
        roles.add(profile.role)
    actor = ActorStanding(person_id, is_admin, profile.role == TEACHER, taught)
    controlled = []
    for row in chat_rows:
        control = ChatControl(
            row.kind,
            row.class_id,
            row.creator_id,
            row.owner_id,
            frozenset(moderated.get(row.chat_uuid, ())),
        )
        granted = authorities_over(control, actor)
        if granted:
            controlled.append(ControlledChat(row.chat_id, row.title, tuple(sorted(granted))))
    return Standing(
        school_id, person_id, profile.display_name or person_id, frozenset(roles), tuple(controlled)
    )
