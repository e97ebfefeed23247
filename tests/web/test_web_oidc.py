"""OpenID Connect sign-in against a provider the tests start themselves."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from oidc_provider import CLIENT_ID, CLIENT_SECRET, StartedProvider, running_provider
from starlette.testclient import TestClient
from web_helpers import School

from sferum_audit.application.settings import Settings
from sferum_audit.web.accounts import Accounts
from sferum_audit.web.app import create_app
from sferum_audit.web.settings import WebSettings


@pytest.fixture
def settings(sqlite_settings: Settings) -> Settings:
    """The provider flow does not depend on the store; the embedded one is enough."""
    return sqlite_settings


@pytest.fixture
def provider() -> Iterator[StartedProvider]:
    with running_provider() as started:
        yield started


@pytest.fixture
def oidc_client(
    settings: Settings, school: School, provider: StartedProvider
) -> Iterator[TestClient]:
    web = WebSettings(
        secure_cookies=False,
        oidc_issuer=provider.issuer,
        oidc_client_id=CLIENT_ID,
        oidc_client_secret=CLIENT_SECRET,
        oidc_redirect_url="http://testserver/sign-in/oidc/callback",
    )
    with TestClient(create_app(settings, web), follow_redirects=False) as client:
        yield client


def through_provider(client: TestClient) -> httpx.Response:
    """The browser's round trip: to the provider, and back to the console's callback."""
    to_provider = client.get("/sign-in/oidc")
    assert to_provider.status_code == 303
    back = httpx.get(to_provider.headers["location"], follow_redirects=False)
    location = urlsplit(back.headers["location"])
    return client.get(f"{location.path}?{location.query}")


def test_a_person_the_provider_vouches_for_is_signed_in_to_their_account(
    oidc_client: TestClient, settings: Settings
) -> None:
    assert "/sign-in/oidc" in oidc_client.get("/sign-in").text
    response = through_provider(oidc_client)
    assert response.status_code == 200, response.text
    assert oidc_client.get("/incidents").status_code == 200
    accounts = Accounts(settings)
    try:
        signed_in = [e for e in accounts.history("officer") if e["event"].endswith("SignedIn")]
    finally:
        accounts.close()
    assert signed_in[-1]["method"] == "oidc"


@pytest.mark.parametrize("tamper", ["state", "nonce", "audience", "key"])
def test_an_answer_that_does_not_prove_who_signs_in_is_refused(
    oidc_client: TestClient, provider: StartedProvider, tamper: str
) -> None:
    provider.tamper = tamper
    response = through_provider(oidc_client)
    assert response.status_code == 403
    assert "sferum_session" not in response.headers.get("set-cookie", "")
    assert oidc_client.get("/incidents").status_code == 303


def test_a_person_without_a_console_account_is_refused(
    oidc_client: TestClient, provider: StartedProvider
) -> None:
    provider.user = "nobody-here"
    response = through_provider(oidc_client)
    assert response.status_code == 401
    assert oidc_client.get("/incidents").status_code == 303
