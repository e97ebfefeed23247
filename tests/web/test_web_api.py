"""The JSON API for integrations: tokens per school and role, cursor pages, OpenAPI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from web_helpers import School, report_incident

from sferum_audit.application.settings import Settings
from sferum_audit.domain.api_token import TokenRoleUnknown
from sferum_audit.web.accounts import Accounts, ApiTokens
from sferum_audit.web.api import openapi_text

REPOSITORY = Path(__file__).resolve().parents[2]


def issue(settings: Settings, school_id: str, role: str) -> tuple[str, str]:
    accounts = Accounts(settings)
    try:
        token, secret = ApiTokens(accounts).issue(
            school_id=school_id, role=role, label="SIEM округа", issued_by=f"{school_id}-adm-1"
        )
    finally:
        accounts.close()
    return token.token_id, secret


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def test_the_committed_openapi_document_is_up_to_date() -> None:
    committed = (REPOSITORY / "docs" / "openapi.json").read_text(encoding="utf-8")
    assert committed == openapi_text(), (
        "regenerate: .venv/bin/python -m sferum_audit.web.api > docs/openapi.json"
    )


def test_cursor_pages_hold_the_whole_audit_trail_of_the_tokens_school_once(
    client: TestClient, settings: Settings, school: School
) -> None:
    _, secret = issue(settings, school.id, "administrator")
    whole = client.get("/api/v1/audit?limit=1000", headers=bearer(secret)).json()
    assert whole["next_cursor"] is None
    assert whole["items"]
    assert {row["school_id"] for row in whole["items"]} == {school.id}
    seen: list[int] = []
    url = "/api/v1/audit?limit=3"
    while True:
        page = client.get(url, headers=bearer(secret)).json()
        seen += [row["position"] for row in page["items"]]
        if page["next_cursor"] is None:
            break
        url = f"/api/v1/audit?limit=3&cursor={page['next_cursor']}"
    assert seen == [row["position"] for row in whole["items"]]


def test_a_security_token_reads_incidents_but_not_the_audit_trail(
    client: TestClient, settings: Settings, school: School
) -> None:
    report_incident(settings, school, "inc-api")
    _, secret = issue(settings, school.id, "security-officer")
    assert client.get("/api/v1/audit", headers=bearer(secret)).status_code == 403
    listed = client.get("/api/v1/incidents?show=open", headers=bearer(secret)).json()
    assert "inc-api" in [row["incident_id"] for row in listed["items"]]


def test_a_token_reads_only_its_own_school(
    client: TestClient, settings: Settings, school: School
) -> None:
    report_incident(settings, school, "inc-theirs")
    _, secret = issue(settings, school.other, "administrator")
    listed = client.get("/api/v1/incidents", headers=bearer(secret)).json()
    assert "inc-theirs" not in [row["incident_id"] for row in listed["items"]]
    audit = client.get("/api/v1/audit?limit=1000", headers=bearer(secret)).json()
    assert {row["school_id"] for row in audit["items"]} == {school.other}


def test_a_revoked_or_missing_token_reads_nothing_and_both_acts_are_events(
    client: TestClient, settings: Settings, school: School
) -> None:
    token_id, secret = issue(settings, school.id, "administrator")
    assert client.get("/api/v1/audit", headers=bearer(secret)).status_code == 200
    accounts = Accounts(settings)
    try:
        ApiTokens(accounts).revoke(token_id, by=school.person("adm-1"), reason="SIEM заменён")
        history = accounts.token_history(token_id)
    finally:
        accounts.close()
    assert client.get("/api/v1/audit", headers=bearer(secret)).status_code == 401
    assert client.get("/api/v1/audit").status_code == 401
    assert [e["event"] for e in history] == ["ApiToken.Issued", "ApiToken.Revoked"]
    assert secret not in json.dumps(history, default=str)


def test_a_token_has_a_known_role(settings: Settings, school: School) -> None:
    with pytest.raises(TokenRoleUnknown):
        issue(settings, school.id, "student")


def test_malformed_paging_is_a_clear_error(
    client: TestClient, settings: Settings, school: School
) -> None:
    _, secret = issue(settings, school.id, "administrator")
    response = client.get("/api/v1/audit?cursor=abc", headers=bearer(secret))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid-cursor"
    assert client.get("/api/v1/audit?limit=0", headers=bearer(secret)).status_code == 400
