"""Current state: schools, administrators, classes and class teachers, the roster, chats
with owner, moderators, members (with roles) and blocked members, profiles and the full
history of their ElZhur links.

School, chat and profile events after the first name their aggregate only by its id (a
UUIDv5 of the readable keys), so the tables are keyed by that id and joined to the rows
that hold the readable keys when they are read.
"""

from __future__ import annotations

from typing import Any

from sferum_audit.domain.chat import Chat
from sferum_audit.domain.erasure import Erasure
from sferum_audit.domain.profile import Profile
from sferum_audit.domain.school import School
from sferum_audit.projections.buffer import AppendBuffer, TableBuffer
from sferum_audit.projections.tables import CURRENT_STATE
from sferum_audit.projections.view import ERASED_TEXT, Handler, View, canonical_json, iso, topic


class CurrentStateView(View):
    """Who is where now, and how each profile's account links came and went."""

    name = CURRENT_STATE
    append_only = frozenset({"cs_links"})

    cs_schools: TableBuffer
    cs_administrators: TableBuffer
    cs_classes: TableBuffer
    cs_roster: TableBuffer
    cs_chats: TableBuffer
    cs_moderators: TableBuffer
    cs_members: TableBuffer
    cs_blocked: TableBuffer
    cs_profiles: TableBuffer
    cs_links: AppendBuffer

    def routes(self) -> dict[str, Handler]:
        return {
            topic(School, "Registered"): self.school_registered,
            topic(School, "AdministratorAppointed"): self.administrator_appointed,
            topic(School, "AdministratorRemoved"): self.administrator_removed,
            topic(School, "ClassCreated"): self.class_created,
            topic(School, "ClassTeacherAssigned"): self.class_teacher_assigned,
            topic(School, "ClassTeacherReleased"): self.class_teacher_released,
            topic(School, "PersonAdmitted"): self.person_admitted,
            topic(School, "StudentTransferred"): self.student_transferred,
            topic(School, "PersonLeft"): self.person_left,
            topic(Chat, "Created"): self.chat_created,
            topic(Chat, "ModeratorAppointed"): self.moderator_appointed,
            topic(Chat, "ModeratorRemoved"): self.moderator_removed,
            topic(Chat, "Archived"): self.chat_archived,
            topic(Chat, "MemberJoined"): self.member_joined,
            topic(Chat, "MemberLeft"): self.member_gone,
            topic(Chat, "MemberRemoved"): self.member_gone,
            topic(Chat, "MemberBlocked"): self.member_blocked,
            topic(Chat, "MemberUnblocked"): self.member_unblocked,
            topic(Profile, "Registered"): self.profile_registered,
            topic(Profile, "AccountLinked"): self.account_linked,
            topic(Profile, "AccountUnlinked"): self.account_unlinked,
            topic(Profile, "LeftSchool"): self.left_school,
            topic(Erasure, "Recorded"): self.erased,
        }

    # -- school -------------------------------------------------------------------------------

    def school_registered(self, e: Any, position: int) -> None:
        school = e.originator_id.hex
        at = iso(e.ctx.occurred_at)
        self.cs_schools.insert(
            school,
            {
                "school_uuid": school,
                "school_id": e.school_id,
                "name": e.name,
                "order_ref": e.order_ref,
                "registered_at": at,
                "registered_by": e.ctx.actor_id,
                "position": position,
            },
        )
        self._administrator(school, e.first_administrator_id, e.order_ref, at, e, position)

    def _administrator(
        self, school: str, person: str, order_ref: str, at: str | None, e: Any, position: int
    ) -> None:
        self.cs_administrators.insert(
            (school, person),
            {
                "school_uuid": school,
                "person_id": person,
                "order_ref": order_ref,
                "appointed_at": at,
                "appointed_by": e.ctx.actor_id,
                "position": position,
            },
        )

    def administrator_appointed(self, e: Any, position: int) -> None:
        at = iso(e.ctx.occurred_at)
        self._administrator(e.originator_id.hex, e.person_id, e.order_ref, at, e, position)

    def administrator_removed(self, e: Any, position: int) -> None:
        self.cs_administrators.delete((e.originator_id.hex, e.person_id))

    def class_created(self, e: Any, position: int) -> None:
        school = e.originator_id.hex
        self.cs_classes.insert(
            (school, e.class_id),
            {
                "school_uuid": school,
                "class_id": e.class_id,
                "name": e.name,
                "class_teacher_id": None,
                "teacher_assigned_at": None,
                "created_at": iso(e.ctx.occurred_at),
                "position": position,
            },
        )

    def class_teacher_assigned(self, e: Any, position: int) -> None:
        self.cs_classes.update(
            (e.originator_id.hex, e.class_id),
            {"class_teacher_id": e.teacher_id, "teacher_assigned_at": iso(e.ctx.occurred_at)},
        )

    def class_teacher_released(self, e: Any, position: int) -> None:
        self.cs_classes.update(
            (e.originator_id.hex, e.class_id),
            {"class_teacher_id": None, "teacher_assigned_at": None},
        )

    def person_admitted(self, e: Any, position: int) -> None:
        school = e.originator_id.hex
        self.cs_roster.insert(
            (school, e.person_id),
            {
                "school_uuid": school,
                "person_id": e.person_id,
                "roster_role": e.roster_role,
                "class_id": e.class_id,
                "admitted_at": iso(e.ctx.occurred_at),
                "position": position,
            },
        )

    def student_transferred(self, e: Any, position: int) -> None:
        self.cs_roster.update((e.originator_id.hex, e.person_id), {"class_id": e.to_class_id})

    def person_left(self, e: Any, position: int) -> None:
        school = e.originator_id.hex
        self.cs_roster.delete((school, e.person_id))
        self.cs_administrators.delete((school, e.person_id))
        self.raw(
            "UPDATE {cs_classes} SET class_teacher_id=NULL, teacher_assigned_at=NULL "
            "WHERE school_uuid={ph} AND class_teacher_id={ph}",
            school,
            e.person_id,
        )

    # -- chats --------------------------------------------------------------------------------

    def chat_created(self, e: Any, position: int) -> None:
        chat = e.originator_id.hex
        self.cs_chats.insert(
            chat,
            {
                "chat_uuid": chat,
                "school_id": e.school_id,
                "chat_id": e.chat_id,
                "kind": e.kind,
                "title": e.title,
                "class_id": e.class_id,
                "subject": e.subject,
                "purpose": e.purpose,
                "creator_id": e.creator_id,
                "owner_id": e.owner_id,
                "archived": 0,
                "archived_at": None,
                "created_at": iso(e.ctx.occurred_at),
                "position": position,
            },
        )

    def moderator_appointed(self, e: Any, position: int) -> None:
        chat = e.originator_id.hex
        self.cs_moderators.insert(
            (chat, e.profile_id),
            {
                "chat_uuid": chat,
                "profile_id": e.profile_id,
                "appointed_at": iso(e.ctx.occurred_at),
                "appointed_by": e.ctx.actor_id,
                "position": position,
            },
        )

    def moderator_removed(self, e: Any, position: int) -> None:
        self.cs_moderators.delete((e.originator_id.hex, e.profile_id))

    def chat_archived(self, e: Any, position: int) -> None:
        self.cs_chats.update(
            e.originator_id.hex, {"archived": 1, "archived_at": iso(e.ctx.occurred_at)}
        )

    def member_joined(self, e: Any, position: int) -> None:
        chat = e.originator_id.hex
        self.cs_members.insert(
            (chat, e.profile_id),
            {
                "chat_uuid": chat,
                "profile_id": e.profile_id,
                "role": e.role,
                "via": e.via,
                "invitation_id": e.invitation_id,
                "joined_at": iso(e.ctx.occurred_at),
                "added_by": e.ctx.actor_id,
                "position": position,
            },
        )

    def member_gone(self, e: Any, position: int) -> None:
        self.cs_members.delete((e.originator_id.hex, e.profile_id))

    def member_blocked(self, e: Any, position: int) -> None:
        chat = e.originator_id.hex
        self.cs_members.delete((chat, e.member_id))
        self.cs_blocked.insert(
            (chat, e.member_id),
            {
                "chat_uuid": chat,
                "profile_id": e.member_id,
                "blocked_at": iso(e.ctx.occurred_at),
                "blocked_by": e.ctx.actor_id,
                "authority": e.authority,
                "ground": e.ground,
                "position": position,
            },
        )

    def member_unblocked(self, e: Any, position: int) -> None:
        self.cs_blocked.delete((e.originator_id.hex, e.member_id))

    # -- profiles and links -------------------------------------------------------------------

    def profile_registered(self, e: Any, position: int) -> None:
        profile = e.originator_id.hex
        self.cs_profiles.insert(
            profile,
            {
                "profile_uuid": profile,
                "profile_id": e.profile_id,
                "school_id": e.school_id,
                "role": e.role,
                "display_name": e.display_name,
                "children": canonical_json(list(e.children)),
                "elzhur_account_id": None,
                "linked_at": None,
                "left_school": 0,
                "registered_at": iso(e.ctx.occurred_at),
                "position": position,
            },
        )

    def _link(self, e: Any, position: int, action: str, reason: str | None) -> None:
        self.cs_links.rows.append(
            (
                position,
                e.originator_id.hex,
                action,
                e.elzhur_account_id,
                reason,
                e.ctx.actor_id,
                e.ctx.actor_role,
                iso(e.ctx.occurred_at),
                iso(e.timestamp),
            )
        )

    def account_linked(self, e: Any, position: int) -> None:
        at = iso(e.ctx.occurred_at)
        self.cs_profiles.update(
            e.originator_id.hex, {"elzhur_account_id": e.elzhur_account_id, "linked_at": at}
        )
        self._link(e, position, "linked", None)

    def account_unlinked(self, e: Any, position: int) -> None:
        self.cs_profiles.update(e.originator_id.hex, {"elzhur_account_id": None, "linked_at": None})
        self._link(e, position, "unlinked", e.reason)

    def left_school(self, e: Any, position: int) -> None:
        self.cs_profiles.update(e.originator_id.hex, {"left_school": 1})

    def erased(self, e: Any, position: int) -> None:
        """The subject's key is destroyed after this event: a rebuild reads their personal
        fields as erased, so the live rows say so too."""
        self.raw(
            "UPDATE {cs_profiles} SET display_name={ph} "
            "WHERE profile_id={ph} AND display_name IS NOT NULL",
            ERASED_TEXT,
            e.subject_id,
        )
