"""A report of unauthorised access to an account (4.2.2), and its handling by security staff.

States move only forward: reported -> acknowledged -> contained -> resolved | dismissed
(containment may be skipped; dismissal needs acknowledgement too), and so do their times:
no step is dated before the step it follows, access is noticed before anyone is told, and
nobody is told later than the act that records it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Self
from uuid import UUID

from eventsourcing.domain import event

from sferum_audit.domain.base import AuditedAggregate, stable_id
from sferum_audit.domain.context import CommandContext, check_step_order
from sferum_audit.domain.errors import ActorNotPermitted, DomainError, InvalidValue
from sferum_audit.domain.regulation import (
    CONTAINMENT_STEPS,
    NOTIFIED_PARTIES,
    require_one_of,
    require_text,
)

REPORTED = "reported"
ACKNOWLEDGED = "acknowledged"
CONTAINED = "contained"
RESOLVED = "resolved"
DISMISSED = "dismissed"
STATE_ORDER = (REPORTED, ACKNOWLEDGED, CONTAINED, RESOLVED, DISMISSED)
CLOSED = frozenset({RESOLVED, DISMISSED})


class IncidentStateError(DomainError):
    """The incident's states follow their order and never go back."""

    code = "incident-state-order"


class NotAccountHolderOrParent(ActorNotPermitted):
    """Unauthorised access is reported by the account holder or, for a child, a parent."""

    code = "not-account-holder-or-parent"


class NotSecurityStaff(ActorNotPermitted):
    code = "not-security-staff"


class AccessIncident(AuditedAggregate):
    """One report of unauthorised access and what security staff did about it."""

    @staticmethod
    def create_id(school_id: str, incident_id: str) -> UUID:
        return stable_id("access-incident", school_id, incident_id)

    @classmethod
    def report(
        cls,
        ctx: CommandContext,
        school_id: str,
        incident_id: str,
        affected_profile_id: str,
        reporter_is_parent_of_affected: bool,
        elzhur_account_id: str | None,
        noticed_at: datetime,
        how_noticed: str,
        description: str,
        told: dict[str, datetime],
    ) -> Self:
        require_text(incident_id, "incident id", 100)
        if ctx.actor_id == affected_profile_id:
            relation = "holder"
        elif reporter_is_parent_of_affected and ctx.actor_role == "parent":
            relation = "parent"
        else:
            raise NotAccountHolderOrParent(
                f"{ctx.actor_id} may not report access to {affected_profile_id}'s account: "
                "the holder reports it, or a parent for their child (4.2.2)"
            )
        if noticed_at.tzinfo is None:
            raise InvalidValue("noticed_at must be timezone-aware")
        if noticed_at > ctx.occurred_at:
            raise InvalidValue("access cannot be noticed after it is reported")
        require_text(how_noticed, "how it was noticed")
        require_text(description, "description", 4000)
        for party, at in told.items():
            require_one_of(party, NOTIFIED_PARTIES, "notified party")
            if at.tzinfo is None:
                raise InvalidValue(f"the time {party} was told must be timezone-aware")
            cls.check_told_in_order(ctx, party, at, noticed_at)
        return cls(
            ctx=ctx,
            school_id=school_id,
            incident_id=incident_id,
            affected_profile_id=affected_profile_id,
            reporter_relation=relation,
            elzhur_account_id=elzhur_account_id,
            noticed_at=noticed_at,
            how_noticed=how_noticed,
            description=description,
            told=dict(told),
        )

    @event("Reported")
    def __init__(
        self,
        ctx: CommandContext,
        school_id: str,
        incident_id: str,
        affected_profile_id: str,
        reporter_relation: str,
        elzhur_account_id: str | None,
        noticed_at: datetime,
        how_noticed: str,
        description: str,
        told: dict[str, datetime],
    ) -> None:
        self.school_id = school_id
        self.incident_id = incident_id
        self.affected_profile_id = affected_profile_id
        self.reporter_id = ctx.actor_id
        self.state = REPORTED
        self.told = dict(told)
        self.containment_steps: list[str] = []
        self.noticed_at = noticed_at
        self.reported_at = ctx.occurred_at
        self.last_step_at = ctx.occurred_at  # when the state last moved

    # -- guards ----------------------------------------------------------------------------

    @staticmethod
    def check_told_in_order(
        ctx: CommandContext, party: str, told_at: datetime, noticed_at: datetime
    ) -> None:
        """Someone is told after the access was noticed and no later than the act that
        records it."""
        if told_at < noticed_at:
            raise IncidentStateError(
                f"{party} cannot have been told ({told_at.isoformat()}) before the access was "
                f"noticed ({noticed_at.isoformat()})"
            )
        if told_at > ctx.occurred_at:
            raise IncidentStateError(
                f"{party} is recorded as told at {told_at.isoformat()}, after the act that "
                f"records it ({ctx.occurred_at.isoformat()})"
            )

    def check_step_after_last(self, ctx: CommandContext, step: str) -> None:
        """A step is dated no earlier than the step it follows."""
        check_step_order(ctx.occurred_at, self.last_step_at, step, f"the incident was {self.state}")

    def check_security_staff(self, ctx: CommandContext, is_security_staff: bool) -> None:
        if not is_security_staff:
            raise NotSecurityStaff(
                f"{ctx.actor_id} is not security staff: incidents are handled by security "
                "officers and platform administrators (2.3)"
            )

    def check_state(self, allowed: set[str], action: str) -> None:
        if self.state not in allowed:
            raise IncidentStateError(
                f"incident {self.incident_id} is {self.state}; it cannot be {action}"
            )

    # -- commands --------------------------------------------------------------------------

    def record_notification(self, ctx: CommandContext, party: str, told_at: datetime) -> None:
        """The reporter told the administrator or the operator (info@sferum.ru) later on."""
        if ctx.actor_id != self.reporter_id:
            raise NotAccountHolderOrParent("only the reporter records whom they told")
        require_one_of(party, NOTIFIED_PARTIES, "notified party")
        if party in self.told:
            raise IncidentStateError(f"{party} was already recorded as told")
        if told_at.tzinfo is None:
            raise InvalidValue("told_at must be timezone-aware")
        check_step_order(ctx.occurred_at, self.reported_at, "the notification", "the report")
        self.check_told_in_order(ctx, party, told_at, self.noticed_at)
        self._notified(ctx, party, told_at)

    @event("PartyNotified")
    def _notified(self, ctx: CommandContext, party: str, told_at: datetime) -> None:
        self.told[party] = told_at

    def acknowledge(self, ctx: CommandContext, is_security_staff: bool) -> None:
        self.check_security_staff(ctx, is_security_staff)
        self.check_state({REPORTED}, "acknowledged")
        self.check_step_after_last(ctx, "the acknowledgement")
        self._acknowledged(ctx)

    @event("Acknowledged")
    def _acknowledged(self, ctx: CommandContext) -> None:
        self.state = ACKNOWLEDGED
        self.last_step_at = ctx.occurred_at

    def take_containment_step(
        self, ctx: CommandContext, is_security_staff: bool, step: str, note: str
    ) -> None:
        self.check_security_staff(ctx, is_security_staff)
        self.check_state({ACKNOWLEDGED, CONTAINED}, "contained")
        require_one_of(step, CONTAINMENT_STEPS, "containment step")
        require_text(note, "note")
        self.check_step_after_last(ctx, "the containment step")
        self._containment_step_taken(ctx, self.affected_profile_id, step, note)

    @event("ContainmentStepTaken")
    def _containment_step_taken(
        self, ctx: CommandContext, affected_profile_id: str, step: str, note: str
    ) -> None:
        self.state = CONTAINED
        self.containment_steps.append(step)
        self.last_step_at = ctx.occurred_at

    def resolve(self, ctx: CommandContext, is_security_staff: bool, findings: str) -> None:
        self.check_security_staff(ctx, is_security_staff)
        self.check_state({ACKNOWLEDGED, CONTAINED}, "resolved")
        require_text(findings, "findings", 4000)
        self.check_step_after_last(ctx, "the resolution")
        self._resolved(ctx, self.affected_profile_id, findings)

    @event("Resolved")
    def _resolved(self, ctx: CommandContext, affected_profile_id: str, findings: str) -> None:
        self.state = RESOLVED
        self.last_step_at = ctx.occurred_at

    def dismiss(self, ctx: CommandContext, is_security_staff: bool, findings: str) -> None:
        self.check_security_staff(ctx, is_security_staff)
        self.check_state({ACKNOWLEDGED, CONTAINED}, "dismissed")
        require_text(findings, "findings", 4000)
        self.check_step_after_last(ctx, "the dismissal")
        self._dismissed(ctx, self.affected_profile_id, findings)

    @event("Dismissed")
    def _dismissed(self, ctx: CommandContext, affected_profile_id: str, findings: str) -> None:
        self.state = DISMISSED
        self.last_step_at = ctx.occurred_at
