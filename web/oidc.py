"""OpenID Connect sign-in: the authorization code flow with PKCE, for schools or districts
that run an identity provider (``SFERUM_AUDIT_WEB_OIDC_*``).

``/sign-in/oidc`` sends the browser to the provider with a fresh ``state``, ``nonce`` and
PKCE verifier kept in an HttpOnly cookie (``SameSite=Lax``: it must come back on the
provider's redirect, a cross-site navigation). ``/sign-in/oidc/callback`` checks the state,
redeems the code at the token endpoint with the client secret and the verifier, and
verifies the ID token (signature by a key of the provider's JWKS, issuer, audience,
expiry, nonce). The claim ``OIDC_LOGIN_CLAIM`` names the console account; the provider
proves who the person is, the account (made by an administrator) says where they work.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Any, Final
from urllib.parse import urlencode

import httpx
import jwt
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from sferum_audit.web.accounts import SignInRefused
from sferum_audit.web.settings import WebSettings

FLOW_COOKIE: Final = "sferum_oidc"
ALGORITHMS: Final = ["RS256", "ES256", "EdDSA"]


class OidcError(Exception):
    """The provider's answer does not prove who signs in."""


class Provider:
    """The configured provider: its discovery document and keys, fetched when first needed."""

    def __init__(self, web: WebSettings) -> None:
        if not (web.oidc_issuer and web.oidc_client_id and web.oidc_redirect_url):
            raise OidcError("OpenID Connect needs OIDC_ISSUER, OIDC_CLIENT_ID, OIDC_REDIRECT_URL")
        self.web = web
        self.issuer = web.oidc_issuer.rstrip("/")
        self._metadata: dict[str, Any] | None = None

    def metadata(self) -> dict[str, Any]:
        if self._metadata is None:
            url = f"{self.issuer}/.well-known/openid-configuration"
            found: dict[str, Any] = httpx.get(url, timeout=10).raise_for_status().json()
            if found.get("issuer", "").rstrip("/") != self.issuer:
                raise OidcError("the discovery document names another issuer")
            self._metadata = found
        return self._metadata

    def authorization_url(self, state: str, nonce: str, verifier: str) -> str:
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        query = {
            "response_type": "code",
            "client_id": self.web.oidc_client_id,
            "redirect_uri": self.web.oidc_redirect_url,
            "scope": "openid profile",
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge.decode().rstrip("="),
            "code_challenge_method": "S256",
        }
        return f"{self.metadata()['authorization_endpoint']}?{urlencode(query)}"

    def login_of(self, code: str, verifier: str, nonce: str) -> str:
        """The account login the provider vouches for, from a verified ID token."""
        meta = self.metadata()
        response = httpx.post(
            meta["token_endpoint"],
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self.web.oidc_redirect_url,
                "client_id": self.web.oidc_client_id,
                "client_secret": self.web.oidc_client_secret or "",
                "code_verifier": verifier,
            },
            timeout=10,
        )
        if response.status_code != 200 or "id_token" not in response.json():
            raise OidcError(f"the token endpoint answered {response.status_code}")
        id_token = response.json()["id_token"]
        keys = jwt.PyJWKSet.from_dict(httpx.get(meta["jwks_uri"], timeout=10).json())
        kid = jwt.get_unverified_header(id_token).get("kid")
        key = next((k for k in keys.keys if kid is None or k.key_id == kid), None)
        if key is None:
            raise OidcError("the ID token is signed by a key the provider does not publish")
        try:
            claims = jwt.decode(
                id_token,
                key=key,
                algorithms=ALGORITHMS,
                audience=self.web.oidc_client_id,
                issuer=meta["issuer"],
                options={"require": ["exp", "iat", "sub", "nonce"]},
            )
        except jwt.PyJWTError as error:
            raise OidcError(f"the ID token does not verify: {error}") from None
        if not secrets.compare_digest(str(claims["nonce"]), nonce):
            raise OidcError("the ID token's nonce is not this sign-in's")
        login = claims.get(self.web.oidc_login_claim)
        if not isinstance(login, str) or not login:
            raise OidcError(f"the ID token has no {self.web.oidc_login_claim}")
        return login


def _provider(request: Request) -> Provider | None:
    console = request.app.state.console
    if not console.web.oidc_issuer:
        return None
    provider: Provider | None = getattr(request.app.state, "oidc", None)
    if provider is None:
        provider = Provider(console.web)
        request.app.state.oidc = provider
    return provider


async def start(request: Request) -> Response:
    provider = _provider(request)
    if provider is None:
        return HTMLResponse("OpenID Connect is not configured", status_code=404)
    state, nonce, verifier = (secrets.token_urlsafe(32) for _ in range(3))
    response = RedirectResponse(provider.authorization_url(state, nonce, verifier), 303)
    response.set_cookie(
        FLOW_COOKIE,
        f"{state}.{nonce}.{verifier}",
        max_age=600,
        httponly=True,
        samesite="lax",
        secure=provider.web.secure_cookies,
    )
    return response


async def callback(request: Request) -> Response:
    from sferum_audit.web.app import SESSION_COOKIE, client_of, render

    provider = _provider(request)
    if provider is None:
        return HTMLResponse("OpenID Connect is not configured", status_code=404)
    state, _, rest = (request.cookies.get(FLOW_COOKIE) or "").partition(".")
    nonce, _, verifier = rest.partition(".")
    given = request.query_params.get("state", "")
    if not state or not verifier or not secrets.compare_digest(state, given):
        return render(request, "error.html", 403, message="OpenID Connect: state mismatch")
    console = request.app.state.console
    try:
        login = provider.login_of(request.query_params.get("code", ""), verifier, nonce)
        token, _ = console.accounts.sign_in_external(
            login, client=client_of(request), method="oidc"
        )
    except (OidcError, httpx.HTTPError) as error:
        return render(request, "error.html", 403, message=f"OpenID Connect: {error}")
    except SignInRefused as error:
        return render(request, "error.html", 401, message=error.message)
    # A page, not a redirect: the Strict session cookie is sent on the next navigation,
    # which starts here, on the console's own site.
    response = render(request, "signed_in.html")
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(console.web.session_hours * 3600),
        httponly=True,
        samesite="strict",
        secure=console.web.secure_cookies,
    )
    response.delete_cookie(FLOW_COOKIE)
    return response
