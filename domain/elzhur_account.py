"""An ElZhur (e-journal) account, held by at most one education profile at a time."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from eventsourcing.domain import event

from sferum_audit.domain.base import AuditedAggregate, stable_id
from sferum_audit.domain.context import CommandContext, check_step_order
from sferum_audit.domain.errors import DomainError


class AccountHeldByAnotherProfile(DomainError):
    """One ElZhur account belongs to at most one profile at a time."""

    code = "account-held-by-another-profile"


class ElzhurAccount(AuditedAggregate):
    """Guards the uniqueness of account links: saving two claims of one account conflicts."""

    @staticmethod
    def create_id(elzhur_account_id: str) -> UUID:
        return stable_id("elzhur-account", elzhur_account_id)

    @event("FirstClaimed")
    def __init__(self, ctx: CommandContext, elzhur_account_id: str, profile_id: str) -> None:
        self.elzhur_account_id = elzhur_account_id
        self.holder: str | None = profile_id
        self.changed_at: datetime = ctx.occurred_at  # last claim or release

    def claim(self, ctx: CommandContext, profile_id: str) -> None:
        self.check_free_for(profile_id, ctx.occurred_at)
        self._claimed(ctx, profile_id)

    def check_free_for(self, profile_id: str, at: datetime) -> None:
        """Free for the profile at ``at``: held by nobody else, and not claimed at a time
        before its last claim or release (another profile may have held it then)."""
        if self.holder is not None and self.holder != profile_id:
            raise AccountHeldByAnotherProfile(
                f"ElZhur account {self.elzhur_account_id} is linked to profile {self.holder}"
            )
        check_step_order(
            at,
            self.changed_at,
            "the claim",
            f"the last link or unlink of ElZhur account {self.elzhur_account_id}",
        )

    @event("Claimed")
    def _claimed(self, ctx: CommandContext, profile_id: str) -> None:
        self.holder = profile_id
        self.changed_at = ctx.occurred_at

    def release(self, ctx: CommandContext) -> None:
        self._released(ctx)

    @event("Released")
    def _released(self, ctx: CommandContext) -> None:
        self.holder = None
        self.changed_at = ctx.occurred_at
