"""The incident register: every report of unauthorised access (4.2.2) with its state,
reporter, affected account, whom they told and when, and each containment step.

Times to acknowledge and to resolve, and whether an incident is overdue, are computed when
the register is read (they depend on "now" for open incidents). The provenance of the
affected account (its link history and the invitations it redeemed, with their issuers) is
attached from the current-state and invitations views when the register is read.
"""

from __future__ import annotations

from typing import Any, Final

from sferum_audit.domain.access_incident import (
    ACKNOWLEDGED,
    CONTAINED,
    DISMISSED,
    REPORTED,
    RESOLVED,
    AccessIncident,
)
from sferum_audit.domain.erasure import Erasure
from sferum_audit.projections.buffer import AppendBuffer, TableBuffer
from sferum_audit.projections.tables import INCIDENTS
from sferum_audit.projections.view import ERASED_TEXT, Handler, View, iso, topic

TOLD_COLUMN: Final = {
    "school-administrator": "told_school_administrator_at",
    "platform-operator": "told_platform_operator_at",
}


class IncidentsView(View):
    """One row per access incident and one per containment step."""

    name = INCIDENTS
    append_only = frozenset({"incident_steps"})

    incidents: TableBuffer
    incident_steps: AppendBuffer

    def routes(self) -> dict[str, Handler]:
        return {
            topic(AccessIncident, "Reported"): self.reported,
            topic(AccessIncident, "PartyNotified"): self.party_notified,
            topic(AccessIncident, "Acknowledged"): self.acknowledged,
            topic(AccessIncident, "ContainmentStepTaken"): self.containment_step,
            topic(AccessIncident, "Resolved"): self.resolved,
            topic(AccessIncident, "Dismissed"): self.dismissed,
            topic(Erasure, "Recorded"): self.erased,
        }

    def reported(self, e: Any, position: int) -> None:
        incident = e.originator_id.hex
        told = {party: iso(at) for party, at in e.told.items()}
        self.incidents.insert(
            incident,
            {
                "incident_uuid": incident,
                "school_id": e.school_id,
                "incident_id": e.incident_id,
                "state": REPORTED,
                "reporter_id": e.ctx.actor_id,
                "reporter_role": e.ctx.actor_role,
                "reporter_relation": e.reporter_relation,
                "affected_profile_id": e.affected_profile_id,
                "elzhur_account_id": e.elzhur_account_id,
                "noticed_at": iso(e.noticed_at),
                "how_noticed": e.how_noticed,
                "description": e.description,
                "reported_at": iso(e.ctx.occurred_at),
                "recorded_at": iso(e.timestamp),
                "told_school_administrator_at": told.get("school-administrator"),
                "told_platform_operator_at": told.get("platform-operator"),
                "acknowledged_at": None,
                "acknowledged_by": None,
                "closed_at": None,
                "closed_by": None,
                "findings": None,
                "position": position,
                "last_position": position,
            },
        )

    def party_notified(self, e: Any, position: int) -> None:
        self.incidents.update(
            e.originator_id.hex, {TOLD_COLUMN[e.party]: iso(e.told_at), "last_position": position}
        )

    def acknowledged(self, e: Any, position: int) -> None:
        self.incidents.update(
            e.originator_id.hex,
            {
                "state": ACKNOWLEDGED,
                "acknowledged_at": iso(e.ctx.occurred_at),
                "acknowledged_by": e.ctx.actor_id,
                "last_position": position,
            },
        )

    def containment_step(self, e: Any, position: int) -> None:
        incident = e.originator_id.hex
        self.incidents.update(incident, {"state": CONTAINED, "last_position": position})
        self.incident_steps.rows.append(
            (
                position,
                incident,
                e.step,
                e.note,
                e.ctx.actor_id,
                e.ctx.actor_role,
                iso(e.ctx.occurred_at),
            )
        )

    def _closed(self, e: Any, position: int, state: str) -> None:
        self.incidents.update(
            e.originator_id.hex,
            {
                "state": state,
                "closed_at": iso(e.ctx.occurred_at),
                "closed_by": e.ctx.actor_id,
                "findings": e.findings,
                "last_position": position,
            },
        )

    def resolved(self, e: Any, position: int) -> None:
        self._closed(e, position, RESOLVED)

    def dismissed(self, e: Any, position: int) -> None:
        self._closed(e, position, DISMISSED)

    def erased(self, e: Any, position: int) -> None:
        """Free text about the erased person reads as erased, as it will in a rebuild."""
        self.raw(
            "UPDATE {incident_steps} SET note=CASE WHEN note IS NULL THEN NULL ELSE {ph} END "
            "WHERE incident_uuid IN (SELECT incident_uuid FROM {incidents} "
            "WHERE affected_profile_id={ph})",
            ERASED_TEXT,
            e.subject_id,
        )
        self.raw(
            "UPDATE {incidents} SET "
            "how_noticed=CASE WHEN how_noticed IS NULL THEN NULL ELSE {ph} END, "
            "description=CASE WHEN description IS NULL THEN NULL ELSE {ph} END, "
            "findings=CASE WHEN findings IS NULL THEN NULL ELSE {ph} END "
            "WHERE affected_profile_id={ph}",
            ERASED_TEXT,
            ERASED_TEXT,
            ERASED_TEXT,
            e.subject_id,
        )
