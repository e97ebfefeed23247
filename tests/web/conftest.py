"""A sample school on the store under test, console accounts for its staff, and a console."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient
from web_helpers import LOGINS, PASSWORD, School, record

from sferum_audit.application.sample_school import sample_school
from sferum_audit.application.settings import Settings
from sferum_audit.web.accounts import Accounts
from sferum_audit.web.app import create_app
from sferum_audit.web.settings import WebSettings


@pytest.fixture
def school(settings: Settings, unique: str) -> School:
    """Two sample schools; console accounts for staff (and a student) of the first, and an
    administrator of the second (login ``other-admin``)."""
    school = School(f"w{unique}", f"o{unique}")
    record(settings, sample_school(school.id) + sample_school(school.other, seed=7))
    accounts = Accounts(settings)
    try:
        for login, local in LOGINS.items():
            accounts.create(
                login=login,
                school_id=school.id,
                person_id=school.person(local),
                password=PASSWORD,
                created_by=school.person("adm-1"),
            )
        accounts.create(
            login="other-admin",
            school_id=school.other,
            person_id=f"{school.other}-adm-1",
            password=PASSWORD,
            created_by=f"{school.other}-adm-1",
        )
    finally:
        accounts.close()
    return school


@pytest.fixture
def web_settings() -> WebSettings:
    return WebSettings(secure_cookies=False, time_zone="Europe/Kaliningrad")


@pytest.fixture
def client(settings: Settings, school: School, web_settings: WebSettings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, web_settings), follow_redirects=False) as test_client:
        yield test_client
