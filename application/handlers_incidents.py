"""Unauthorised access to an account (4.2.2): report, notify, contain, close."""

from __future__ import annotations

from sferum_audit.application import commands as c
from sferum_audit.application.handlers_base import (
    handles,
    incident_of,
    profile_in,
    school_of,
    standing_of,
    verified_actor,
)
from sferum_audit.application.unit_of_work import UnitOfWork
from sferum_audit.domain.access_incident import AccessIncident
from sferum_audit.domain.authority import (
    ActorStanding,
)
from sferum_audit.domain.context import CommandContext
from sferum_audit.domain.profile import Profile


def is_security_staff(standing: ActorStanding, actor_role: str) -> bool:
    return actor_role == "security-officer" or (
        actor_role == "administrator" and standing.is_administrator
    )


@handles("report-unauthorised-access")
def report_unauthorised_access(
    uow: UnitOfWork, cmd: c.ReportUnauthorisedAccess, ctx: CommandContext
) -> None:
    school, _, _ = verified_actor(uow, cmd)
    key = AccessIncident.create_id(cmd.school_id, cmd.incident_id)
    uow.check_absent(AccessIncident, key, "access incident", cmd.incident_id)
    profile_in(uow, school, cmd.affected_profile_id)
    reporter = uow.find(Profile, Profile.create_id(cmd.actor.id))
    is_parent = reporter is not None and reporter.is_parent_of(cmd.affected_profile_id)
    uow.add(
        AccessIncident.report(
            ctx,
            cmd.school_id,
            cmd.incident_id,
            cmd.affected_profile_id,
            is_parent,
            cmd.elzhur_account_id,
            cmd.noticed_at,
            cmd.how_noticed,
            cmd.description,
            {str(party): at for party, at in cmd.told.items()},
        )
    )


@handles("record-notification")
def record_notification(uow: UnitOfWork, cmd: c.RecordNotification, ctx: CommandContext) -> None:
    verified_actor(uow, cmd)
    incident_of(uow, cmd, cmd.incident_id).record_notification(ctx, cmd.party, cmd.told_at)


def security_actor(uow: UnitOfWork, cmd: c.CommandBase) -> bool:
    school = school_of(uow, cmd)
    standing, profile = standing_of(uow, school, cmd.actor.id, cmd.occurred_at)
    if cmd.actor.role == "security-officer":
        return (
            profile is not None
            and profile.role == "security-officer"
            and profile.active_at(cmd.occurred_at)
        )
    return is_security_staff(standing, cmd.actor.role)


@handles("acknowledge-incident")
def acknowledge_incident(uow: UnitOfWork, cmd: c.AcknowledgeIncident, ctx: CommandContext) -> None:
    incident_of(uow, cmd, cmd.incident_id).acknowledge(ctx, security_actor(uow, cmd))


@handles("take-containment-step")
def take_containment_step(uow: UnitOfWork, cmd: c.TakeContainmentStep, ctx: CommandContext) -> None:
    incident = incident_of(uow, cmd, cmd.incident_id)
    incident.take_containment_step(ctx, security_actor(uow, cmd), cmd.step, cmd.note)


@handles("resolve-incident")
def resolve_incident(uow: UnitOfWork, cmd: c.ResolveIncident, ctx: CommandContext) -> None:
    incident_of(uow, cmd, cmd.incident_id).resolve(ctx, security_actor(uow, cmd), cmd.findings)


@handles("dismiss-incident")
def dismiss_incident(uow: UnitOfWork, cmd: c.DismissIncident, ctx: CommandContext) -> None:
    incident_of(uow, cmd, cmd.incident_id).dismiss(ctx, security_actor(uow, cmd), cmd.findings)
