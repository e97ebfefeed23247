"""Invitation links: issued, redeemed, annulled, expired."""

from __future__ import annotations

from sferum_audit.application import commands as c
from sferum_audit.application.handlers_base import (
    active_profile_in,
    candidate_of,
    chat_of,
    handles,
    invitation_of,
    school_of,
    verified_actor,
)
from sferum_audit.application.unit_of_work import UnitOfWork
from sferum_audit.domain.authority import (
    authorities_over,
)
from sferum_audit.domain.context import CommandContext
from sferum_audit.domain.invitation import Invitation


@handles("issue-invitation")
def issue_invitation(uow: UnitOfWork, cmd: c.IssueInvitation, ctx: CommandContext) -> None:
    school, standing, _ = verified_actor(uow, cmd)
    key = Invitation.create_id(cmd.school_id, cmd.invitation_id)
    uow.check_absent(Invitation, key, "invitation", cmd.invitation_id)
    chat = chat_of(uow, school, cmd.chat_id)
    chat.check_open()

    chat.check_existed_at(ctx.occurred_at)
    granted = authorities_over(chat.control_at(ctx.occurred_at), standing)
    uow.add(
        Invitation.issue(
            ctx,
            granted,
            standing,
            cmd.school_id,
            cmd.invitation_id,
            cmd.chat_id,
            cmd.role,
            cmd.expires_at,
            chat.kind,
        )
    )


@handles("redeem-invitation")
def redeem_invitation(uow: UnitOfWork, cmd: c.RedeemInvitation, ctx: CommandContext) -> None:
    school, _, _ = verified_actor(uow, cmd)
    invitation = invitation_of(uow, cmd, cmd.invitation_id)
    at = ctx.occurred_at
    profile = active_profile_in(uow, school, cmd.actor.id, at)
    chat = chat_of(uow, school, invitation.chat_id)
    invitation.check_redeemable(at)
    is_admin = school.is_administrator(cmd.actor.id, at)
    invitation.check_role_fits(cmd.actor.id, profile.role, is_admin)
    candidate = candidate_of(school, profile, at)
    chat.check_existed_at(at)
    chat.check_can_join(cmd.actor.id)
    chat.check_may_join(candidate)
    chat.check_may_still_join(candidate_of(school, profile, None), profile.active_at())
    invitation.redeem(ctx, cmd.actor.id, profile.role, is_admin)
    chat.join(ctx, candidate, invitation.role, "invitation", cmd.invitation_id)


@handles("annul-invitation")
def annul_invitation(uow: UnitOfWork, cmd: c.AnnulInvitation, ctx: CommandContext) -> None:
    school = school_of(uow, cmd)
    invitation = invitation_of(uow, cmd, cmd.invitation_id)
    invitation.annul(ctx, school.is_administrator(cmd.actor.id, ctx.occurred_at), cmd.reason)


@handles("expire-invitation")
def expire_invitation(uow: UnitOfWork, cmd: c.ExpireInvitation, ctx: CommandContext) -> None:
    school = school_of(uow, cmd)
    invitation = invitation_of(uow, cmd, cmd.invitation_id)
    invitation.expire(ctx, school.is_administrator(cmd.actor.id, ctx.occurred_at))
