"""A web console account: a person's sign-in to the console, bound to their profile at a school.

An administrator creates the account from the server's CLI; the person then signs in and
acts as themselves (the console vouches for them as a command source). The account's
history is the console's own audit record: who could sign in, when they did, when a sign-in
failed and why, when they signed out, and when the account was disabled.

No password, hash or session token is ever part of an event: the credential lives in the
console's credential table (``web.accounts``), which erasure can drop without rewriting the
log.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from sferum_audit.domain.errors import DomainError

LOGIN_MAX_LENGTH: Final = 100
FAILURE_REASONS: Final = frozenset({"wrong-password", "throttled", "account-disabled"})


class AccountDisabled(DomainError):
    """A disabled account signs in no more."""

    code = "account-disabled"


class InvalidLogin(DomainError):
    """A login is 1-100 printable characters without spaces."""

    code = "invalid-login"


def check_login(login: str) -> str:
    if not 0 < len(login) <= LOGIN_MAX_LENGTH or not login.isprintable() or " " in login:
        raise InvalidLogin(f"a login is 1-{LOGIN_MAX_LENGTH} printable characters without spaces")
    return login


class ConsoleAccount(Aggregate):
    """One login of the web console."""

    @staticmethod
    def create_id(login: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"sferum-audit/console-account/{login}")

    @event("Created")
    def __init__(
        self, *, login: str, school_id: str, person_id: str, created_by: str, at: datetime
    ) -> None:
        self.login = check_login(login)
        self.school_id = school_id
        self.person_id = person_id
        self.created_by = created_by
        self.created_at = at
        self.disabled = False
        self.signed_in_at: datetime | None = None

    def check_may_sign_in(self) -> None:
        if self.disabled:
            raise AccountDisabled(f"the console account {self.login} is disabled")

    @event("Disabled")
    def disable(self, *, by: str, reason: str, at: datetime) -> None:
        self.disabled = True

    @event("SignedIn")
    def signed_in(self, *, at: datetime, client: str, method: str = "password") -> None:
        self.signed_in_at = at

    @event("SignInFailed")
    def sign_in_failed(self, *, at: datetime, client: str, reason: str) -> None:
        pass

    @event("SignedOut")
    def signed_out(self, *, at: datetime) -> None:
        pass
