"""Command sources: the keys that vouch for a school's commands."""

from __future__ import annotations

from sferum_audit.application import commands as c
from sferum_audit.application.handlers_base import (
    handles,
    school_of,
)
from sferum_audit.application.unit_of_work import UnitOfWork
from sferum_audit.domain.context import CommandContext
from sferum_audit.domain.school import School
from sferum_audit.domain.source import Source


def source_of(uow: UnitOfWork, cmd: c.RotateSource | c.RevokeSource) -> Source:
    source = uow.get(Source, Source.create_id(cmd.source_id), "source", cmd.source_id)
    source.check_school(cmd.school_id)
    return source


@handles("register-source")
def register_source(uow: UnitOfWork, cmd: c.RegisterSource, ctx: CommandContext) -> None:
    """A school not registered yet may have its first source provisioned ahead (by the
    school administration; only the operator's key can vouch for that, since no source of
    the school exists)."""
    school = uow.find(School, School.create_id(cmd.school_id))
    uow.check_absent(Source, Source.create_id(cmd.source_id), "source", cmd.source_id)
    uow.add(
        Source.register(
            ctx,
            school_id=cmd.school_id,
            source_id=cmd.source_id,
            kind=cmd.kind,
            person_id=cmd.person_id,
            public_key=cmd.public_key,
            registrar_is_administrator=school is not None and school.is_administrator(cmd.actor.id),
        )
    )


@handles("rotate-source")
def rotate_source(uow: UnitOfWork, cmd: c.RotateSource, ctx: CommandContext) -> None:
    school = school_of(uow, cmd)
    source_of(uow, cmd).rotate(ctx, cmd.public_key, school.is_administrator(cmd.actor.id))


@handles("revoke-source")
def revoke_source(uow: UnitOfWork, cmd: c.RevokeSource, ctx: CommandContext) -> None:
    school = school_of(uow, cmd)
    source_of(uow, cmd).revoke(ctx, cmd.reason, school.is_administrator(cmd.actor.id))
