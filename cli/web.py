"""``sferum-audit web`` (the console) and ``sferum-audit web-account`` (its accounts)."""

from __future__ import annotations

import getpass
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from sferum_audit.cli.views import opened_views, settings_of
from sferum_audit.domain.errors import DomainError
from sferum_audit.web.access import standing_of
from sferum_audit.web.accounts import Accounts, ApiTokens
from sferum_audit.web.settings import WebSettings

accounts_app = typer.Typer(help="Accounts of the web console (an administrator's tool).")
PASSWORD_VARIABLE = "SFERUM_AUDIT_WEB_NEW_PASSWORD"  # noqa: S105  # a variable name, not a secret


def web_command(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Address (env SFERUM_AUDIT_WEB_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (env SFERUM_AUDIT_WEB_PORT).")] = None,
) -> None:
    """The web console for security staff, moderators and administrators (127.0.0.1:8080)."""
    import uvicorn

    from sferum_audit.web.app import create_app

    web = WebSettings()
    app = create_app(settings_of(ctx), web)
    uvicorn.run(app, host=host or web.host, port=port or web.port, log_level="warning")


@accounts_app.command("create")
def create_account(
    ctx: typer.Context,
    login: Annotated[str, typer.Argument(help="The name the person signs in with.")],
    school: Annotated[str, typer.Option(help="The school the account belongs to.")],
    person: Annotated[str, typer.Option(help="The person's profile id at that school.")],
    by: Annotated[str, typer.Option(help="The administrator creating the account.")],
) -> None:
    """Creates a console account for a staff member (password from the prompt, or from
    SFERUM_AUDIT_WEB_NEW_PASSWORD for scripts)."""
    with opened_views(ctx) as db:
        creator = standing_of(db, school, by)
        standing = standing_of(db, school, person)
    if not creator.is_administrator:
        raise _fail(f"{by} is not an administrator of {school} (2.3)")
    if not standing.has_access:
        raise _fail(
            f"{person} has no staff profile at {school}: only security staff, teachers and "
            "administrators get console accounts"
        )
    password = os.environ.get(PASSWORD_VARIABLE) or getpass.getpass("Пароль / password: ")
    with _account_store(ctx) as accounts:
        accounts.create(
            login=login, school_id=school, person_id=person, password=password, created_by=by
        )
    typer.echo(f"created console account {login} for {person} at {school}")


@accounts_app.command("disable")
def disable_account(
    ctx: typer.Context,
    login: Annotated[str, typer.Argument(help="The account to disable.")],
    by: Annotated[str, typer.Option(help="Who disables it.")],
    reason: Annotated[str, typer.Option(help="Why.")],
) -> None:
    """Disables an account and ends its sessions."""
    with _account_store(ctx) as accounts:
        accounts.disable(login, by=by, reason=reason)
    typer.echo(f"disabled console account {login}")


@accounts_app.command("list")
def list_accounts(
    ctx: typer.Context,
    school: Annotated[str | None, typer.Option(help="Only this school's accounts.")] = None,
) -> None:
    """Console accounts: login, school, person, disabled."""
    accounts = Accounts(settings_of(ctx))
    try:
        for account in accounts.listing(school):
            state = "disabled" if account.disabled else "active"
            typer.echo(f"{account.login}\t{account.school_id}\t{account.person_id}\t{state}")
    finally:
        accounts.close()


tokens_app = typer.Typer(help="API tokens for integrations (an administrator's tool).")


@tokens_app.command("issue")
def issue_token(
    ctx: typer.Context,
    school: Annotated[str, typer.Option(help="The school the token reads.")],
    role: Annotated[str, typer.Option(help="administrator or security-officer.")],
    by: Annotated[str, typer.Option(help="The administrator issuing it.")],
    label: Annotated[str, typer.Option(help="Who uses it, e.g. the district's SIEM.")],
) -> None:
    """Issues an API token and prints its secret once (only a hash of it is kept)."""
    with opened_views(ctx) as db:
        if not standing_of(db, school, by).is_administrator:
            raise _fail(f"{by} is not an administrator of {school} (2.3)")
    with _account_store(ctx) as accounts:
        token, secret = ApiTokens(accounts).issue(
            school_id=school, role=role, label=label, issued_by=by
        )
    typer.echo(f"token {token.token_id} ({role} at {school}):", err=True)
    typer.echo(secret)


@tokens_app.command("revoke")
def revoke_token(
    ctx: typer.Context,
    token_id: Annotated[str, typer.Argument(help="The token's id (not its secret).")],
    by: Annotated[str, typer.Option(help="Who revokes it.")],
    reason: Annotated[str, typer.Option(help="Why.")],
) -> None:
    """Revokes an API token: it reads nothing more."""
    with _account_store(ctx) as accounts:
        ApiTokens(accounts).revoke(token_id, by=by, reason=reason)
    typer.echo(f"revoked API token {token_id}")


@tokens_app.command("list")
def list_tokens(
    ctx: typer.Context,
    school: Annotated[str | None, typer.Option(help="Only this school's tokens.")] = None,
) -> None:
    """API tokens: id, school, role, label, revoked."""
    accounts = Accounts(settings_of(ctx))
    try:
        for t in ApiTokens(accounts).listing(school):
            state = "revoked" if t.revoked else "active"
            typer.echo(f"{t.token_id}\t{t.school_id}\t{t.role}\t{t.label}\t{state}")
    finally:
        accounts.close()


@contextmanager
def _account_store(ctx: typer.Context) -> Iterator[Accounts]:
    """The accounts and tokens store for one change, closed afterwards; a refusal ends the
    command with its stable code and message (exit status 2)."""
    accounts = Accounts(settings_of(ctx))
    try:
        yield accounts
    except DomainError as error:
        raise _fail(f"{error.code}: {error.message}") from None
    finally:
        accounts.close()


def _fail(message: str) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(2)


def register(app: typer.Typer) -> None:
    app.command("web")(web_command)
    app.add_typer(accounts_app, name="web-account")
    app.add_typer(tokens_app, name="web-token")
