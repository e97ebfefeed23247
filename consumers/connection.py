"""How the service proves who it is to NATS, and how NATS addresses appear in logs.

The credentials come from ``SFERUM_AUDIT_NATS_*`` settings or files
(``consumers.settings.PipelineSettings``), never only from the URL: a credentials file
(user JWT + nkey seed), an nkey seed file, a user and password, or a token, plus TLS (a
CA, and a client certificate for mutual TLS). ``nats_security`` turns them into one
FastStream security object; ``connect_options`` gives the same as ``nats.connect``
keyword arguments, so the plain client and the broker authenticate alike.

``redact_url`` replaces a password or token written into a URL by ``***``: every log
line and error message that names a server goes through it, so a secret never reaches a
log, an error or a metric.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from faststream.nats.security import (
    NatsCredentials,
    NatsNKey,
    NatsSecurity,
    NatsToken,
    NatsUserPassword,
    parse_security,
)

from sferum_audit.consumers.settings import PipelineSettings

REDACTED = "***"


class NatsCredentialsError(ValueError):
    """A configured credentials or TLS file cannot be read (the message names the setting,
    never the secret)."""


def redact_url(url: str) -> str:
    """``url`` with any password (``user:pw@``) or token (``token@``) shown as ``***``."""
    parts = urlsplit(url.strip())
    if "@" not in parts.netloc:
        return url.strip()
    userinfo, _, host = parts.netloc.rpartition("@")
    user, colon, _password = userinfo.partition(":")
    shown = f"{user}:{REDACTED}" if colon else REDACTED
    return urlunsplit(parts._replace(netloc=f"{shown}@{host}"))


def redact_urls(urls: str | Iterable[str]) -> str:
    """Several URLs (a list or one comma-separated string), redacted, comma-separated."""
    items = urls.split(",") if isinstance(urls, str) else list(urls)
    return ",".join(redact_url(item) for item in items if item.strip())


def url_secrets(urls: str | Iterable[str]) -> list[str]:
    """The passwords and tokens written into ``urls``."""
    items = urls.split(",") if isinstance(urls, str) else list(urls)
    found = []
    for item in items:
        netloc = urlsplit(item.strip()).netloc
        if "@" in netloc:
            userinfo = netloc.rpartition("@")[0]
            user, colon, password = userinfo.partition(":")
            found.append(password if colon else user)
    return [secret for secret in found if secret]


def settings_secrets(settings: PipelineSettings) -> list[str]:
    """The secrets given in settings themselves (not in files), and those in the URL."""
    found = url_secrets(settings.nats_url)
    for secret in (settings.nats_password, settings.nats_token):
        if secret is not None and secret.get_secret_value():
            found.append(secret.get_secret_value())
    return found


def redact_text(text: str, urls: str | Iterable[str] = (), secrets: Iterable[str] = ()) -> str:
    """``text`` (an error message, say) with every secret of ``urls`` and ``secrets``
    replaced by ``***``."""
    for secret in sorted({*url_secrets(urls), *secrets}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def _first_line(path: Path, setting: str) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise NatsCredentialsError(
            f"{setting}: cannot read {path} ({error.strerror or type(error).__name__})"
        ) from None
    line = text.strip().splitlines()[0].strip() if text.strip() else ""
    if not line:
        raise NatsCredentialsError(f"{setting}: {path} is empty")
    return line


def _readable(path: Path, setting: str) -> str:
    if not path.is_file():
        raise NatsCredentialsError(f"{setting}: no file at {path}")
    return str(path)


def tls_context(settings: PipelineSettings) -> ssl.SSLContext | None:
    """A client TLS context when any TLS file is set (server certificates verified)."""
    ca, cert, key = (
        settings.nats_tls_ca_file,
        settings.nats_tls_cert_file,
        settings.nats_tls_key_file,
    )
    if not (ca or cert or key):
        return None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    try:
        if ca:
            context.load_verify_locations(cafile=_readable(ca, "SFERUM_AUDIT_NATS_TLS_CA_FILE"))
        if cert and key:
            context.load_cert_chain(
                _readable(cert, "SFERUM_AUDIT_NATS_TLS_CERT_FILE"),
                _readable(key, "SFERUM_AUDIT_NATS_TLS_KEY_FILE"),
            )
    except ssl.SSLError as error:
        raise NatsCredentialsError(f"NATS TLS files not usable: {error.reason}") from None
    return context


def nats_security(settings: PipelineSettings) -> NatsSecurity | None:
    """The FastStream security object of the configured authentication (and TLS)."""
    tls = tls_context(settings)
    if settings.nats_creds_file:
        path = _readable(settings.nats_creds_file, "SFERUM_AUDIT_NATS_CREDS_FILE")
        return NatsCredentials.from_file(path, ssl_context=tls)
    if settings.nats_nkey_seed_file:
        path = _readable(settings.nats_nkey_seed_file, "SFERUM_AUDIT_NATS_NKEY_SEED_FILE")
        return NatsNKey.from_file(path, ssl_context=tls)
    if settings.nats_user:
        password = ""
        if settings.nats_password_file:
            password = _first_line(settings.nats_password_file, "SFERUM_AUDIT_NATS_PASSWORD_FILE")
        elif settings.nats_password:
            password = settings.nats_password.get_secret_value()
        return NatsUserPassword(settings.nats_user, password, ssl_context=tls)
    token = None
    if settings.nats_token_file:
        token = _first_line(settings.nats_token_file, "SFERUM_AUDIT_NATS_TOKEN_FILE")
    elif settings.nats_token:
        token = settings.nats_token.get_secret_value()
    if token:
        return NatsToken(token, ssl_context=tls)
    if tls is not None:
        return NatsSecurity(ssl_context=tls)
    return None


def connect_options(settings: PipelineSettings) -> dict[str, Any]:
    """``nats.connect`` keyword arguments for the configured authentication and TLS."""
    options = parse_security(nats_security(settings))
    return {name: value for name, value in options.items() if value not in (None, False)}
