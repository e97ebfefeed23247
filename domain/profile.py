"""An education profile in VK Messenger and its link to one ElZhur account (2.3-2.5, 2.7, 2.8)."""

from __future__ import annotations

from datetime import datetime
from typing import Self
from uuid import UUID

from eventsourcing.domain import event

from sferum_audit.domain.base import AuditedAggregate, stable_id
from sferum_audit.domain.context import CommandContext, check_step_order
from sferum_audit.domain.errors import ActorNotPermitted, DomainError
from sferum_audit.domain.history import Term, held_at, open_term
from sferum_audit.domain.regulation import PROFILE_ROLES, require_one_of, require_text


class AlreadyLinked(DomainError):
    """A profile is linked to exactly one ElZhur account at a time."""

    code = "profile-already-linked"


class NotLinked(DomainError):
    code = "profile-not-linked"


class NotProfileHolder(ActorNotPermitted):
    """Only the holder of the profile, or a platform administrator, may do this."""

    code = "not-profile-holder"


class Profile(AuditedAggregate):
    """A person's education profile: who they are at school and which ElZhur account is theirs.

    ``display_name`` is personal data; identifiers (``profile_id``) are pseudonymous.
    """

    @staticmethod
    def create_id(profile_id: str) -> UUID:
        return stable_id("profile", profile_id)

    @classmethod
    def register(
        cls,
        ctx: CommandContext,
        profile_id: str,
        school_id: str,
        role: str,
        display_name: str,
        children: list[str],
    ) -> Self:
        """The person creates their profile (2.7, 2.8); a parent names their children."""
        require_text(profile_id, "profile id", 100)
        require_one_of(role, PROFILE_ROLES, "profile role")
        require_text(display_name, "display name", 200)
        if children and role != "parent":
            raise DomainError("only a parent's profile names children")
        return cls(
            ctx=ctx,
            profile_id=profile_id,
            school_id=school_id,
            role=role,
            display_name=display_name,
            children=sorted(set(children)),
        )

    @event("Registered")
    def __init__(
        self,
        ctx: CommandContext,
        profile_id: str,
        school_id: str,
        role: str,
        display_name: str,
        children: list[str],
    ) -> None:
        self.profile_id = profile_id
        self.school_id = school_id
        self.role = role
        self.display_name = display_name
        self.children = list(children)
        self.elzhur_account_id: str | None = None
        self.account_changed_at: datetime | None = None  # last link or unlink
        self.left_school = False
        self.registered_at = ctx.occurred_at
        self.absences: list[Term] = []  # from leaving the school to returning to it

    # -- queries and guards ----------------------------------------------------------------

    def active_at(self, at: datetime | None = None) -> bool:
        """Whether the profile existed and its holder was at the school at ``at``
        (``None``: now)."""
        if at is None:
            return not self.left_school
        return self.registered_at <= at and not held_at(self.absences, at)

    def is_parent_of(self, profile_id: str) -> bool:
        return self.role == "parent" and profile_id in self.children

    def check_holder_or_administrator(self, ctx: CommandContext, is_administrator: bool) -> None:
        if ctx.actor_id != self.profile_id and not is_administrator:
            raise NotProfileHolder(
                f"{ctx.actor_id} may not act on profile {self.profile_id}: "
                "only its holder or a platform administrator (2.3)"
            )

    # -- commands --------------------------------------------------------------------------

    def link_account(
        self, ctx: CommandContext, elzhur_account_id: str, is_administrator: bool
    ) -> None:
        """Links the profile to an ElZhur account; the caller also claims the account, so one
        account never belongs to two profiles."""
        self.check_holder_or_administrator(ctx, is_administrator)
        require_text(elzhur_account_id, "ElZhur account id", 100)
        if self.elzhur_account_id is not None:
            raise AlreadyLinked(
                f"profile {self.profile_id} is already linked to ElZhur account "
                f"{self.elzhur_account_id}; unlink it first"
            )
        self.check_account_step(ctx, "the link")
        self._account_linked(ctx, elzhur_account_id)

    @event("AccountLinked")
    def _account_linked(self, ctx: CommandContext, elzhur_account_id: str) -> None:
        self.elzhur_account_id = elzhur_account_id
        self.account_changed_at = ctx.occurred_at

    def check_account_step(self, ctx: CommandContext, step: str) -> None:
        """A link or unlink is not dated before the profile's previous link or unlink."""
        if self.account_changed_at is not None:
            check_step_order(
                ctx.occurred_at,
                self.account_changed_at,
                step,
                f"the last link or unlink of profile {self.profile_id}",
            )

    def unlink_account(self, ctx: CommandContext, reason: str, is_administrator: bool) -> str:
        """Removes the link (on request, or as containment of an access incident); returns
        the account that was linked."""
        self.check_holder_or_administrator(ctx, is_administrator)
        require_text(reason, "reason")
        if self.elzhur_account_id is None:
            raise NotLinked(f"profile {self.profile_id} is not linked to an ElZhur account")
        account = self.elzhur_account_id
        self.check_account_step(ctx, "the unlink")
        self._account_unlinked(ctx, account, reason)
        return account

    @event("AccountUnlinked")
    def _account_unlinked(self, ctx: CommandContext, elzhur_account_id: str, reason: str) -> None:
        self.elzhur_account_id = None
        self.account_changed_at = ctx.occurred_at

    def mark_left_school(self, ctx: CommandContext) -> None:
        """The school recorded this person's departure (2.3)."""
        self._left_school(ctx)

    @event("LeftSchool")
    def _left_school(self, ctx: CommandContext) -> None:
        self.left_school = True
        self.absences.append(Term(ctx.occurred_at))

    def mark_returned_to_school(self, ctx: CommandContext) -> None:
        """The school admitted this person again after they had left (2.3)."""
        self._returned_to_school(ctx)

    @event("ReturnedToSchool")
    def _returned_to_school(self, ctx: CommandContext) -> None:
        self.left_school = False
        absence = open_term(self.absences)
        if absence is not None:
            absence.end = ctx.occurred_at
