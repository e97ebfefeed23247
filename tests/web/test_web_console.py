"""The web console through Starlette's TestClient, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json

from starlette.testclient import TestClient
from web_helpers import PASSWORD, School, csrf_of, report_incident, sign_in

from sferum_audit.application.settings import Settings
from sferum_audit.web.accounts import Accounts
from sferum_audit.web.app import create_app
from sferum_audit.web.settings import WebSettings


def test_a_person_signs_in_and_out_and_each_is_an_event_without_secrets(
    client: TestClient, settings: Settings
) -> None:
    assert client.get("/incidents").headers["location"] == "/sign-in"
    assert sign_in(client, "officer") == 303
    page = client.get("/incidents")
    assert page.status_code == 200
    assert "Реестр сообщений о несанкционированном доступе" in page.text
    response = client.post("/sign-out", data={"csrf_token": csrf_of(page.text)})
    assert response.status_code == 303
    assert client.get("/incidents").status_code == 303
    assert sign_in(client, "officer", "wrong password!") == 401
    accounts = Accounts(settings)
    try:
        history = accounts.history("officer")
    finally:
        accounts.close()
    kinds = [entry["event"] for entry in history]
    assert kinds == [
        "ConsoleAccount.Created",
        "ConsoleAccount.SignedIn",
        "ConsoleAccount.SignedOut",
        "ConsoleAccount.SignInFailed",
    ]
    text = json.dumps(history, default=str)
    assert PASSWORD not in text
    assert "argon2" not in text


def test_the_session_cookie_is_secure_http_only_and_same_site_strict(
    settings: Settings, school: School
) -> None:
    with TestClient(create_app(settings, WebSettings()), base_url="https://testserver") as client:
        form = client.get("/sign-in")
        response = client.post(
            "/sign-in",
            data={"login": "officer", "password": PASSWORD, "csrf_token": csrf_of(form.text)},
            follow_redirects=False,
        )
        header = response.headers["set-cookie"].lower()
        assert "sferum_session=" in header
        assert "httponly" in header
        assert "samesite=strict" in header
        assert "secure" in header


def test_repeated_failures_throttle_even_the_right_password(
    settings: Settings, school: School
) -> None:
    web = WebSettings(secure_cookies=False, sign_in_attempts=3)
    with TestClient(create_app(settings, web), follow_redirects=False) as client:
        for _ in range(3):
            assert sign_in(client, "teacher", "not the password") == 401
        assert sign_in(client, "teacher") == 429


def test_a_form_without_its_csrf_token_is_refused_and_records_nothing(
    client: TestClient, settings: Settings, school: School
) -> None:
    report_incident(settings, school, "inc-csrf")
    assert sign_in(client, "officer") == 303
    response = client.post("/incidents/inc-csrf/acknowledge", data={})
    assert response.status_code == 403
    assert "CSRF" in response.text
    forged = client.post("/incidents/inc-csrf/acknowledge", data={"csrf_token": "forged"})
    assert forged.status_code == 403
    assert "сообщено" in client.get("/incidents/inc-csrf").text
    assert (
        client.post("/sign-in", data={"login": "officer", "password": PASSWORD}).status_code == 403
    )


def test_security_staff_take_an_incident_from_report_to_resolution_as_themselves(
    client: TestClient, settings: Settings, school: School
) -> None:
    report_incident(settings, school, "inc-1")
    assert sign_in(client, "officer") == 303
    register = client.get("/incidents?show=open")
    assert "inc-1" in register.text
    page = client.get("/incidents/inc-1")
    csrf = csrf_of(page.text)
    assert "Происхождение учётной записи" in page.text
    steps = [
        ("acknowledge", {}),
        ("contain", {"step": "sessions-revoked", "note": "все сеансы завершены"}),
        ("resolve", {"findings": "пароль был у соседа по парте; сменён"}),
    ]
    for act, fields in steps:
        response = client.post(f"/incidents/inc-1/{act}", data={"csrf_token": csrf, **fields})
        assert response.status_code == 303, response.text
    page = client.get("/incidents/inc-1")
    assert "рассмотрено" in page.text
    assert school.person("sec-1") in page.text  # the actor is the signed-in officer
    assert "inc-1" not in client.get("/incidents?show=open").text
    assert "inc-1" in client.get("/incidents?show=all").text


def test_an_unacknowledged_report_is_overdue_after_the_configured_deadline(
    settings: Settings, school: School
) -> None:
    report_incident(settings, school, "inc-late")
    web = WebSettings(secure_cookies=False, ack_deadline_hours=0)
    with TestClient(create_app(settings, web), follow_redirects=False) as client:
        sign_in(client, "officer")
        assert "inc-late" in client.get("/incidents?show=overdue").text
    web = WebSettings(secure_cookies=False, ack_deadline_hours=24)
    with TestClient(create_app(settings, web), follow_redirects=False) as client:
        sign_in(client, "officer")
        assert "inc-late" not in client.get("/incidents?show=overdue").text


def test_a_class_teachers_removal_shows_up_in_the_audit_trail_under_their_name(
    client: TestClient, school: School
) -> None:
    assert sign_in(client, "class-teacher") == 303
    page = client.get("/moderate")
    assert page.status_code == 200
    assert "class-5a|2.5" in page.text
    assert "class-7b" not in page.text, "the picker offers only chats under their control"
    response = client.post(
        "/moderate",
        data={
            "csrf_token": csrf_of(page.text),
            "chat": "class-5a|2.5",
            "act": "remove-content",
            "ground": "4.2.4",
            "member": school.person("s-02"),
            "message_id": "class-5a-msg-web-1",
            "reason": "Оскорбление одноклассника",
        },
    )
    assert response.status_code == 303, response.text
    trail = client.get("/audit?chat=class-5a")
    assert "Оскорбление одноклассника" in trail.text
    assert f"{school.person('t-1')} (class-teacher)" in trail.text
    assert f"web-console/{school.id}" in trail.text  # the console vouched for the act
    assert "сообщение удалено" in trail.text  # the action in the order's words


def test_a_teacher_is_refused_a_chat_they_do_not_control(
    client: TestClient, school: School
) -> None:
    assert sign_in(client, "class-teacher") == 303
    page = client.get("/moderate")
    response = client.post(
        "/moderate",
        data={
            "csrf_token": csrf_of(page.text),
            "chat": "class-7b|2.5",
            "act": "block-member",
            "ground": "4.2.4",
            "member": school.person("s-10"),
            "reason": "не мой чат",
        },
    )
    assert response.status_code == 403
    assert client.get("/audit?chat=class-7b").status_code == 403


def test_nobody_sees_another_school(client: TestClient, settings: Settings, school: School) -> None:
    report_incident(settings, school, "inc-mine")
    assert sign_in(client, "other-admin") == 303
    assert client.get("/incidents/inc-mine").status_code == 404
    assert "inc-mine" not in client.get("/incidents?show=all").text
    trail = client.get("/audit")
    assert trail.status_code == 200
    assert school.id not in trail.text


def test_students_and_parents_have_no_access(client: TestClient) -> None:
    assert sign_in(client, "student") == 303
    assert client.get("/incidents").status_code == 403
    assert client.get("/audit").status_code == 403


def test_roles_reach_only_their_pages(client: TestClient) -> None:
    assert sign_in(client, "officer") == 303
    assert client.get("/moderate").status_code == 403
    assert client.get("/invitations").status_code == 403
    assert client.get("/statistics").status_code == 403
    client.cookies.clear()
    assert sign_in(client, "class-teacher") == 303
    assert client.get("/incidents").status_code == 403
    assert client.get("/invitations").status_code == 403


def test_the_export_holds_exactly_the_rows_the_page_shows(client: TestClient) -> None:
    assert sign_in(client, "admin") == 303
    query = "ground=4.2.4"
    page = client.get(f"/audit?{query}").text
    shown = [int(p) for p in _positions(page)]
    assert shown
    exported = json.loads(client.get(f"/audit.json?{query}").text)
    assert [row["position"] for row in exported] == shown
    rows = list(csv.DictReader(io.StringIO(client.get(f"/audit.csv?{query}").text)))
    assert [int(row["position"]) for row in rows] == shown
    assert all(row["ground"] == "4.2.4" for row in rows)


def test_an_administrator_annuls_a_stale_invitation_and_sees_the_statistics(
    client: TestClient, school: School
) -> None:
    assert sign_in(client, "admin") == 303
    page = client.get("/invitations")
    assert page.status_code == 200
    ids = _invitation_ids(page.text)
    assert ids, "the sample school's week leaves unused links"
    response = client.post(f"/invitations/{ids[0]}/annul", data={"csrf_token": csrf_of(page.text)})
    assert response.status_code == 303, response.text
    assert ids[0] not in _invitation_ids(client.get("/invitations").text)
    assert client.get("/statistics").status_code == 200
    foreign = client.post(
        "/invitations/no-such-link/annul", data={"csrf_token": csrf_of(page.text)}
    )
    assert foreign.status_code == 404


def test_the_console_speaks_russian_first_and_english_on_request(client: TestClient) -> None:
    assert sign_in(client, "officer") == 303
    assert "Реестр сообщений" in client.get("/incidents").text
    client.get("/language?to=en")
    assert "Register of unauthorised access reports" in client.get("/incidents").text


def _positions(html: str) -> list[str]:
    import re

    return re.findall(r'data-position="(\d+)"', html)


def _invitation_ids(html: str) -> list[str]:
    import re

    return re.findall(r'action="/invitations/([^/"]+)/annul"', html)


def test_every_console_setting_is_documented_in_the_readme() -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## The web console", 1)[1].split("\n## ", 1)[0]
    for name in WebSettings.model_fields:
        assert f"`{name.upper()}`" in section, name


def test_one_address_guessing_across_many_logins_is_throttled_too(
    settings: Settings, school: School
) -> None:
    web = WebSettings(secure_cookies=False, sign_in_attempts=2)
    with TestClient(create_app(settings, web), follow_redirects=False) as client:
        for n in range(8):
            assert sign_in(client, f"guess-{n}", "a guessed password") == 401
        assert sign_in(client, "admin") == 429
