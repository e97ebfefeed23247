"""The console's pages: Starlette routes rendering Jinja2 templates, htmx for the filters.

Every request reads the person from the session cookie, their standing from the views
(``web.access``), and answers 403 for what their role does not reach and 404 for what is
not at their school (another school's incident, chat or invitation is simply not found).
Every form carries the session's CSRF token; a POST without it is refused (403) before
anything else is looked at. Every act is a command built here with the signed-in person
as the actor and signed by the console's source (``web.console_source``).
"""

from __future__ import annotations

import csv
import io
import json
import secrets
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from uuid import uuid4
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import structlog
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from sferum_audit.application.bootstrap import build_audit_log
from sferum_audit.application.service import AuditLog, CommandResult
from sferum_audit.application.settings import Settings
from sferum_audit.cli.times import school_zone
from sferum_audit.domain.access_incident import CLOSED
from sferum_audit.domain.regulation import CONTAINMENT_STEPS, GROUNDS, NOTIFIED_PARTIES
from sferum_audit.projections import queries
from sferum_audit.projections.database import ViewsDatabase
from sferum_audit.projections.runner import ViewRunner
from sferum_audit.projections.settings import ViewsSettings
from sferum_audit.projections.statistics import statistics
from sferum_audit.web import api, oidc
from sferum_audit.web.access import Standing, standing_of
from sferum_audit.web.accounts import Accounts, Session, SignInRefused, csrf_matches
from sferum_audit.web.console_source import ConsoleSigner
from sferum_audit.web.i18n import Translator, local_time
from sferum_audit.web.settings import WebSettings

log = structlog.get_logger(__name__)
HERE: Final = Path(__file__).parent
SESSION_COOKIE: Final = "sferum_session"
PRE_CSRF_COOKIE: Final = "sferum_signin_csrf"
LANGUAGE_COOKIE: Final = "sferum_lang"
MODERATION_ACTS: Final = ("remove-content", "block-content", "block-member", "warn-about-liability")
INCIDENT_ACTS: Final = ("acknowledge", "notify", "contain", "resolve", "dismiss")
AUDIT_FILTERS: Final = ("moderator", "chat", "target", "authority", "ground", "action")
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class Forbidden(Exception):
    pass


class NotFound(Exception):
    pass


class Console:
    """The console's state: the audit log, the views, the accounts, the signer."""

    def __init__(self, settings: Settings, web: WebSettings) -> None:
        self.settings = settings
        self.web = web
        self.zone = ZoneInfo(web.time_zone) if web.time_zone else school_zone()
        self.app: AuditLog = build_audit_log(settings)
        options = ViewsSettings()
        self.db = ViewsDatabase.from_settings(settings, options)
        self.runner = ViewRunner(self.app, self.db, page_size=options.views_page_size)
        self.runner.ensure_tables()
        self.accounts = Accounts(settings, web)
        self.signer = ConsoleSigner.from_settings(settings)
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        self._lock = threading.Lock()

    def close(self) -> None:
        self.accounts.close()
        self.db.dispose()
        self.app.close()

    def catch_up(self) -> None:
        with self._lock:
            self.runner.catch_up()

    def submit(self, standing: Standing, role: str, type_: str, **fields: Any) -> CommandResult:
        data = {
            "type": type_,
            "command_id": f"web-{uuid4()}",
            "school_id": standing.school_id,
            "actor": {"id": standing.person_id, "role": role},
            "occurred_at": datetime.now(UTC).isoformat(),
            **fields,
        }
        result = self.signer.submit(self.app, data)
        self.catch_up()
        return result


# -- plumbing ---------------------------------------------------------------------------------


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


def translator(request: Request) -> Translator:
    language = request.cookies.get(LANGUAGE_COOKIE) or console_of(request).web.language
    return Translator(language)


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
    console = console_of(request)
    zone = console.zone
    context.setdefault("session", getattr(request.state, "session", None))
    context.setdefault("standing", getattr(request.state, "standing", None))
    response = console.templates.TemplateResponse(
        request,
        template,
        {
            "t": translator(request),
            "time": lambda value: local_time(value, zone),
            "zone": str(zone),
            "status": status_code,
            **context,
        },
        status_code=status_code,
    )
    return response


def client_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def form_of(request: Request, session: Session) -> dict[str, str]:
    """The form's fields, after checking its CSRF token against the session's."""
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    if not csrf_matches(session.csrf, fields.pop("csrf_token", None)):
        raise Forbidden("csrf")
    return fields


Handler = Callable[[Request], Awaitable[Response]]


def signed_in(handler: Handler) -> Handler:
    """Runs ``handler`` for a signed-in person with access; otherwise sign-in or 403."""

    async def wrapped(request: Request) -> Response:
        console = console_of(request)
        session = console.accounts.session(request.cookies.get(SESSION_COOKIE))
        if session is None:
            return RedirectResponse("/sign-in", status_code=303)
        request.state.session = session
        console.catch_up()
        standing = standing_of(console.db, session.account.school_id, session.account.person_id)
        request.state.standing = standing
        if not standing.has_access:
            return render(request, "error.html", 403, message=translator(request)("no_access"))
        try:
            return await handler(request)
        except Forbidden as error:
            log.warning(
                "console refused",
                path=request.url.path,
                person=standing.person_id,
                school=standing.school_id,
                reason=str(error),
            )
            key = "bad_csrf" if str(error) == "csrf" else "forbidden"
            return render(request, "error.html", 403, message=translator(request)(key))
        except NotFound:
            return render(request, "error.html", 404, message=translator(request)("not_found"))

    return wrapped


def current(request: Request) -> tuple[Console, Session, Standing]:
    return console_of(request), request.state.session, request.state.standing


def outcome(request: Request, result: CommandResult, back: str) -> Response:
    if result.accepted:
        return RedirectResponse(back, status_code=303)
    return render(
        request,
        "error.html",
        422,
        message=f"{translator(request)('refused')}: {result.error_code}: {result.error_message}",
        back=back,
    )


# -- sign-in ----------------------------------------------------------------------------------


def _cookie_options(console: Console) -> dict[str, Any]:
    return {"httponly": True, "samesite": "strict", "secure": console.web.secure_cookies}


async def sign_in_page(request: Request) -> Response:
    console = console_of(request)
    token = request.cookies.get(PRE_CSRF_COOKIE) or secrets.token_urlsafe(32)
    response = render(
        request, "sign_in.html", csrf_token=token, error=None, oidc=bool(console.web.oidc_issuer)
    )
    response.set_cookie(PRE_CSRF_COOKIE, token, **_cookie_options(console))
    return response


async def sign_in(request: Request) -> Response:
    console = console_of(request)
    form = await request.form()
    given = form.get("csrf_token")
    expected = request.cookies.get(PRE_CSRF_COOKIE) or ""
    if not expected or not isinstance(given, str) or not csrf_matches(expected, given):
        return render(request, "error.html", 403, message=translator(request)("bad_csrf"))
    login, password = str(form.get("login") or ""), str(form.get("password") or "")
    try:
        token, _ = console.accounts.sign_in(login, password, client=client_of(request))
    except SignInRefused as error:
        status = 429 if error.throttled else 401
        return render(
            request,
            "sign_in.html",
            status,
            csrf_token=expected,
            error=error.message,
            oidc=bool(console.web.oidc_issuer),
        )
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(console.web.session_hours * 3600),
        **_cookie_options(console),
    )
    response.delete_cookie(PRE_CSRF_COOKIE)
    return response


@signed_in
async def sign_out(request: Request) -> Response:
    console, session, _ = current(request)
    await form_of(request, session)
    console.accounts.sign_out(session)
    response = RedirectResponse("/sign-in", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


async def language(request: Request) -> Response:
    chosen = request.query_params.get("to", "ru")
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(LANGUAGE_COOKIE, "en" if chosen == "en" else "ru", samesite="strict")
    return response


@signed_in
async def home(request: Request) -> Response:
    _, _, standing = current(request)
    if standing.handles_incidents:
        return RedirectResponse("/incidents", status_code=303)
    return RedirectResponse("/audit", status_code=303)


# -- incidents (4.2.2) ------------------------------------------------------------------------


def _need_incidents(standing: Standing) -> None:
    if not standing.handles_incidents:
        raise Forbidden("role")


@signed_in
async def incident_register(request: Request) -> Response:
    console, _, standing = current(request)
    _need_incidents(standing)
    show = request.query_params.get("show", "open")
    rows = api.shown_incidents(console.db, show, standing.school_id, console.web.ack_deadline_hours)
    return render(request, "incidents.html", rows=rows, show=show)


def _incident(console: Console, standing: Standing, incident_id: str) -> dict[str, Any]:
    rows = queries.incidents(console.db, datetime.now(UTC), school=standing.school_id)
    for row in rows:
        if row["incident_id"] == incident_id:
            return row
    raise NotFound(incident_id)


@signed_in
async def incident_page(request: Request) -> Response:
    console, _, standing = current(request)
    _need_incidents(standing)
    row = _incident(console, standing, request.path_params["incident_id"])
    return render(
        request,
        "incident.html",
        row=row,
        timeline=_timeline(row),
        closed=row["state"] in CLOSED,
        parties=sorted(NOTIFIED_PARTIES),
        steps=sorted(CONTAINMENT_STEPS),
    )


def _timeline(row: dict[str, Any]) -> list[tuple[str | None, str, str]]:
    items: list[tuple[str | None, str, str]] = [
        (row["noticed_at"], "noticed", row["how_noticed"] or ""),
        (row["reported_at"], "reported", row["reporter_id"] or ""),
    ]
    for party, column in (
        ("school-administrator", "told_school_administrator_at"),
        ("platform-operator", "told_platform_operator_at"),
    ):
        if row[column]:
            items.append((row[column], "told", party))
    if row["acknowledged_at"]:
        items.append((row["acknowledged_at"], "acknowledged", row["acknowledged_by"] or ""))
    for step in row["containment_steps"]:
        items.append((step["at"], step["step"], f"{step['by']}: {step['note']}"))
    if row["closed_at"]:
        items.append((row["closed_at"], row["state"], f"{row['closed_by']}: {row['findings']}"))
    return sorted(items, key=lambda item: item[0] or "")


@signed_in
async def incident_act(request: Request) -> Response:
    console, session, standing = current(request)
    fields = await form_of(request, session)
    _need_incidents(standing)
    incident_id = request.path_params["incident_id"]
    _incident(console, standing, incident_id)
    act = request.path_params["act"]
    back = f"/incidents/{incident_id}"
    now = datetime.now(UTC).isoformat()
    role = standing.incident_role
    if act == "acknowledge":
        result = console.submit(standing, role, "acknowledge-incident", incident_id=incident_id)
    elif act == "notify":
        result = console.submit(
            standing,
            role,
            "record-notification",
            incident_id=incident_id,
            party=fields.get("party", ""),
            told_at=now,
        )
    elif act == "contain":
        result = console.submit(
            standing,
            role,
            "take-containment-step",
            incident_id=incident_id,
            step=fields.get("step", ""),
            note=fields.get("note", ""),
        )
    elif act in {"resolve", "dismiss"}:
        result = console.submit(
            standing,
            role,
            f"{act}-incident",
            incident_id=incident_id,
            findings=fields.get("findings", ""),
        )
    else:
        raise NotFound(act)
    return outcome(request, result, back)


# -- moderation (2.3, 2.4, 2.5) ---------------------------------------------------------------


@signed_in
async def moderate_page(request: Request) -> Response:
    _, _, standing = current(request)
    if not standing.moderates:
        raise Forbidden("role")
    return render(
        request,
        "moderate.html",
        acts=MODERATION_ACTS,
        grounds=sorted(GROUNDS),
        chats=standing.chats,
    )


@signed_in
async def moderate(request: Request) -> Response:
    console, session, standing = current(request)
    fields = await form_of(request, session)
    chat_id, _, authority = fields.get("chat", "").partition("|")
    chat = standing.chat(chat_id)
    if chat is None or authority not in chat.authorities:
        raise Forbidden("chat")
    act = fields.get("act", "")
    if act not in MODERATION_ACTS:
        raise Forbidden("act")
    common = {
        "chat_id": chat_id,
        "authority": authority,
        "ground": fields.get("ground", ""),
        "reason": fields.get("reason", ""),
    }
    if act in {"remove-content", "block-content"}:
        common |= {
            "message_id": fields.get("message_id", ""),
            "author_id": fields.get("member", ""),
        }
    else:
        common["member_id"] = fields.get("member", "")
    result = console.submit(standing, standing.role_for(authority), act, **common)
    return outcome(request, result, f"/audit?chat={chat_id}")


# -- audit trail ------------------------------------------------------------------------------


def _audit(request: Request) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The rows the page shows (and the exports hold): the filters, the person's scope
    (administrators: the school; moderators: their chats), newest first, one page."""
    console, _, standing = current(request)
    params = {
        k: request.query_params.get(k, "").strip() for k in (*AUDIT_FILTERS, "since", "until")
    }
    if not standing.is_administrator:
        if not standing.moderates:
            raise Forbidden("role")
        if params["chat"] and standing.chat(params["chat"]) is None:
            raise Forbidden("chat")
    try:
        since = datetime.fromisoformat(params["since"]) if params["since"] else None
        until = datetime.fromisoformat(params["until"]) if params["until"] else None
    except ValueError:
        raise NotFound("time") from None
    zone = console.zone
    flt = queries.AuditFilter(
        **{k: params[k] or None for k in AUDIT_FILTERS},
        since=since.replace(tzinfo=since.tzinfo or zone) if since else None,
        until=until.replace(tzinfo=until.tzinfo or zone) if until else None,
        school=standing.school_id,
    )
    t = console.db.live.table("audit_trail")
    statement = queries.audit_statement(console.db, flt)
    if not standing.is_administrator:
        statement = statement.where(t.c.chat_id.in_([c.chat_id for c in standing.chats]))
    statement = statement.order_by(t.c.position.desc()).limit(console.web.page_size)
    with console.db.reading() as conn:
        rows = [dict(row._mapping) for row in conn.execute(statement)]
    return rows, params


@signed_in
async def audit_page(request: Request) -> Response:
    rows, params = _audit(request)
    query = "&".join(f"{k}={v}" for k, v in params.items() if v)
    return render(request, "audit.html", rows=rows, params=params, query=query)


@signed_in
async def audit_export(request: Request) -> Response:
    rows, _ = _audit(request)
    if request.url.path.endswith(".json"):
        return Response(
            json.dumps(rows, ensure_ascii=False, indent=1),
            media_type="application/json",
            headers={"Content-Disposition": 'attachment; filename="audit.json"'},
        )
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]) if rows else list(audit_fields()))
    writer.writeheader()
    writer.writerows(rows)
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="audit.csv"'},
    )


# -- administrators (2.3) ---------------------------------------------------------------------


def audit_fields() -> tuple[str, ...]:
    """Every field of an audit row as the page's query returns it."""
    return (*queries.audit_columns(), *queries.AUDIT_NAMES)


def _need_admin(standing: Standing) -> None:
    if not standing.is_administrator:
        raise Forbidden("role")


@signed_in
async def invitations_page(request: Request) -> Response:
    console, _, standing = current(request)
    _need_admin(standing)
    rows = queries.invitations(
        console.db,
        datetime.now(UTC),
        stale_days=console.web.stale_invitation_days,
        school=standing.school_id,
    )
    return render(request, "invitations.html", rows=rows)


@signed_in
async def annul_invitation(request: Request) -> Response:
    console, session, standing = current(request)
    fields = await form_of(request, session)
    _need_admin(standing)
    invitation_id = request.path_params["invitation_id"]
    i = console.db.live.table("inv_invitations")
    with console.db.reading() as conn:
        found = conn.execute(
            sa.select(i.c.invitation_id).where(
                i.c.school_id == standing.school_id, i.c.invitation_id == invitation_id
            )
        ).first()
    if found is None:
        raise NotFound(invitation_id)
    result = console.submit(
        standing,
        "administrator",
        "annul-invitation",
        invitation_id=invitation_id,
        reason=fields.get("reason") or "ссылка не использована; аннулирована (2.3)",
    )
    return outcome(request, result, "/invitations")


@signed_in
async def statistics_page(request: Request) -> Response:
    console, _, standing = current(request)
    _need_admin(standing)
    rows = statistics(console.db, school=standing.school_id)
    return render(request, "statistics.html", rows=rows)


# -- the application --------------------------------------------------------------------------


async def security_headers(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    response = await call_next(request)
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


async def openapi(request: Request) -> Response:
    return Response(api.openapi_text(), media_type="application/json")


def create_app(settings: Settings | None = None, web: WebSettings | None = None) -> Starlette:
    """The console as an ASGI application (``sferum-audit web`` serves it with uvicorn)."""
    console = Console(settings or Settings(), web or WebSettings())
    routes = [
        Route("/", home),
        Route("/sign-in", sign_in_page, methods=["GET"]),
        Route("/sign-in", sign_in, methods=["POST"]),
        Route("/sign-out", sign_out, methods=["POST"]),
        Route("/sign-in/oidc", oidc.start),
        Route("/sign-in/oidc/callback", oidc.callback),
        Route("/language", language),
        Route("/incidents", incident_register),
        Route("/incidents/{incident_id}", incident_page),
        Route("/incidents/{incident_id}/{act}", incident_act, methods=["POST"]),
        Route("/moderate", moderate_page, methods=["GET"]),
        Route("/moderate", moderate, methods=["POST"]),
        Route("/audit", audit_page),
        Route("/audit.csv", audit_export),
        Route("/audit.json", audit_export),
        Route("/invitations", invitations_page),
        Route("/invitations/{invitation_id}/annul", annul_invitation, methods=["POST"]),
        Route("/statistics", statistics_page),
        Route("/api/v1/audit", api.audit),
        Route("/api/v1/incidents", api.incidents),
        Route("/api/openapi.json", openapi),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        console.close()

    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[Middleware(BaseHTTPMiddleware, dispatch=security_headers)],
    )
    app.state.console = console
    return app
