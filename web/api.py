"""The JSON API for integrations: a district's SIEM pulls the audit trail and incidents.

``Authorization: Bearer <token>``; a token is issued for one school and one role by an
administrator (``sferum-audit web-token issue``). An ``administrator`` token reads the
audit trail and the incidents, a ``security-officer`` token the incidents. Pages are
cursor-paginated: each answer has ``next_cursor`` (``null`` on the last page), passed back
as ``cursor``; the audit trail runs newest first, incidents in the order they were
reported, so a poller that keeps the first answer's newest position misses nothing.
The OpenAPI document (``docs/openapi.json``) is ``openapi_document()``; a test keeps them
equal (regenerate with ``python -m sferum_audit.web.api > docs/openapi.json``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sferum_audit.projections import queries
from sferum_audit.projections.database import ViewsDatabase
from sferum_audit.web.accounts import ApiTokens, Token

MAX_LIMIT: Final = 1000
DEFAULT_LIMIT: Final = 100
AUDIT_FILTERS: Final = ("moderator", "chat", "target", "authority", "ground", "action")
READS: Final = {"audit": {"administrator"}, "incidents": {"administrator", "security-officer"}}


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def _token(request: Request, what: str) -> Token | JSONResponse:
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    console = request.app.state.console
    token = ApiTokens(console.accounts).find(secret.strip() if scheme.lower() == "bearer" else None)
    if token is None:
        return _error(401, "token-invalid", "send Authorization: Bearer <a live API token>")
    if token.role not in READS[what]:
        return _error(403, "token-role", f"a {token.role} token does not read {what}")
    console.catch_up()
    return token


def _limit(request: Request) -> int | JSONResponse:
    text = request.query_params.get("limit", str(DEFAULT_LIMIT))
    if not text.isdigit() or not 0 < int(text) <= MAX_LIMIT:
        return _error(400, "invalid-limit", f"limit is a whole number from 1 to {MAX_LIMIT}")
    return int(text)


def _cursor(request: Request) -> int | JSONResponse | None:
    text = request.query_params.get("cursor")
    if text is None:
        return None
    if not text.isdigit():
        return _error(400, "invalid-cursor", "cursor is the next_cursor of the previous page")
    return int(text)


def _paged(request: Request, what: str) -> tuple[Token, int, int | None] | JSONResponse:
    """The caller's token (checked first: 401/403), then the page size and cursor (400)."""
    token = _token(request, what)
    if isinstance(token, Response):
        return token
    limit, cursor = _limit(request), _cursor(request)
    for given in (limit, cursor):
        if isinstance(given, JSONResponse):
            return given
    assert isinstance(limit, int)
    assert not isinstance(cursor, JSONResponse)
    return token, limit, cursor


def shown_incidents(
    db: ViewsDatabase, show: str, school_id: str, ack_deadline_hours: float
) -> list[dict[str, Any]]:
    """The school's incidents as ``show`` asks, as of now: ``all``, ``open``, or ``overdue``
    (open and unacknowledged ``ack_deadline_hours`` after the report). The API and the
    console's register both list them this way."""
    return queries.incidents(
        db,
        datetime.now(UTC),
        open_only=show != "all",
        overdue_after=timedelta(hours=ack_deadline_hours) if show == "overdue" else None,
        school=school_id,
    )


async def audit(request: Request) -> Response:
    paged = _paged(request, "audit")
    if isinstance(paged, Response):
        return paged
    token, limit, cursor = paged
    params = {k: request.query_params.get(k) or None for k in AUDIT_FILTERS}
    try:
        since, until = (
            datetime.fromisoformat(v) if v else None
            for v in (request.query_params.get("since"), request.query_params.get("until"))
        )
    except ValueError:
        return _error(400, "invalid-time", "since and until are ISO 8601 times with an offset")
    console = request.app.state.console
    flt = queries.AuditFilter(**params, since=since, until=until, school=token.school_id)
    t = console.db.live.table("audit_trail")
    statement = queries.audit_statement(console.db, flt)
    if isinstance(cursor, int):
        statement = statement.where(t.c.position < cursor)
    statement = statement.order_by(t.c.position.desc()).limit(limit + 1)
    with console.db.reading() as conn:
        rows = [dict(row._mapping) for row in conn.execute(statement)]
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = str(rows[-1]["position"]) if more else None
    return JSONResponse({"items": rows, "next_cursor": next_cursor})


async def incidents(request: Request) -> Response:
    paged = _paged(request, "incidents")
    if isinstance(paged, Response):
        return paged
    token, limit, cursor = paged
    show = request.query_params.get("show", "all")
    if show not in {"open", "overdue", "all"}:
        return _error(400, "invalid-show", "show is open, overdue or all")
    console = request.app.state.console
    rows = shown_incidents(console.db, show, token.school_id, console.web.ack_deadline_hours)
    rows.sort(key=lambda row: row["position"])
    if isinstance(cursor, int):
        rows = [row for row in rows if row["position"] > cursor]
    page = rows[:limit]
    next_cursor = str(page[-1]["position"]) if len(rows) > limit else None
    return JSONResponse({"items": page, "next_cursor": next_cursor})


# -- the OpenAPI document ---------------------------------------------------------------------


def _query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or {"type": "string"},
    }


PAGING: Final = [
    _query("cursor", "next_cursor of the previous page"),
    _query("limit", "rows per page", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}),
]


def _page(item: str) -> dict[str, Any]:
    return {
        "description": "one page",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["items", "next_cursor"],
                    "properties": {
                        "items": {
                            "type": "array",
                            "items": {"$ref": f"#/components/schemas/{item}"},
                        },
                        "next_cursor": {"type": ["string", "null"]},
                    },
                }
            }
        },
    }


ERRORS: Final = {
    status: {
        "description": text,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    for status, text in (
        ("400", "a malformed parameter"),
        ("401", "no live token"),
        ("403", "the token's role does not read this"),
    )
}


def openapi_document() -> dict[str, Any]:
    audit_row = {
        "type": "object",
        "properties": {
            c: {"type": "integer"} if c == "position" else {"type": ["string", "null"]}
            for c in (*queries.audit_columns(), *queries.AUDIT_NAMES)
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "sferum-audit integration API",
            "version": "1",
            "description": "The audit trail and the 4.2.2 incident register of one school, for "
            "integrations; bearer tokens are issued per school and role by an administrator.",
        },
        "servers": [{"url": "http://127.0.0.1:8080"}],
        "security": [{"bearer": []}],
        "paths": {
            "/api/v1/audit": {
                "get": {
                    "summary": "The audit trail, newest first (administrator tokens)",
                    "operationId": "listAudit",
                    "parameters": [
                        *(_query(f, f"only rows with this {f}") for f in AUDIT_FILTERS),
                        _query(
                            "since",
                            "occurred at or after (ISO 8601)",
                            {"type": "string", "format": "date-time"},
                        ),
                        _query(
                            "until",
                            "occurred at or before (ISO 8601)",
                            {"type": "string", "format": "date-time"},
                        ),
                        *PAGING,
                    ],
                    "responses": {"200": _page("AuditRow"), **ERRORS},
                }
            },
            "/api/v1/incidents": {
                "get": {
                    "summary": "The 4.2.2 incident register in report order",
                    "operationId": "listIncidents",
                    "parameters": [
                        _query(
                            "show",
                            "open, overdue or all",
                            {
                                "type": "string",
                                "enum": ["open", "overdue", "all"],
                                "default": "all",
                            },
                        ),
                        *PAGING,
                    ],
                    "responses": {"200": _page("Incident"), **ERRORS},
                }
            },
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "AuditRow": audit_row,
                "Incident": {
                    "type": "object",
                    "required": ["incident_id", "state", "position"],
                    "properties": {
                        "incident_id": {"type": "string"},
                        "state": {"type": "string"},
                        "position": {"type": "integer"},
                        "affected_profile_id": {"type": "string"},
                        "reported_at": {"type": "string"},
                        "acknowledged_at": {"type": ["string", "null"]},
                        "closed_at": {"type": ["string", "null"]},
                        "containment_steps": {"type": "array", "items": {"type": "object"}},
                        "provenance": {"type": "object"},
                    },
                    "additionalProperties": True,
                },
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["code", "message"],
                            "properties": {
                                "code": {"type": "string"},
                                "message": {"type": "string"},
                            },
                        }
                    },
                },
            },
        },
    }


def openapi_text() -> str:
    return json.dumps(openapi_document(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    print(openapi_text(), end="")
