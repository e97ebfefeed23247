"""Profiles and ElZhur account links (2.3, 2.7, 2.8)."""

from __future__ import annotations

from sferum_audit.application import commands as c
from sferum_audit.application.handlers_base import (
    active_profile_in,
    handles,
    is_admin_at,
    profile_in,
    school_of,
    verified_actor,
)
from sferum_audit.application.unit_of_work import UnitOfWork
from sferum_audit.domain.context import CommandContext
from sferum_audit.domain.elzhur_account import ElzhurAccount
from sferum_audit.domain.errors import ActorNotPermitted
from sferum_audit.domain.profile import Profile

# Who creates their own profile (2.7, 2.8); staff profiles come from an administrator.
SELF_REGISTERED_ROLES = frozenset({"student", "parent"})


@handles("register-profile")
def register_profile(uow: UnitOfWork, cmd: c.RegisterProfile, ctx: CommandContext) -> None:
    school = school_of(uow, cmd)
    uow.check_absent(Profile, Profile.create_id(cmd.profile_id), "profile", cmd.profile_id)
    self_registration = (
        cmd.actor.id == cmd.profile_id
        and cmd.actor.role == cmd.role
        and cmd.role in SELF_REGISTERED_ROLES
    )
    by_administrator = is_admin_at(school, cmd)
    if not (self_registration or by_administrator):
        raise ActorNotPermitted(
            "students and parents register their own profiles (2.7, 2.8); teachers' and "
            "security officers' profiles are registered by a platform administrator (2.3)"
        )
    uow.add(
        Profile.register(
            ctx, cmd.profile_id, cmd.school_id, cmd.role, cmd.display_name, list(cmd.children)
        )
    )


@handles("link-account")
def link_account(uow: UnitOfWork, cmd: c.LinkAccount, ctx: CommandContext) -> None:
    school, _, _ = verified_actor(uow, cmd)
    profile = active_profile_in(uow, school, cmd.profile_id, ctx.occurred_at)
    account = uow.find(ElzhurAccount, ElzhurAccount.create_id(cmd.elzhur_account_id))
    if account is not None:
        account.check_free_for(cmd.profile_id, ctx.occurred_at)
    profile.link_account(ctx, cmd.elzhur_account_id, is_admin_at(school, cmd))
    if account is None:
        uow.add(
            ElzhurAccount(
                ctx=ctx, elzhur_account_id=cmd.elzhur_account_id, profile_id=cmd.profile_id
            )
        )
    else:
        account.claim(ctx, cmd.profile_id)


@handles("unlink-account")
def unlink_account(uow: UnitOfWork, cmd: c.UnlinkAccount, ctx: CommandContext) -> None:
    school, _, _ = verified_actor(uow, cmd)
    profile = profile_in(uow, school, cmd.profile_id)
    is_admin = is_admin_at(school, cmd)
    profile.check_holder_or_administrator(ctx, is_admin)
    account_id = profile.elzhur_account_id
    account = uow.find(ElzhurAccount, ElzhurAccount.create_id(account_id)) if account_id else None
    profile.unlink_account(ctx, cmd.reason, is_admin)
    if account is not None:
        account.release(ctx)
