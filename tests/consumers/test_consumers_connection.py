"""The service's own NATS credentials: from settings or files, never shown.

Each way to authenticate (credentials file, nkey seed file, user and password, token, TLS)
comes from an ``SFERUM_AUDIT_NATS_*`` setting, and no secret reaches a log line or an
error message, even when it was written into the URL.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from sferum_audit.application.settings import Settings
from sferum_audit.consumers.connection import (
    NatsCredentialsError,
    connect_options,
    redact_text,
    redact_url,
    redact_urls,
)
from sferum_audit.consumers.embedded_nats import EmbeddedNats
from sferum_audit.consumers.settings import PipelineSettings


def options(**values: object) -> PipelineSettings:
    return PipelineSettings(instance_id="t", **values)  # type: ignore[arg-type]


def test_a_password_or_token_in_a_url_is_never_shown() -> None:
    assert redact_url("nats://svc:hunter2@nats:4222") == "nats://svc:***@nats:4222"
    assert redact_url("tls://s3cr3t-token@nats:4222") == "tls://***@nats:4222"
    assert redact_url("nats://nats:4222") == "nats://nats:4222"
    both = redact_urls("nats://a:pw1@n1:4222, nats://a:pw2@n2:4222")
    assert "pw1" not in both
    assert "pw2" not in both
    text = "nats: no servers available for connection nats://a:pw1@n1:4222 (pw1)"
    assert "pw1" not in redact_text(text, "nats://a:pw1@n1:4222")


def test_each_authentication_comes_from_its_own_setting(tmp_path: Path) -> None:
    creds = tmp_path / "service.creds"
    creds.write_text("-----BEGIN NATS USER JWT-----\n...\n")
    assert connect_options(options(nats_creds_file=creds)) == {"user_credentials": str(creds)}
    seed = tmp_path / "service.nk"
    seed.write_text("SUAEXAMPLE\n")
    assert connect_options(options(nats_nkey_seed_file=seed)) == {"nkeys_seed": str(seed)}
    password = tmp_path / "password"
    password.write_text("from-a-file\n")
    assert connect_options(options(nats_user="svc", nats_password_file=password)) == {
        "user": "svc",
        "password": "from-a-file",
    }
    assert connect_options(options(nats_user="svc", nats_password="pw")) == {
        "user": "svc",
        "password": "pw",
    }
    assert connect_options(options(nats_token="tok")) == {"token": "tok"}
    assert connect_options(options()) == {}


def test_tls_with_a_ca_turns_on_verified_tls(tmp_path: Path) -> None:
    ca = Path(ssl.get_default_verify_paths().cafile or "")
    if not ca.is_file():
        pytest.skip("no system CA bundle to stand in for a private CA")
    tls = connect_options(options(nats_tls_ca_file=ca))["tls"]
    assert isinstance(tls, ssl.SSLContext)
    assert tls.verify_mode == ssl.CERT_REQUIRED
    with pytest.raises(NatsCredentialsError, match="SFERUM_AUDIT_NATS_TLS_CA_FILE"):
        connect_options(options(nats_tls_ca_file=tmp_path / "missing.pem"))


def test_two_authentications_or_a_password_without_a_user_are_refused() -> None:
    with pytest.raises(ValidationError, match="choose one NATS authentication"):
        options(nats_user="svc", nats_token="tok")
    with pytest.raises(ValidationError, match="needs SFERUM_AUDIT_NATS_USER"):
        options(nats_password="pw")


def test_a_secret_setting_is_not_shown_by_the_settings_or_their_errors() -> None:
    settings = options(nats_user="svc", nats_password="hunter2")
    assert "hunter2" not in repr(settings)
    with pytest.raises(ValidationError) as refused:
        options(nats_token="hunter2", nats_user="svc", nats_password="hunter2")
    assert "hunter2" not in str(refused.value)


def test_metrics_listen_on_loopback_unless_configured() -> None:
    assert options().metrics_host == "127.0.0.1"


def test_forget_and_dead_letters_do_not_print_the_urls_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sferum_audit.cli.main import app

    url = "nats://svc:hunter2@127.0.0.1:1"  # nothing listens on port 1
    monkeypatch.setenv("SFERUM_AUDIT_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(app, ["dead-letters", "--nats-url", url])
    assert result.exit_code != 0
    shown = result.output + repr(result.exception)
    assert "hunter2" not in shown
    import asyncio

    from sferum_audit.cli.integrity_commands import _nats_eraser

    with pytest.raises(Exception) as raised:  # forget's NATS step, as forget runs it
        asyncio.run(_nats_eraser(url).erase_naming("person-1", []))
    assert "hunter2" not in str(raised.value)
    assert "127.0.0.1:1" in str(raised.value)


@pytest.mark.nats
async def test_the_pipeline_starting_line_shows_the_url_without_its_password(
    nats_server: EmbeddedNats, sqlite_settings: Settings, unique: str
) -> None:
    from consumer_helpers import fast_options
    from structlog.testing import capture_logs

    from sferum_audit.consumers.service import Pipeline

    # A server without authorization accepts (and ignores) the credentials in the URL.
    url = nats_server.url.replace("nats://", "nats://svc:hunter2@")
    with capture_logs() as logs:
        async with Pipeline(sqlite_settings, fast_options(url, f"a-{unique}"), views=False):
            pass
    starting = next(e for e in logs if e["event"] == "pipeline starting")
    assert starting["nats"] == url.replace("hunter2", "***")
    assert "hunter2" not in repr(logs)


async def test_a_stop_while_nats_is_still_unreachable_ends_the_pipeline(
    sqlite_settings: Settings, unique: str
) -> None:
    """SIGTERM sets ``stop``: a serve waiting for a NATS that never comes must end, not go
    on retrying the first connection forever (it ignored SIGTERM for 10 minutes)."""
    import asyncio
    import socket

    from consumer_helpers import fast_options

    from sferum_audit.consumers.service import Pipeline

    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    pipeline = Pipeline(
        sqlite_settings, fast_options(f"nats://127.0.0.1:{port}", f"u-{unique}"), views=False
    )
    stop = asyncio.Event()
    running = asyncio.ensure_future(pipeline.run_until(stop))
    await asyncio.sleep(0.5)
    assert not running.done()
    stop.set()
    # A bound so a regression fails instead of hanging the suite; not a speed claim.
    await asyncio.wait_for(running, timeout=60)
