"""An invitation link to join one chat in one role (2.3, 2.4, 2.5).

Issued by an administrator, or by a teacher for a chat under their control; redeemed once
by one profile whose own role the link names («в соответствующей пользовательской роли»,
2.3); annulled while unused, for information security (2.3); or expired. Each step is
dated no earlier than the issue.
"""

from __future__ import annotations

from datetime import datetime
from typing import Self
from uuid import UUID

from eventsourcing.domain import event

from sferum_audit.domain.authority import ActorStanding
from sferum_audit.domain.base import AuditedAggregate, stable_id
from sferum_audit.domain.context import CommandContext, check_step_order
from sferum_audit.domain.errors import ActorNotPermitted, DomainError, InvalidValue
from sferum_audit.domain.regulation import (
    CLASS_CHAT,
    INVITATION_ROLES,
    PARENTS_CHAT,
    STAFF_ROOM,
    require_one_of,
    require_text,
)

# The roles a link to a chat of each kind may name; other kinds take every role.
ROLES_FOR_CHAT: dict[str, frozenset[str]] = {
    STAFF_ROOM: frozenset({"teacher", "administrator"}),
    CLASS_CHAT: frozenset({"student", "parent", "teacher"}),
    PARENTS_CHAT: frozenset({"parent", "teacher"}),
}

ISSUED = "issued"
REDEEMED = "redeemed"
ANNULLED = "annulled"
EXPIRED = "expired"


class InvitationNotUsable(DomainError):
    """The link was already redeemed, annulled or expired."""

    code = "invitation-not-usable"


class InvitationExpired(DomainError):
    code = "invitation-expired"


class InvitationNotYetExpired(DomainError):
    code = "invitation-not-yet-expired"


class MayNotIssueInvitation(ActorNotPermitted):
    code = "may-not-issue-invitation"


class InvitationRoleNotForChat(InvalidValue):
    """A link's role must suit its chat: staff room links are for teachers, ..."""

    code = "invitation-role-not-for-chat"


class InvitationRoleMismatch(ActorNotPermitted):
    """A link is redeemed only by a person in the role it names (2.3): a student cannot use
    a teacher's link; an administrator's link needs a teacher who is an administrator."""

    code = "invitation-role-mismatch"


class Invitation(AuditedAggregate):
    """A link with a status: issued, then redeemed, annulled or expired (never back)."""

    @staticmethod
    def create_id(school_id: str, invitation_id: str) -> UUID:
        return stable_id("invitation", school_id, invitation_id)

    @classmethod
    def issue(
        cls,
        ctx: CommandContext,
        chat_authorities: frozenset[str],
        standing: ActorStanding,
        school_id: str,
        invitation_id: str,
        chat_id: str,
        role: str,
        expires_at: datetime,
        chat_kind: str,
    ) -> Self:
        """Issues a link. ``chat_authorities`` are the authorities under which the issuer
        controls the chat when the act occurred (see ``Chat.check_controlled_by``)."""
        require_text(invitation_id, "invitation id", 100)
        require_one_of(role, INVITATION_ROLES, "invitation role")
        suitable = ROLES_FOR_CHAT.get(chat_kind, INVITATION_ROLES)
        if role not in suitable:
            raise InvitationRoleNotForChat(
                f"a link to the {chat_kind} chat {chat_id} cannot name the role {role!r}; "
                f"it may name: {', '.join(sorted(suitable))}"
            )
        if expires_at.tzinfo is None:
            raise InvalidValue("expires_at must be timezone-aware")
        if expires_at <= ctx.occurred_at:
            raise InvalidValue("an invitation must expire after it is issued")
        if ctx.actor_role == "administrator" and standing.is_administrator:
            pass
        elif ctx.actor_role in {"teacher", "class-teacher"} and chat_authorities:
            if role == "administrator":
                raise MayNotIssueInvitation(
                    "only a platform administrator (2.3) issues administrator invitations"
                )
        else:
            raise MayNotIssueInvitation(
                f"{ctx.actor_id} may not issue invitations to chat {chat_id} as {ctx.actor_role}: "
                "administrators (2.3) do, and teachers for chats under their control (2.4, 2.5)"
            )
        return cls(
            ctx=ctx,
            school_id=school_id,
            invitation_id=invitation_id,
            chat_id=chat_id,
            role=role,
            expires_at=expires_at,
        )

    @event("Issued")
    def __init__(
        self,
        ctx: CommandContext,
        school_id: str,
        invitation_id: str,
        chat_id: str,
        role: str,
        expires_at: datetime,
    ) -> None:
        self.school_id = school_id
        self.invitation_id = invitation_id
        self.chat_id = chat_id
        self.role = role
        self.expires_at = expires_at
        self.issuer_id = ctx.actor_id
        self.status = ISSUED
        self.redeemed_by: str | None = None
        self.issued_at = ctx.occurred_at

    def check_role_fits(self, profile_id: str, profile_role: str, is_administrator: bool) -> None:
        """The redeemer holds the link's role: their profile's role, and for an
        administrator's link a teacher who is a platform administrator at that time."""
        if self.role == "administrator":
            fits = profile_role == "teacher" and is_administrator
        else:
            fits = profile_role == self.role
        if not fits:
            raise InvitationRoleMismatch(
                f"invitation {self.invitation_id} names the role {self.role!r}; {profile_id} "
                f"has a {profile_role} profile"
                f"{' and is an administrator' if is_administrator else ''} and may not use it "
                "(2.3: links are sent to each person in their own role)"
            )

    def check_redeemable(self, at: datetime) -> None:
        if self.status != ISSUED:
            raise InvitationNotUsable(f"invitation {self.invitation_id} is {self.status}")
        if at >= self.expires_at:
            raise InvitationExpired(
                f"invitation {self.invitation_id} expired at {self.expires_at.isoformat()}"
            )

    def redeem(
        self, ctx: CommandContext, profile_id: str, profile_role: str, is_administrator: bool
    ) -> None:
        """Redeemed once, by one profile in the link's role (the caller makes the profile
        join the chat). A refused redemption leaves the link issued, so it can be annulled."""
        self.check_redeemable(ctx.occurred_at)
        check_step_order(ctx.occurred_at, self.issued_at, "the redemption", "the issue")
        if ctx.actor_id != profile_id:
            raise ActorNotPermitted("an invitation is redeemed by the profile that joins")
        self.check_role_fits(profile_id, profile_role, is_administrator)
        self._redeemed(ctx, profile_id)

    @event("Redeemed")
    def _redeemed(self, ctx: CommandContext, profile_id: str) -> None:
        self.status = REDEEMED
        self.redeemed_by = profile_id

    def annul(self, ctx: CommandContext, is_administrator: bool, reason: str) -> None:
        """An administrator annuls an unused link for information security (2.3)."""
        if ctx.actor_role != "administrator" or not is_administrator:
            raise ActorNotPermitted("only a platform administrator (2.3) annuls invitations")
        require_text(reason, "reason")
        if self.status != ISSUED:
            raise InvitationNotUsable(
                f"invitation {self.invitation_id} is {self.status}; only unused links are annulled"
            )
        check_step_order(ctx.occurred_at, self.issued_at, "the annulment", "the issue")
        self._annulled(ctx, reason)

    @event("Annulled")
    def _annulled(self, ctx: CommandContext, reason: str) -> None:
        self.status = ANNULLED

    def expire(self, ctx: CommandContext, is_administrator: bool) -> None:
        """Marks a link past its expiry as expired (a scheduled job or an administrator)."""
        if ctx.actor_role not in {"system", "administrator"} or (
            ctx.actor_role == "administrator" and not is_administrator
        ):
            raise ActorNotPermitted("invitations are expired by the system or an administrator")
        if self.status != ISSUED:
            raise InvitationNotUsable(f"invitation {self.invitation_id} is {self.status}")
        if ctx.occurred_at < self.expires_at:
            raise InvitationNotYetExpired(
                f"invitation {self.invitation_id} is valid until {self.expires_at.isoformat()}"
            )
        self._expired(ctx)

    @event("Expired")
    def _expired(self, ctx: CommandContext) -> None:
        self.status = EXPIRED
