"""Erasure of personal data: the recorded request."""

from __future__ import annotations

from sferum_audit.application import commands as c
from sferum_audit.application.handlers_base import (
    handles,
    school_of,
)
from sferum_audit.application.unit_of_work import UnitOfWork
from sferum_audit.domain.context import CommandContext
from sferum_audit.domain.erasure import Erasure, ErasureParties
from sferum_audit.domain.profile import Profile


@handles("erase-personal-data")
def erase_personal_data(uow: UnitOfWork, cmd: c.ErasePersonalData, ctx: CommandContext) -> None:
    """Records the erasure; ``application.erasure`` destroys the key and the rest once it
    is saved. Reads who the subject and the requester are; the rules are the domain's."""
    school = school_of(uow, cmd)
    uow.check_absent(
        Erasure, Erasure.create_id(cmd.school_id, cmd.erasure_id), "erasure", cmd.erasure_id
    )
    subject_schools = set()
    subject = uow.find(Profile, Profile.create_id(cmd.subject_id))
    if subject is not None:
        subject_schools.add(subject.school_id)
    if cmd.subject_id in school.state.roster:
        subject_schools.add(school.school_id)
    requester = uow.find(Profile, Profile.create_id(cmd.requested_by))
    parties = ErasureParties(
        subject_schools=frozenset(subject_schools),
        requester_is_parent=requester is not None and requester.is_parent_of(cmd.subject_id),
        actor_is_administrator=school.is_administrator(cmd.actor.id, ctx.occurred_at),
    )
    uow.add(
        Erasure.record(
            ctx,
            school_id=cmd.school_id,
            erasure_id=cmd.erasure_id,
            subject_id=cmd.subject_id,
            requested_by=cmd.requested_by,
            basis=cmd.basis,
            parties=parties,
        )
    )
