"""An API token: a district's integration (a SIEM) reads one school's log in one role.

An administrator of the school (2.3) issues the token from the server's CLI and may revoke
it; both are events of the console's log. The token's secret is shown once and only its
SHA-256 is kept outside the log (``web.accounts``); the events hold its id, school, role
and label, never the secret.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from sferum_audit.domain.errors import DomainError

TOKEN_ROLES: Final = frozenset({"administrator", "security-officer"})


class TokenRoleUnknown(DomainError):
    """A token reads as an administrator (audit trail and incidents) or as security staff
    (incidents)."""

    code = "token-role-unknown"


class TokenAlreadyRevoked(DomainError):
    code = "token-already-revoked"


class ApiToken(Aggregate):
    """One API token of one school, in one role."""

    @staticmethod
    def create_id(token_id: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"sferum-audit/api-token/{token_id}")

    @event("Issued")
    def __init__(
        self, *, token_id: str, school_id: str, role: str, label: str, issued_by: str, at: datetime
    ) -> None:
        if role not in TOKEN_ROLES:
            raise TokenRoleUnknown(f"a token's role is one of {', '.join(sorted(TOKEN_ROLES))}")
        self.token_id = token_id
        self.school_id = school_id
        self.role = role
        self.label = label
        self.issued_by = issued_by
        self.revoked = False

    def revoke(self, *, by: str, reason: str, at: datetime) -> None:
        if self.revoked:
            raise TokenAlreadyRevoked(f"the token {self.token_id} is already revoked")
        self._revoked(by=by, reason=reason, at=at)

    @event("Revoked")
    def _revoked(self, *, by: str, reason: str, at: datetime) -> None:
        self.revoked = True
