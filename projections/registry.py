"""The views there are, by name: four kept from the log, and statistics derived from them."""

from __future__ import annotations

from typing import Final

from sferum_audit.projections.audit_trail import AuditTrailView
from sferum_audit.projections.current_state import CurrentStateView
from sferum_audit.projections.incidents import IncidentsView
from sferum_audit.projections.invitations import InvitationsView
from sferum_audit.projections.tables import AUDIT_TRAIL, CURRENT_STATE, INCIDENTS, INVITATIONS
from sferum_audit.projections.view import View

STATISTICS: Final = "statistics"

VIEW_CLASSES: Final[dict[str, type[View]]] = {
    CURRENT_STATE: CurrentStateView,
    INVITATIONS: InvitationsView,
    AUDIT_TRAIL: AuditTrailView,
    INCIDENTS: IncidentsView,
}
VIEW_NAMES: Final = tuple(VIEW_CLASSES)
# Statistics are aggregated from these views when read, so they never drift from them.
DERIVED_FROM: Final[dict[str, tuple[str, ...]]] = {STATISTICS: VIEW_NAMES}
ALL_NAMES: Final = (*VIEW_NAMES, STATISTICS)


def resolve_names(names: list[str] | tuple[str, ...] | None) -> list[str]:
    """The stored views behind ``names`` (all when empty); statistics means its sources."""
    if not names:
        return list(VIEW_NAMES)
    wanted: list[str] = []
    for name in names:
        normalised = name.replace("-", "_")
        if normalised in DERIVED_FROM:
            sources = DERIVED_FROM[normalised]
        elif normalised in VIEW_CLASSES:
            sources = (normalised,)
        else:
            raise ValueError(f"unknown view {name!r}; expected one of: {', '.join(ALL_NAMES)}")
        wanted.extend(s for s in sources if s not in wanted)
    return [name for name in VIEW_NAMES if name in wanted]
