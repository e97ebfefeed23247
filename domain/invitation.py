"""An invitation link to join one chat in one role (2.3, 2.4, 2.5).

Issued by an administrator, or by a teacher for a chat under their control; redeemed once
by one profile; annulled while unused, for information security (2.3); or expired.
"""

from __future__ import annotations

from datetime import datetime
from typing import Self
from uuid import UUID

from eventsourcing.domain import event

from sferum_audit.domain.authority import ActorStanding
from sferum_audit.domain.base import AuditedAggregate, stable_id
from sferum_audit.domain.context import CommandContext
from sferum_audit.domain.errors import ActorNotPermitted, DomainError, InvalidValue
from sferum_audit.domain.regulation import INVITATION_ROLES, require_one_of, require_text

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
    ) -> Self:
        """Issues a link. ``chat_authorities`` are the authorities under which the issuer
        controls the chat (see ``Chat.check_controlled_by``)."""
        require_text(invitation_id, "invitation id", 100)
        require_one_of(role, INVITATION_ROLES, "invitation role")
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

    def check_redeemable(self, at: datetime) -> None:
        if self.status != ISSUED:
            raise InvitationNotUsable(f"invitation {self.invitation_id} is {self.status}")
        if at >= self.expires_at:
            raise InvitationExpired(
                f"invitation {self.invitation_id} expired at {self.expires_at.isoformat()}"
            )

    def redeem(self, ctx: CommandContext, profile_id: str) -> None:
        """Redeemed once, by one profile (the caller makes the profile join the chat)."""
        self.check_redeemable(ctx.occurred_at)
        if ctx.actor_id != profile_id:
            raise ActorNotPermitted("an invitation is redeemed by the profile that joins")
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
