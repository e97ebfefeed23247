"""Invitations: every link with its chat, role, issuer, status and when the status changed.

The age of a link and whether it is stale (unused for N days, which 2.3 says an
administrator should annul) depend on "now", so they are computed when the view is read.
"""

from __future__ import annotations

from typing import Any

from sferum_audit.domain.invitation import ANNULLED, EXPIRED, ISSUED, REDEEMED, Invitation
from sferum_audit.projections.buffer import TableBuffer
from sferum_audit.projections.tables import INVITATIONS
from sferum_audit.projections.view import Handler, View, iso, topic


class InvitationsView(View):
    """One row per invitation link, updated as it is redeemed, annulled or expires."""

    name = INVITATIONS

    inv_invitations: TableBuffer

    def routes(self) -> dict[str, Handler]:
        return {
            topic(Invitation, "Issued"): self.issued,
            topic(Invitation, "Redeemed"): self.redeemed,
            topic(Invitation, "Annulled"): self.annulled,
            topic(Invitation, "Expired"): self.expired,
        }

    def issued(self, e: Any, position: int) -> None:
        invitation = e.originator_id.hex
        at = iso(e.ctx.occurred_at)
        self.inv_invitations.insert(
            invitation,
            {
                "invitation_uuid": invitation,
                "school_id": e.school_id,
                "invitation_id": e.invitation_id,
                "chat_id": e.chat_id,
                "role": e.role,
                "issuer_id": e.ctx.actor_id,
                "issuer_role": e.ctx.actor_role,
                "issued_at": at,
                "recorded_at": iso(e.timestamp),
                "expires_at": iso(e.expires_at),
                "status": ISSUED,
                "status_at": at,
                "status_by": e.ctx.actor_id,
                "redeemed_by": None,
                "annul_reason": None,
                "position": position,
                "last_position": position,
            },
        )

    def _status(self, e: Any, position: int, status: str, **more: Any) -> None:
        self.inv_invitations.update(
            e.originator_id.hex,
            {
                "status": status,
                "status_at": iso(e.ctx.occurred_at),
                "status_by": e.ctx.actor_id,
                "last_position": position,
                **more,
            },
        )

    def redeemed(self, e: Any, position: int) -> None:
        self._status(e, position, REDEEMED, redeemed_by=e.profile_id)

    def annulled(self, e: Any, position: int) -> None:
        self._status(e, position, ANNULLED, annul_reason=e.reason)

    def expired(self, e: Any, position: int) -> None:
        self._status(e, position, EXPIRED)
