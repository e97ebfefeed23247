"""Helpers of the console tests: the sample schools, incidents, signing in."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from starlette.testclient import TestClient

from sferum_audit.application.bootstrap import build_audit_log
from sferum_audit.application.commands import parse_command
from sferum_audit.application.settings import Settings

PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class School:
    id: str
    other: str

    def person(self, local: str) -> str:
        return f"{self.id}-{local}"


def record(settings: Settings, commands: list[dict[str, object]]) -> None:
    app = build_audit_log(settings)
    try:
        results = app.handle_batch([parse_command(c) for c in commands])
        refused = [r.as_dict() for r in results if not r.accepted]
        assert not refused, refused
    finally:
        app.close()


def report_incident(settings: Settings, school: School, incident_id: str) -> None:
    """A student reports that someone else used their account (4.2.2), now."""
    student = school.person("s-01")
    now = datetime.now(UTC).isoformat()
    record(
        settings,
        [
            {
                "type": "report-unauthorised-access",
                "command_id": f"report-{incident_id}",
                "school_id": school.id,
                "actor": {"id": student, "role": "student"},
                "occurred_at": now,
                "incident_id": incident_id,
                "affected_profile_id": student,
                "noticed_at": now,
                "how_noticed": "сообщения, которые я не писал",
                "description": "в моём профиле появились чужие сообщения",
            }
        ],
    )


LOGINS = {
    "admin": "adm-1",
    "officer": "sec-1",
    "class-teacher": "t-1",
    "teacher": "t-5",
    "student": "s-01",
}


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has a form with a CSRF token"
    return found.group(1)


def sign_in(client: TestClient, login: str, password: str = PASSWORD) -> int:
    page = client.get("/sign-in")
    response = client.post(
        "/sign-in",
        data={"login": login, "password": password, "csrf_token": csrf_of(page.text)},
    )
    return response.status_code
