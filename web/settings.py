"""The console's settings, read from ``SFERUM_AUDIT_WEB_*`` like every other setting."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class WebSettings(BaseSettings):
    """Settings of ``sferum-audit web`` (environment ``SFERUM_AUDIT_WEB_<NAME>``)."""

    model_config = SettingsConfigDict(env_prefix="SFERUM_AUDIT_WEB_", extra="ignore")

    host: str = Field(default="127.0.0.1", description="Address the console listens on.")
    port: int = Field(default=8080, description="Port the console listens on.")
    secure_cookies: bool = Field(
        default=True,
        description="Send the session cookie only over HTTPS (Secure); set false only for "
        "plain-http on localhost.",
    )
    session_hours: float = Field(default=8.0, description="How long a session lasts.")
    sign_in_attempts: int = Field(
        default=5, description="Failed sign-ins per login within the window before throttling."
    )
    sign_in_window_seconds: int = Field(
        default=900, description="The throttling window for failed sign-ins, in seconds."
    )
    ack_deadline_hours: float = Field(
        default=24.0,
        description="Hours within which security staff acknowledge a report (4.2.2); later "
        "ones are overdue.",
    )
    stale_invitation_days: float = Field(
        default=7.0, description="Days after which an unused invitation link is stale (2.3)."
    )
    time_zone: str | None = Field(
        default=None,
        description="The school's time zone for the pages; unset: SFERUM_AUDIT_TIME_ZONE, the "
        "one the CLI's listings use (default Europe/Kaliningrad).",
    )
    language: Literal["ru", "en"] = Field(
        default="ru", description="Language of the pages unless the person picks another."
    )
    page_size: int = Field(default=200, description="Rows per audit trail page.")
    oidc_issuer: str | None = Field(
        default=None,
        description="OpenID Connect issuer URL of the school's or district's identity provider; "
        "unset: no OpenID Connect sign-in.",
    )
    oidc_client_id: str | None = Field(default=None, description="The console's client id there.")
    oidc_client_secret: str | None = Field(
        default=None, description="The console's client secret there."
    )
    oidc_redirect_url: str | None = Field(
        default=None,
        description="The console's callback URL registered with the provider "
        "(https://<console>/sign-in/oidc/callback).",
    )
    oidc_login_claim: str = Field(
        default="preferred_username",
        description="The ID token claim whose value is the console account's login.",
    )
