"""The console in a real browser: Debian's chromium driven by Playwright (never
``playwright install``: the browser is the system's ``/usr/bin/chromium``).

Screenshots of the main pages are kept in ``build/screenshots/`` for a reviewer.
"""

from __future__ import annotations

import csv
import io
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from web_helpers import PASSWORD, School, report_incident

from sferum_audit.application.settings import Settings
from sferum_audit.web.app import create_app
from sferum_audit.web.settings import WebSettings

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="browser tests need Debian's chromium: apt-get install -y chromium",
    ),
]


@pytest.fixture
def settings(sqlite_settings: Settings) -> Settings:
    """The browser tests run on the embedded store only (the TestClient tests cover both)."""
    return sqlite_settings


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def base_url(settings: Settings, school: School) -> Iterator[str]:
    import uvicorn

    port = _free_port()
    web = WebSettings(secure_cookies=False, time_zone="Europe/Kaliningrad")
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings, web), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def page(base_url: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(base_url=base_url, accept_downloads=True)
        try:
            yield context.new_page()
        finally:
            context.close()
            browser.close()


def shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def sign_in(page: Any, login: str) -> None:
    page.goto("/sign-in")
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", PASSWORD)
    page.click("#sign-in")
    page.wait_for_load_state()


def test_a_person_signs_in_and_out_in_the_browser(page: Any, school: School) -> None:
    page.goto("/sign-in")
    shot(page, "sign-in")
    sign_in(page, "officer")
    assert page.url.endswith("/incidents")
    assert school.person("sec-1") in page.inner_text("#who") or page.inner_text("#who")
    page.click("#sign-out")
    page.wait_for_load_state()
    assert page.url.endswith("/sign-in")
    page.goto("/incidents")
    assert page.url.endswith("/sign-in")


def test_a_security_officer_takes_an_incident_from_report_to_resolution(
    page: Any, settings: Settings, school: School
) -> None:
    report_incident(settings, school, "inc-browser")
    sign_in(page, "officer")
    page.goto("/incidents?show=open")
    shot(page, "incidents")
    page.click("text=inc-browser")
    page.wait_for_load_state()
    page.click("#acknowledge")
    page.wait_for_load_state()
    page.select_option("select[name=step]", "sessions-revoked")
    page.fill("input[name=note]", "все сеансы завершены")
    page.click("#contain")
    page.wait_for_load_state()
    page.fill("textarea[name=findings]", "пароль знал сосед по парте; сменён")
    page.click("#resolve")
    page.wait_for_load_state()
    shot(page, "incident")
    assert page.inner_text("#state") == "рассмотрено"
    assert "все сеансы завершены" in page.inner_text("#timeline")


def test_a_class_teachers_removal_shows_up_in_the_audit_trail(page: Any, school: School) -> None:
    sign_in(page, "class-teacher")
    page.goto("/moderate")
    options = page.eval_on_selector_all("#chat option", "els => els.map(e => e.value)")
    assert "class-5a|2.5" in options
    assert not any(o.startswith("class-7b|") for o in options)
    page.select_option("#chat", "class-5a|2.5")
    page.select_option("#act", "remove-content")
    page.select_option("select[name=ground]", "4.2.4")
    page.fill("#member", school.person("s-02"))
    page.fill("#message_id", "class-5a-msg-browser")
    page.fill("#reason", "Оскорбление одноклассника в браузере")
    shot(page, "moderate")
    page.click("#record")
    page.wait_for_load_state()
    assert "/audit" in page.url
    shot(page, "audit")
    assert "Оскорбление одноклассника в браузере" in page.inner_text("#audit")


def test_a_teacher_is_refused_a_chat_they_do_not_control(page: Any) -> None:
    sign_in(page, "class-teacher")
    response = page.goto("/audit?chat=class-7b")
    assert response.status == 403
    page.goto("/moderate")
    page.eval_on_selector("#chat option", "e => e.value = 'class-7b|2.5'")
    page.fill("#member", "someone")
    page.fill("#reason", "не мой чат")
    with page.expect_navigation() as navigation:
        page.click("#record")
    assert navigation.value.status == 403


def test_another_schools_page_is_not_found(page: Any, settings: Settings, school: School) -> None:
    report_incident(settings, school, "inc-other")
    sign_in(page, "other-admin")
    response = page.goto("/incidents/inc-other")
    assert response.status == 404


def test_a_form_without_its_csrf_token_is_refused(
    page: Any, settings: Settings, school: School
) -> None:
    report_incident(settings, school, "inc-csrf")
    sign_in(page, "officer")
    page.goto("/incidents/inc-csrf")
    page.eval_on_selector_all("input[name=csrf_token]", "els => els.forEach(e => e.remove())")
    with page.expect_navigation() as navigation:
        page.click("#acknowledge")
    assert navigation.value.status == 403
    assert "CSRF" in page.inner_text("#error")


def test_the_export_matches_the_page(page: Any) -> None:
    sign_in(page, "admin")
    page.goto("/audit")
    page.fill("input[name=ground]", "4.2.4")
    page.click("#filter")
    page.wait_for_url("**/audit?*ground=4.2.4*")
    page.wait_for_selector("#audit")
    shot(page, "audit-filtered")
    shown = page.eval_on_selector_all(
        "#audit tr[data-position]", "rows => rows.map(r => r.dataset.position)"
    )
    assert shown
    with page.expect_download() as download:
        page.click("#export-csv")
    text = Path(download.value.path()).read_text(encoding="utf-8")
    exported = [row["position"] for row in csv.DictReader(io.StringIO(text))]
    assert exported == shown
    page.goto("/invitations")
    shot(page, "invitations")
    page.goto("/statistics")
    shot(page, "statistics")
