"""A chat or channel of the school, its membership, and the moderation done in it (2.3-2.5).

Moderation actions are events of the chat they happen in: a blocked member is chat state
(they cannot rejoin until unblocked), and the chat decides who controls it, at the time an
act occurred (it keeps when each moderator's term began and ended), and who may be in it
(``check_may_join``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Self
from uuid import UUID

from eventsourcing.domain import event

from sferum_audit.domain.authority import ActorStanding, ChatControl, authorities_over
from sferum_audit.domain.base import AuditedAggregate, stable_id
from sferum_audit.domain.context import CommandContext, check_not_before, check_step_order
from sferum_audit.domain.errors import ActorNotPermitted, DomainError, InvalidValue
from sferum_audit.domain.history import Term, held_at, last_moment, open_term
from sferum_audit.domain.regulation import (
    CHAT_KINDS,
    CLASS_CHAT,
    CLASS_TEACHER,
    CREATABLE_CHAT_KINDS,
    FREE_CHAT,
    FREE_CHAT_PURPOSES,
    GROUNDS,
    INVITATION_ROLES,
    MODERATION_AUTHORITIES,
    PARENTS_CHAT,
    ROLE_OF_AUTHORITY,
    STAFF_ROOM,
    SUBJECT_CHAT,
    require_one_of,
    require_text,
)

JOIN_ROUTES = frozenset({"invitation", "account-link", "added"})


class ChatNotUnderControl(ActorNotPermitted):
    """The actor controls this chat under none of 2.3, 2.4, 2.5."""

    code = "chat-not-under-control"


class AuthorityNotHeld(ActorNotPermitted):
    """The actor controls the chat, but not under the authority the command names."""

    code = "authority-not-held"


class AuthorityDoesNotMatchRole(ActorNotPermitted):
    """2.3 is exercised as administrator, 2.4 as teacher, 2.5 as class teacher."""

    code = "authority-does-not-match-role"


class StudentsAndParentsDoNotModerate(ActorNotPermitted):
    code = "students-and-parents-do-not-moderate"


class WarningNeedsClassTeacher(ActorNotPermitted):
    """Warning about liability is the class teacher's power (2.5)."""

    code = "warning-needs-class-teacher"


class MayNotCreateChat(ActorNotPermitted):
    code = "may-not-create-chat"


class ChatArchived(DomainError):
    code = "chat-archived"


class AlreadyMember(DomainError):
    code = "already-member"


class NotMember(DomainError):
    code = "not-member"


class MemberBlocked(DomainError):
    """A blocked member cannot rejoin until unblocked."""

    code = "member-blocked"


class NotBlocked(DomainError):
    code = "member-not-blocked"


class MembershipNotAllowed(ActorNotPermitted):
    """The person may not be a member of this chat (see ``Chat.check_may_join``)."""

    code = "membership-not-allowed"


@dataclass(frozen=True, slots=True)
class Candidate:
    """What decides whether a person may join a chat, as it held when they join.

    ``role`` is their profile's role; ``student_class`` the class a student is enrolled in;
    ``children_classes`` the classes of a parent's children; ``classes_taught`` the classes
    whose class teacher they are.
    """

    person_id: str
    role: str
    student_class: str | None = None
    children_classes: frozenset[str] = frozenset()
    classes_taught: frozenset[str] = frozenset()


class Chat(AuditedAggregate):
    """A chat: kind, owner, moderators, members with their roles, blocked members."""

    @staticmethod
    def create_id(school_id: str, chat_id: str) -> UUID:
        return stable_id("chat", school_id, chat_id)

    @classmethod
    def open(
        cls,
        ctx: CommandContext,
        school_id: str,
        chat_id: str,
        kind: str,
        title: str,
        *,
        creator_id: str,
        owner_id: str | None,
        class_id: str | None = None,
        subject: str | None = None,
        purpose: str | None = None,
    ) -> Self:
        """Opens a chat of any kind; ``create`` is the guarded version for people."""
        require_text(chat_id, "chat id", 100)
        require_one_of(kind, CHAT_KINDS, "chat kind")
        require_text(title, "chat title", 200)
        if kind == FREE_CHAT:
            if purpose is None:
                raise InvalidValue("a free chat needs a purpose (project, excursion, ...)")
            require_one_of(purpose, FREE_CHAT_PURPOSES, "free chat purpose")
        if kind == SUBJECT_CHAT:
            require_text(subject or "", "subject", 100)
        return cls(
            ctx=ctx,
            school_id=school_id,
            chat_id=chat_id,
            kind=kind,
            title=title,
            class_id=class_id,
            subject=subject,
            purpose=purpose,
            creator_id=creator_id,
            owner_id=owner_id,
        )

    @classmethod
    def create(
        cls,
        ctx: CommandContext,
        standing: ActorStanding,
        school_id: str,
        chat_id: str,
        kind: str,
        title: str,
        class_id: str | None,
        subject: str | None,
        purpose: str | None,
    ) -> Self:
        """A subject or free chat created by an administrator (2.3), a teacher (2.4) or a
        class teacher (2.5), who becomes its owner."""
        if kind not in CREATABLE_CHAT_KINDS:
            raise MayNotCreateChat(
                f"a {kind} chat is opened automatically with the school or class; "
                "people create subject and free chats"
            )
        allowed = {
            "administrator": standing.is_administrator,
            "teacher": standing.is_teacher,
            "class-teacher": bool(standing.classes_taught),
        }
        if not allowed.get(ctx.actor_role, False):
            raise MayNotCreateChat(
                f"{ctx.actor_id} may not create chats as {ctx.actor_role}: administrators (2.3), "
                "teachers (2.4) and class teachers (2.5) do"
            )
        return cls.open(
            ctx,
            school_id,
            chat_id,
            kind,
            title,
            creator_id=ctx.actor_id,
            owner_id=ctx.actor_id,
            class_id=class_id,
            subject=subject,
            purpose=purpose,
        )

    @event("Created")
    def __init__(
        self,
        ctx: CommandContext,
        school_id: str,
        chat_id: str,
        kind: str,
        title: str,
        class_id: str | None,
        subject: str | None,
        purpose: str | None,
        creator_id: str,
        owner_id: str | None,
    ) -> None:
        self.school_id = school_id
        self.chat_id = chat_id
        self.kind = kind
        self.title = title
        self.class_id = class_id
        self.creator_id = creator_id
        self.owner_id = owner_id
        self.moderator_ids: set[str] = set()
        self.moderator_terms: dict[str, list[Term]] = {}
        self.members: dict[str, str] = {}
        self.blocked: set[str] = set()
        self.archived = False
        self.created_at = ctx.occurred_at
        # When each person's membership last changed (joined, left, removed, blocked,
        # unblocked), by occurred_at: the next change of their membership is not earlier.
        self.membership_changed_at: dict[str, datetime] = {}
        # When each person was a member (from join to leaving, removal or block), so that
        # a warning or block is judged by the membership at its occurred_at.
        self.member_terms: dict[str, list[Term]] = {}

    # -- queries and guards ----------------------------------------------------------------

    @property
    def control(self) -> ChatControl:
        return self.control_at(None)

    def control_at(self, at: datetime | None) -> ChatControl:
        """Who controls the chat at ``at`` (``None``: now): moderators of that time."""
        moderators = {p for p, terms in self.moderator_terms.items() if held_at(terms, at)}
        return ChatControl(
            kind=self.kind,
            class_id=self.class_id,
            creator_id=self.creator_id,
            owner_id=self.owner_id,
            moderator_ids=frozenset(moderators | (self.moderator_ids if at is None else set())),
        )

    def check_existed_at(self, at: datetime) -> None:
        check_not_before(at, self.created_at, f"chat {self.chat_id} was created")

    def check_open(self) -> None:
        if self.archived:
            raise ChatArchived(f"chat {self.chat_id} is archived")

    def check_may_join(self, candidate: Candidate) -> None:
        """Who may be a member (the order, 2.2, 2.5, 2.7, 2.8):

        - the staff room: teachers (administrators are teachers too), as teachers;
        - a class chat: the class's students, their parents, and the class teacher;
        - a parents' chat: the parents of the class's students, and the class teacher;
        - any other chat bound to a class (a subject or free chat of the class): the
          class's students, their parents, and teachers;
        - the school channel and chats bound to no class: anyone of the school.
        """
        class_id = self.class_id
        role = candidate.role
        of_class = class_id is not None and (
            candidate.student_class == class_id or class_id in candidate.children_classes
        )
        class_teacher = class_id is not None and class_id in candidate.classes_taught
        if self.kind == STAFF_ROOM:
            allowed, who = role == "teacher", "teachers"
        elif self.kind == CLASS_CHAT:
            allowed = of_class or class_teacher
            who = f"students of class {class_id!r}, their parents and its class teacher"
        elif self.kind == PARENTS_CHAT:
            allowed = class_teacher or (role == "parent" and of_class)
            who = f"parents of class {class_id!r} students and its class teacher"
        elif class_id is not None:
            allowed = of_class or role == "teacher"
            who = f"students of class {class_id!r}, their parents and teachers"
        else:
            allowed, who = True, "anyone of the school"
        if not allowed:
            raise MembershipNotAllowed(
                f"{candidate.person_id} ({role}) may not be a member of chat {self.chat_id}: "
                f"it is for {who}"
            )

    def check_controlled_by(self, ctx: CommandContext, standing: ActorStanding) -> frozenset[str]:
        """The authorities under which the actor controls this chat when the act occurred;
        refuses if none (``standing`` must be the actor's standing at that time)."""
        if ctx.actor_role in {"student", "parent"}:
            raise StudentsAndParentsDoNotModerate(
                "students (2.7) and parents (2.8) do not moderate or manage chats"
            )
        self.check_existed_at(ctx.occurred_at)
        granted = authorities_over(self.control_at(ctx.occurred_at), standing)
        if not granted:
            raise ChatNotUnderControl(
                f"chat {self.chat_id} is not under the control of {ctx.actor_id}"
            )
        return granted

    def check_may_moderate(
        self,
        ctx: CommandContext,
        standing: ActorStanding,
        authority: str,
        ground: str | None,
        *,
        warning: bool = False,
    ) -> None:
        """The rules every moderation action obeys (docs/regulation.md, 2.3-2.5 and 4.2)."""
        require_one_of(authority, MODERATION_AUTHORITIES, "authority")
        if ground is not None:
            require_one_of(ground, GROUNDS, "ground")
        granted = self.check_controlled_by(ctx, standing)
        if ctx.actor_role != ROLE_OF_AUTHORITY[authority]:
            raise AuthorityDoesNotMatchRole(
                f"authority {authority} is exercised as {ROLE_OF_AUTHORITY[authority]}, "
                f"but the actor acts as {ctx.actor_role}"
            )
        if authority not in granted:
            held = ", ".join(sorted(granted))
            raise AuthorityNotHeld(
                f"{ctx.actor_id} controls chat {self.chat_id} under {held}, not {authority}"
            )
        if warning and authority != CLASS_TEACHER:
            raise WarningNeedsClassTeacher(
                "warning about liability is the class teacher's power (2.5)"
            )

    def check_can_join(self, profile_id: str) -> None:
        self.check_open()
        if profile_id in self.blocked:
            raise MemberBlocked(f"{profile_id} is blocked in chat {self.chat_id}; unblock first")
        if profile_id in self.members:
            raise AlreadyMember(f"{profile_id} is already a member of chat {self.chat_id}")

    def check_member(self, profile_id: str) -> None:
        if profile_id not in self.members:
            raise NotMember(f"{profile_id} is not a member of chat {self.chat_id}")

    def check_member_at(self, profile_id: str, at: datetime) -> None:
        """The person was a member when the act occurred (they may have left since: a
        warning or block reported late is judged by what held then)."""
        if not held_at(self.member_terms.get(profile_id), at):
            raise NotMember(
                f"{profile_id} was not a member of chat {self.chat_id} at {at.isoformat()}"
            )

    def _end_member_term(self, profile_id: str, at: datetime) -> None:
        term = open_term(self.member_terms.get(profile_id))
        if term is not None:
            term.end = at

    def check_membership_step(self, profile_id: str, at: datetime, step: str) -> None:
        """A change of a person's membership (join, leave, removal, block, unblock) is not
        dated before the change it follows."""
        last = self.membership_changed_at.get(profile_id)
        if last is not None:
            check_step_order(
                at, last, step, f"{profile_id}'s last membership change in chat {self.chat_id}"
            )

    def check_may_still_join(self, candidate_now: Candidate, at_school_now: bool) -> None:
        """A join reported late (dated before a transfer, a departure or a release that
        is already recorded) would undo that movement: the membership it creates must be
        allowed now too, as the movement would have ended it."""
        if not at_school_now:
            raise MembershipNotAllowed(
                f"{candidate_now.person_id} has left the school since; a membership dated "
                "before the departure is not recorded after it"
            )
        try:
            self.check_may_join(candidate_now)
        except MembershipNotAllowed as refused:
            raise MembershipNotAllowed(
                f"{refused} (no longer: a membership dated before a transfer or release "
                "is not recorded after it)"
            ) from None

    def _membership_changed(self, profile_id: str, at: datetime) -> None:
        last = self.membership_changed_at.get(profile_id)
        self.membership_changed_at[profile_id] = at if last is None else max(last, at)

    # -- ownership -------------------------------------------------------------------------

    def appoint_moderator(
        self, ctx: CommandContext, standing: ActorStanding, profile_id: str
    ) -> None:
        """The owner or an administrator makes a teacher a moderator (2.4 control follows)."""
        self.check_open()
        self.check_controlled_by(ctx, standing)
        if profile_id in self.moderator_ids:
            raise AlreadyMember(f"{profile_id} already moderates chat {self.chat_id}")
        previous = last_moment(self.moderator_terms.get(profile_id))
        check_not_before(ctx.occurred_at, previous, f"{profile_id}'s previous term ended")
        self._moderator_appointed(ctx, profile_id)

    @event("ModeratorAppointed")
    def _moderator_appointed(self, ctx: CommandContext, profile_id: str) -> None:
        self.moderator_ids.add(profile_id)
        self.moderator_terms.setdefault(profile_id, []).append(Term(ctx.occurred_at))

    def remove_moderator(
        self, ctx: CommandContext, standing: ActorStanding, profile_id: str
    ) -> None:
        self.check_controlled_by(ctx, standing)
        if profile_id not in self.moderator_ids:
            raise NotMember(f"{profile_id} does not moderate chat {self.chat_id}")
        term = open_term(self.moderator_terms.get(profile_id))
        check_not_before(ctx.occurred_at, term.start if term else None, "the appointment")
        self._moderator_removed(ctx, profile_id)

    @event("ModeratorRemoved")
    def _moderator_removed(self, ctx: CommandContext, profile_id: str) -> None:
        self.moderator_ids.discard(profile_id)
        term = open_term(self.moderator_terms.get(profile_id))
        if term is not None:
            term.end = ctx.occurred_at

    def archive(self, ctx: CommandContext, standing: ActorStanding, reason: str) -> None:
        self.check_open()
        self.check_controlled_by(ctx, standing)
        require_text(reason, "reason")
        self._archived(ctx, reason)

    @event("Archived")
    def _archived(self, ctx: CommandContext, reason: str) -> None:
        self.archived = True

    # -- membership ------------------------------------------------------------------------

    def join(
        self,
        ctx: CommandContext,
        candidate: Candidate,
        role: str,
        via: str,
        invitation_id: str | None = None,
    ) -> None:
        """A person joins with a role: by redeeming an invitation, by account link, or added
        by someone who controls the chat (the caller checks who). Staff join the staff room
        as teachers («учитель», 2.2, 2.5), whatever role their link named."""
        require_one_of(role, INVITATION_ROLES, "member role")
        require_one_of(via, JOIN_ROUTES, "join route")
        self.check_existed_at(ctx.occurred_at)
        profile_id = candidate.person_id
        self.check_can_join(profile_id)
        self.check_membership_step(profile_id, ctx.occurred_at, "the join")
        self.check_may_join(candidate)
        if self.kind == STAFF_ROOM:
            role = "teacher"
        self._member_joined(ctx, profile_id, role, via, invitation_id)

    @event("MemberJoined")
    def _member_joined(
        self, ctx: CommandContext, profile_id: str, role: str, via: str, invitation_id: str | None
    ) -> None:
        self.members[profile_id] = role
        self.member_terms.setdefault(profile_id, []).append(Term(ctx.occurred_at))
        self._membership_changed(profile_id, ctx.occurred_at)

    def leave(self, ctx: CommandContext) -> None:
        """The actor leaves the chat of their own accord."""
        self.check_member(ctx.actor_id)
        self.check_membership_step(ctx.actor_id, ctx.occurred_at, "leaving")
        self._member_left(ctx, ctx.actor_id)

    @event("MemberLeft")
    def _member_left(self, ctx: CommandContext, profile_id: str) -> None:
        self.members.pop(profile_id, None)
        self._end_member_term(profile_id, ctx.occurred_at)
        self._membership_changed(profile_id, ctx.occurred_at)

    def remove_member(self, ctx: CommandContext, profile_id: str, reason: str) -> None:
        """Someone in control removes a member (the caller checks who); not dated before
        the member joined."""
        self.check_member(profile_id)
        self.check_membership_step(profile_id, ctx.occurred_at, "the removal")
        self.end_membership(ctx, profile_id, reason)

    def end_membership(self, ctx: CommandContext, profile_id: str, reason: str) -> None:
        """Ends a membership because of a movement (left the school, transferred,
        released): recorded even when the movement is reported after a later join."""
        require_text(reason, "reason")
        self.check_member(profile_id)
        self._member_removed(ctx, profile_id, reason)

    @event("MemberRemoved")
    def _member_removed(self, ctx: CommandContext, profile_id: str, reason: str) -> None:
        self.members.pop(profile_id, None)
        self._end_member_term(profile_id, ctx.occurred_at)
        self._membership_changed(profile_id, ctx.occurred_at)

    # -- moderation (2.3, 2.4, 2.5 on grounds of 4.2, law, third-party rights) --------------

    def remove_content(
        self,
        ctx: CommandContext,
        standing: ActorStanding,
        authority: str,
        ground: str,
        message_id: str,
        author_id: str,
        reason: str,
        excerpt: str | None = None,
    ) -> None:
        self.check_may_moderate(ctx, standing, authority, ground)
        self._check_message(message_id, reason, excerpt)
        self._content_removed(ctx, authority, ground, message_id, author_id, reason, excerpt)

    @event("ContentRemoved")
    def _content_removed(
        self,
        ctx: CommandContext,
        authority: str,
        ground: str,
        message_id: str,
        author_id: str,
        reason: str,
        excerpt: str | None,
    ) -> None:
        pass

    def block_content(
        self,
        ctx: CommandContext,
        standing: ActorStanding,
        authority: str,
        ground: str,
        message_id: str,
        author_id: str,
        reason: str,
        excerpt: str | None = None,
    ) -> None:
        self.check_may_moderate(ctx, standing, authority, ground)
        self._check_message(message_id, reason, excerpt)
        self._content_blocked(ctx, authority, ground, message_id, author_id, reason, excerpt)

    @event("ContentBlocked")
    def _content_blocked(
        self,
        ctx: CommandContext,
        authority: str,
        ground: str,
        message_id: str,
        author_id: str,
        reason: str,
        excerpt: str | None,
    ) -> None:
        pass

    def block_member(
        self,
        ctx: CommandContext,
        standing: ActorStanding,
        authority: str,
        ground: str,
        member_id: str,
        reason: str,
    ) -> None:
        """Blocks a member: they leave the chat and cannot rejoin until unblocked. Judged
        by the membership at the act's time: a block reported after the member left
        still stands."""
        self.check_may_moderate(ctx, standing, authority, ground)
        require_text(reason, "reason")
        if member_id in self.blocked:
            raise MemberBlocked(f"{member_id} is already blocked in chat {self.chat_id}")
        self.check_member_at(member_id, ctx.occurred_at)
        if member_id == ctx.actor_id:
            raise InvalidValue("a moderator cannot block themselves")
        self._member_blocked(ctx, authority, ground, member_id, reason)

    @event("MemberBlocked")
    def _member_blocked(
        self, ctx: CommandContext, authority: str, ground: str, member_id: str, reason: str
    ) -> None:
        self.members.pop(member_id, None)
        self.blocked.add(member_id)
        self._end_member_term(member_id, ctx.occurred_at)
        self._membership_changed(member_id, ctx.occurred_at)

    def unblock_member(
        self,
        ctx: CommandContext,
        standing: ActorStanding,
        authority: str,
        member_id: str,
        reason: str,
    ) -> None:
        self.check_may_moderate(ctx, standing, authority, None)
        require_text(reason, "reason")
        if member_id not in self.blocked:
            raise NotBlocked(f"{member_id} is not blocked in chat {self.chat_id}")
        self.check_membership_step(member_id, ctx.occurred_at, "the unblock")
        self._member_unblocked(ctx, authority, member_id, reason)

    @event("MemberUnblocked")
    def _member_unblocked(
        self, ctx: CommandContext, authority: str, member_id: str, reason: str
    ) -> None:
        self.blocked.discard(member_id)
        self._membership_changed(member_id, ctx.occurred_at)

    def warn_about_liability(
        self,
        ctx: CommandContext,
        standing: ActorStanding,
        authority: str,
        ground: str,
        member_id: str,
        reason: str,
    ) -> None:
        """The class teacher warns a member about liability for breaking the rules (2.5)."""
        self.check_may_moderate(ctx, standing, authority, ground, warning=True)
        require_text(reason, "reason")
        self.check_member_at(member_id, ctx.occurred_at)
        self._liability_warned(ctx, authority, ground, member_id, reason)

    @event("LiabilityWarned")
    def _liability_warned(
        self, ctx: CommandContext, authority: str, ground: str, member_id: str, reason: str
    ) -> None:
        pass

    @staticmethod
    def _check_message(message_id: str, reason: str, excerpt: str | None) -> None:
        require_text(message_id, "message id", 200)
        require_text(reason, "reason")
        if excerpt is not None:
            require_text(excerpt, "excerpt", 2000)
