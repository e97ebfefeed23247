"""Console accounts, sign-in and sessions.

Two stores, on purpose:

- the account's history (created, disabled, signed in, sign-in failed, signed out) is a
  ``ConsoleAccount`` aggregate in the console's own event log (``ConsoleLog``: on SQLite
  ``web-console-events.sqlite`` in the data folder, on PostgreSQL the table
  ``sferumwebconsole_events`` beside the audit log's), so who could sign in and when is
  audited like everything else;
- the secrets (the argon2 hash of the password, the hashes of session tokens, recent
  failures for throttling) live in a plain table (``web-console.sqlite``, or the event
  store's PostgreSQL database and schema) and never in an event.

A session token is 32 random bytes sent in the cookie; only its SHA-256 is stored, so a
copy of the table signs nobody in. Each session has its own CSRF token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from uuid import UUID

import sqlalchemy as sa
import structlog
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from eventsourcing.application import Application

from sferum_audit.application.settings import Settings
from sferum_audit.application.store import (
    keep_private,
    persistence_environment,
    private_sqlite_file,
)
from sferum_audit.domain.api_token import ApiToken
from sferum_audit.domain.console_account import ConsoleAccount, check_login
from sferum_audit.domain.errors import DomainError
from sferum_audit.web.settings import WebSettings

log = structlog.get_logger(__name__)

CONSOLE_LOG_NAME: Final = "SferumWebConsole"
MIN_PASSWORD_LENGTH: Final = 12
_METADATA = sa.MetaData()
ACCOUNTS = sa.Table(
    "web_accounts",
    _METADATA,
    sa.Column("login", sa.Text(), primary_key=True),
    sa.Column("school_id", sa.Text(), nullable=False),
    sa.Column("person_id", sa.Text(), nullable=False),
    sa.Column("password_hash", sa.Text(), nullable=False),
    sa.Column("disabled", sa.Integer(), nullable=False, default=0),
)
SESSIONS = sa.Table(
    "web_sessions",
    _METADATA,
    sa.Column("token_hash", sa.Text(), primary_key=True),
    sa.Column("login", sa.Text(), nullable=False, index=True),
    sa.Column("csrf", sa.Text(), nullable=False),
    sa.Column("expires_at", sa.Text(), nullable=False),
)
TOKENS = sa.Table(
    "web_api_tokens",
    _METADATA,
    sa.Column("token_id", sa.Text(), primary_key=True),
    sa.Column("secret_hash", sa.Text(), nullable=False, unique=True),
    sa.Column("school_id", sa.Text(), nullable=False),
    sa.Column("role", sa.Text(), nullable=False),
    sa.Column("label", sa.Text(), nullable=False),
    sa.Column("revoked", sa.Integer(), nullable=False, default=0),
)
FAILURES = sa.Table(
    "web_sign_in_failures",
    _METADATA,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("login", sa.Text(), nullable=False, index=True),
    sa.Column("client", sa.Text(), nullable=False, index=True),
    sa.Column("at", sa.Text(), nullable=False),
)
# One address may fail this many times the per-login limit (a school's shared NAT) before
# it is throttled for every login: guessing one password across many logins is slowed too.
CLIENT_FACTOR: Final = 4


class AccountExists(DomainError):
    code = "account-exists"


class UnknownAccount(DomainError):
    code = "account-unknown"


class WeakPassword(DomainError):
    code = "weak-password"


class SignInRefused(DomainError):
    """Wrong login or password, a disabled account, or too many recent failures; the message
    does not say which of the first two, so logins cannot be probed."""

    code = "sign-in-refused"

    def __init__(self, message: str, *, throttled: bool = False) -> None:
        super().__init__(message)
        self.throttled = throttled


class ConsoleLog(Application[UUID]):
    """The console's own event log: the history of its accounts."""

    name = CONSOLE_LOG_NAME


@dataclass(frozen=True, slots=True)
class Account:
    login: str
    school_id: str
    person_id: str
    disabled: bool


@dataclass(frozen=True, slots=True)
class Token:
    token_id: str
    school_id: str
    role: str
    label: str
    revoked: bool


@dataclass(frozen=True, slots=True)
class Session:
    account: Account
    csrf: str
    token_hash: str


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def console_log_environment(settings: Settings) -> dict[str, str]:
    env = persistence_environment(settings)  # also keeps the data folder private
    if not settings.database_url:
        path = settings.data_dir / "web-console-events.sqlite"
        private_sqlite_file(path)
        env["SQLITE_DBNAME"] = str(path)
    env.pop("APPLICATION_RECORDER_TOPIC", None)
    return env


def credentials_engine(settings: Settings) -> sa.Engine:
    if settings.database_url:
        url = settings.database_url.replace("postgresql://", "postgresql+psycopg://", 1)
        url = url.replace("postgres://", "postgresql+psycopg://", 1)
        engine = sa.create_engine(url, pool_pre_ping=True)
        if settings.database_schema:
            engine = engine.execution_options(schema_translate_map={None: settings.database_schema})
        return engine
    keep_private(settings.data_dir)
    path = settings.data_dir / "web-console.sqlite"
    private_sqlite_file(path)  # password hashes and session hashes: 0600, like the store
    return sa.create_engine(f"sqlite:///{path}")


class Accounts:
    """Creates and disables accounts, signs people in and out, finds their sessions."""

    def __init__(self, settings: Settings, web: WebSettings | None = None) -> None:
        self.web = web or WebSettings()
        self.log = ConsoleLog(env=console_log_environment(settings))
        self.engine = credentials_engine(settings)
        _METADATA.create_all(self.engine)
        self.hasher = PasswordHasher()
        # Verified against when the login is unknown, so both answers take as long.
        self._decoy = self.hasher.hash(secrets.token_urlsafe(16))

    def close(self) -> None:
        self.engine.dispose()
        self.log.close()

    @contextmanager
    def _tx(self) -> Iterator[sa.Connection]:
        with self.engine.begin() as conn:
            yield conn

    # -- administration ------------------------------------------------------------------

    def create(
        self,
        *,
        login: str,
        school_id: str,
        person_id: str,
        password: str,
        created_by: str,
        now: datetime | None = None,
    ) -> Account:
        check_login(login)
        if len(password) < MIN_PASSWORD_LENGTH:
            raise WeakPassword(f"a password has at least {MIN_PASSWORD_LENGTH} characters")
        if self.find(login) is not None:
            raise AccountExists(f"the console account {login} exists")
        account = ConsoleAccount(
            login=login,
            school_id=school_id,
            person_id=person_id,
            created_by=created_by,
            at=now or datetime.now(UTC),
        )
        with self._tx() as conn:
            conn.execute(
                ACCOUNTS.insert().values(
                    login=login,
                    school_id=school_id,
                    person_id=person_id,
                    password_hash=self.hasher.hash(password),
                    disabled=0,
                )
            )
        self.log.save(account)
        return Account(login, school_id, person_id, disabled=False)

    def disable(self, login: str, *, by: str, reason: str, now: datetime | None = None) -> None:
        if self.find(login) is None:
            raise UnknownAccount(f"no console account {login}")
        aggregate = self._aggregate(login)
        aggregate.disable(by=by, reason=reason, at=now or datetime.now(UTC))
        with self._tx() as conn:
            conn.execute(ACCOUNTS.update().where(ACCOUNTS.c.login == login).values(disabled=1))
            conn.execute(SESSIONS.delete().where(SESSIONS.c.login == login))
        self.log.save(aggregate)

    def find(self, login: str) -> Account | None:
        with self._tx() as conn:
            row = conn.execute(sa.select(ACCOUNTS).where(ACCOUNTS.c.login == login)).first()
        if row is None:
            return None
        return Account(row.login, row.school_id, row.person_id, bool(row.disabled))

    def listing(self, school_id: str | None = None) -> list[Account]:
        statement = sa.select(ACCOUNTS).order_by(ACCOUNTS.c.login)
        if school_id is not None:
            statement = statement.where(ACCOUNTS.c.school_id == school_id)
        with self._tx() as conn:
            rows = conn.execute(statement).all()
        return [Account(r.login, r.school_id, r.person_id, bool(r.disabled)) for r in rows]

    def history(self, login: str) -> list[dict[str, Any]]:
        """The account's events, for an auditor: type and fields, no secrets (there are none)."""
        return self._events(ConsoleAccount.create_id(login))

    def token_history(self, token_id: str) -> list[dict[str, Any]]:
        return self._events(ApiToken.create_id(token_id))

    def _events(self, aggregate_id: UUID) -> list[dict[str, Any]]:
        out = []
        for stored in self.log.repository.event_store.get(aggregate_id):
            fields = {
                k: v
                for k, v in stored.__dict__.items()
                if k not in {"originator_id", "originator_version"}
            }
            out.append({"event": type(stored).__qualname__, **fields})
        return out

    def _aggregate(self, login: str) -> ConsoleAccount:
        aggregate: ConsoleAccount = self.log.repository.get(ConsoleAccount.create_id(login))
        return aggregate

    # -- signing in and out ----------------------------------------------------------------

    def sign_in(
        self, login: str, password: str, *, client: str, now: datetime | None = None
    ) -> tuple[str, Session]:
        """A new session (its token for the cookie, and the session), or ``SignInRefused``."""
        now = now or datetime.now(UTC)
        refused = SignInRefused("неверное имя пользователя или пароль")
        with self._tx() as conn:
            row = conn.execute(sa.select(ACCOUNTS).where(ACCOUNTS.c.login == login)).first()
            since = _iso(now - timedelta(seconds=self.web.sign_in_window_seconds))
            failures = conn.execute(
                sa.select(sa.func.count())
                .select_from(FAILURES)
                .where(FAILURES.c.login == login, FAILURES.c.at >= since)
            ).scalar_one()
            from_client = conn.execute(
                sa.select(sa.func.count())
                .select_from(FAILURES)
                .where(FAILURES.c.client == client, FAILURES.c.at >= since)
            ).scalar_one()
        limit = self.web.sign_in_attempts
        if failures >= limit or from_client >= limit * CLIENT_FACTOR:
            self._failed(login, row is not None, client, now, "throttled")
            raise SignInRefused(
                "слишком много неудачных попыток входа; попробуйте позже", throttled=True
            )
        if row is None:
            self._verify(self._decoy, password)
            self._failed(login, False, client, now, "wrong-password")
            raise refused
        if not self._verify(row.password_hash, password):
            self._failed(login, True, client, now, "wrong-password")
            raise refused
        if row.disabled:
            self._failed(login, True, client, now, "account-disabled")
            raise refused
        return self._open_session(row, client, now, "password")

    def sign_in_external(
        self, login: str, *, client: str, method: str, now: datetime | None = None
    ) -> tuple[str, Session]:
        """A session for a login an identity provider vouched for (no password)."""
        now = now or datetime.now(UTC)
        with self._tx() as conn:
            row = conn.execute(sa.select(ACCOUNTS).where(ACCOUNTS.c.login == login)).first()
        if row is None:
            log.warning("console sign-in failed", login=login[:100], reason="no-account")
            raise SignInRefused("у этого пользователя нет учётной записи консоли")
        if row.disabled:
            self._failed(login, True, client, now, "account-disabled")
            raise SignInRefused("учётная запись консоли отключена")
        return self._open_session(row, client, now, method)

    def _open_session(
        self, row: Any, client: str, now: datetime, method: str
    ) -> tuple[str, Session]:
        login = row.login
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        expires = now + timedelta(hours=self.web.session_hours)
        with self._tx() as conn:
            conn.execute(
                SESSIONS.insert().values(
                    token_hash=_token_hash(token), login=login, csrf=csrf, expires_at=_iso(expires)
                )
            )
            conn.execute(FAILURES.delete().where(FAILURES.c.login == login))
        aggregate = self._aggregate(login)
        aggregate.signed_in(at=now, client=client, method=method)
        self.log.save(aggregate)
        log.info("console sign-in", login=login, method=method)
        account = Account(row.login, row.school_id, row.person_id, disabled=False)
        return token, Session(account, csrf, _token_hash(token))

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self.hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def _failed(self, login: str, known: bool, client: str, now: datetime, reason: str) -> None:
        with self._tx() as conn:
            conn.execute(FAILURES.insert().values(login=login, client=client, at=_iso(now)))
        log.warning("console sign-in failed", login=login[:100], reason=reason, client=client)
        if known:
            aggregate = self._aggregate(login)
            aggregate.sign_in_failed(at=now, client=client, reason=reason)
            self.log.save(aggregate)

    def session(self, token: str | None, now: datetime | None = None) -> Session | None:
        """The live session of a cookie's token, or ``None``."""
        if not token:
            return None
        now = now or datetime.now(UTC)
        with self._tx() as conn:
            row = conn.execute(
                sa.select(SESSIONS, ACCOUNTS)
                .join_from(SESSIONS, ACCOUNTS, SESSIONS.c.login == ACCOUNTS.c.login)
                .where(SESSIONS.c.token_hash == _token_hash(token))
            ).first()
        if row is None or row.disabled or row.expires_at <= _iso(now):
            return None
        account = Account(row.login, row.school_id, row.person_id, disabled=False)
        return Session(account, row.csrf, row.token_hash)

    def sign_out(self, session: Session, now: datetime | None = None) -> None:
        with self._tx() as conn:
            conn.execute(SESSIONS.delete().where(SESSIONS.c.token_hash == session.token_hash))
        aggregate = self._aggregate(session.account.login)
        aggregate.signed_out(at=now or datetime.now(UTC))
        self.log.save(aggregate)


class UnknownToken(DomainError):
    code = "token-unknown"


class ApiTokens:
    """API tokens of schools: issued and revoked by an administrator, each an event."""

    def __init__(self, accounts: Accounts) -> None:
        self.accounts = accounts

    def issue(
        self, *, school_id: str, role: str, label: str, issued_by: str, now: datetime | None = None
    ) -> tuple[Token, str]:
        """The new token and its secret (shown once; only its hash is kept)."""
        token_id = secrets.token_hex(6)
        secret = f"sfa_{token_id}_{secrets.token_urlsafe(32)}"
        aggregate = ApiToken(
            token_id=token_id,
            school_id=school_id,
            role=role,
            label=label,
            issued_by=issued_by,
            at=now or datetime.now(UTC),
        )
        with self.accounts._tx() as conn:
            conn.execute(
                TOKENS.insert().values(
                    token_id=token_id,
                    secret_hash=_token_hash(secret),
                    school_id=school_id,
                    role=role,
                    label=label,
                    revoked=0,
                )
            )
        self.accounts.log.save(aggregate)
        return Token(token_id, school_id, role, label, revoked=False), secret

    def revoke(self, token_id: str, *, by: str, reason: str, now: datetime | None = None) -> None:
        with self.accounts._tx() as conn:
            found = conn.execute(sa.select(TOKENS).where(TOKENS.c.token_id == token_id)).first()
        if found is None:
            raise UnknownToken(f"no API token {token_id}")
        aggregate: ApiToken = self.accounts.log.repository.get(ApiToken.create_id(token_id))
        aggregate.revoke(by=by, reason=reason, at=now or datetime.now(UTC))
        with self.accounts._tx() as conn:
            conn.execute(TOKENS.update().where(TOKENS.c.token_id == token_id).values(revoked=1))
        self.accounts.log.save(aggregate)

    def find(self, secret: str | None) -> Token | None:
        """The live token of a bearer secret, or ``None``."""
        if not secret:
            return None
        with self.accounts._tx() as conn:
            row = conn.execute(
                sa.select(TOKENS).where(TOKENS.c.secret_hash == _token_hash(secret))
            ).first()
        if row is None or row.revoked:
            return None
        return Token(row.token_id, row.school_id, row.role, row.label, revoked=False)

    def listing(self, school_id: str | None = None) -> list[Token]:
        statement = sa.select(TOKENS).order_by(TOKENS.c.school_id, TOKENS.c.token_id)
        if school_id is not None:
            statement = statement.where(TOKENS.c.school_id == school_id)
        with self.accounts._tx() as conn:
            rows = conn.execute(statement).all()
        return [Token(r.token_id, r.school_id, r.role, r.label, bool(r.revoked)) for r in rows]


def csrf_matches(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())
