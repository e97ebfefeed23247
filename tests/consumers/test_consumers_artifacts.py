"""Committed artefacts of the pipeline stay true: the AsyncAPI document and docker-compose.yml.

The compose file is checked offline: parsed as YAML (PyYAML) for its services, health
checks, the ``cluster`` profile and the settings it passes; and, where a compose CLI is
installed, validated by it (``docker compose config -q`` or ``docker-compose config -q``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from sferum_audit.consumers.broker import asyncapi_json
from sferum_audit.consumers.settings import PipelineSettings
from sferum_audit.consumers.subjects import Subjects, decode_token, encode_token, partition_of

ROOT = Path(__file__).resolve().parents[2]
ASYNCAPI = ROOT / "docs" / "asyncapi.json"
COMPOSE = ROOT / "docker-compose.yml"


def test_the_committed_asyncapi_document_is_up_to_date() -> None:
    assert ASYNCAPI.read_text() == asyncapi_json(), (
        "docs/asyncapi.json is out of date; regenerate it with "
        "`python -m sferum_audit.consumers.broker > docs/asyncapi.json`"
    )


def test_the_asyncapi_document_names_every_subject_and_the_command_schema() -> None:
    document = json.loads(ASYNCAPI.read_text())
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert addresses == {
        "sferum.commands.{school_id}.{command_type}",
        "sferum.events.{school_id}.{aggregate}.{event}",
        "sferum.rejections.{school_id}.{command_type}",
        "sferum.dead-letters.{school_id}.{command_type}",
        "{reply_to}",
    }
    assert document["operations"]["commands"]["action"] == "receive"
    schemas = document["components"]["schemas"]
    assert {"RemoveContent", "ReportUnauthorisedAccess", "OutboundEvent"} <= set(schemas)


def test_the_asyncapi_document_requires_the_signature_headers_on_commands() -> None:
    document = json.loads(ASYNCAPI.read_text())
    headers = document["components"]["messages"]["commands:SubscribeMessage"]["headers"]
    assert {"Sferum-Source", "Sferum-Timestamp", "Sferum-Signature"} <= set(headers["required"])
    schemas = document["components"]["schemas"]
    assert {"RegisterSource", "RotateSource", "RevokeSource"} <= set(schemas)


def compose() -> dict[str, Any]:
    yaml = pytest.importorskip("yaml", reason="PyYAML is needed to parse docker-compose.yml")
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def test_compose_runs_nats_postgres_and_the_service_with_health_checks() -> None:
    services = compose()["services"]
    assert {"postgres", "nats", "sferum-audit"} <= set(services)
    for name, service in services.items():
        assert "healthcheck" in service, f"{name} has no health check"
    assert "-js" in services["nats"]["command"]
    service = services["sferum-audit"]
    assert service["build"] == "."
    assert service["command"] == ["serve"]
    assert service["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "nats": {"condition": "service_healthy"},
    }
    assert "profiles" not in service


def test_compose_has_a_cluster_profile_of_three_nats_nodes_with_three_replicas() -> None:
    services = compose()["services"]
    cluster = {name for name, s in services.items() if "cluster" in s.get("profiles", [])}
    assert cluster == {"nats-1", "nats-2", "nats-3", "sferum-audit-cluster"}
    for node in ("nats-1", "nats-2", "nats-3"):
        command = services[node]["command"]
        assert "-js" in command
        assert command[command.index("--server_name") + 1] == node
        assert command[command.index("--cluster_name") + 1] == "sferum"
        routes = command[command.index("--routes") + 1].split(",")
        assert len(routes) == 3
    environment = services["sferum-audit-cluster"]["environment"]
    assert environment["SFERUM_AUDIT_STREAM_REPLICAS"] == "3"
    assert len(environment["SFERUM_AUDIT_NATS_URL"].split(",")) == 3


def test_compose_passes_only_settings_the_service_knows() -> None:
    from sferum_audit.application.settings import Settings

    known = {f"SFERUM_AUDIT_{name.upper()}" for name in PipelineSettings.model_fields}
    known |= {f"SFERUM_AUDIT_{name.upper()}" for name in Settings.model_fields}
    for name in ("sferum-audit", "sferum-audit-cluster"):
        environment = compose()["services"][name]["environment"]
        assert set(environment) <= known, set(environment) - known
        assert "SFERUM_AUDIT_NATS_URL" in environment
        assert "SFERUM_AUDIT_DATABASE_URL" in environment
        # Every value is a valid setting.
        env = {
            key.removeprefix("SFERUM_AUDIT_").lower(): value for key, value in environment.items()
        }
        PipelineSettings(**{k: v for k, v in env.items() if k in PipelineSettings.model_fields})


def test_compose_is_valid_for_the_compose_cli() -> None:
    if shutil.which("docker-compose"):
        command = ["docker-compose", "-f", str(COMPOSE), "config", "-q"]
    elif (
        shutil.which("docker")
        and subprocess.run(
            ["docker", "compose", "version"],
            capture_output=True,
            check=False,
        ).returncode
        == 0
    ):
        command = ["docker", "compose", "-f", str(COMPOSE), "config", "-q"]
    else:
        pytest.skip("no compose CLI installed (docker compose / docker-compose); YAML checks ran")
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


# -- subjects -----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["sch-58", "a.b", "x*y>z", "50%", "с пробелом", "ё"])
def test_a_school_id_is_one_subject_token_and_comes_back(value: str) -> None:
    token = encode_token(value)
    assert "." not in token
    assert "*" not in token
    assert ">" not in token
    assert " " not in token
    assert decode_token(token) == value


def test_subjects_follow_the_documented_layout() -> None:
    subjects = Subjects()
    assert subjects.command("sch-58", "remove-content") == "sferum.commands.sch-58.remove-content"
    assert subjects.event("sch-58", "Chat.ContentRemoved") == (
        "sferum.events.sch-58.Chat.ContentRemoved"
    )
    assert subjects.event(None, "CommandReceipt.Recorded") == (
        "sferum.events._.CommandReceipt.Recorded"
    )
    assert subjects.rejection("a.b", None) == "sferum.rejections.a%2Eb._"
    assert subjects.split_stored("sferum.ingest.3.a%2Eb.create-chat") == ("a.b", "create-chat")


def test_partitions_spread_schools() -> None:
    counts = [0] * 8
    for n in range(800):
        counts[partition_of(f"sch-{n}", 8)] += 1
    assert min(counts) > 60


def test_backoff_and_metrics_port_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SFERUM_AUDIT_BACKOFF", "0.5, 2")
    monkeypatch.setenv("SFERUM_AUDIT_METRICS_PORT", "0")
    options = PipelineSettings()
    assert options.backoff == [0.5, 2.0]
    assert options.metrics_port is None
    assert [options.delay_after(n) for n in (1, 2, 3, 9)] == [0.5, 2.0, 2.0, 2.0]
    monkeypatch.setenv("SFERUM_AUDIT_BACKOFF", "[1, 3]")
    assert PipelineSettings().backoff == [1.0, 3.0]


def test_the_metrics_endpoint_serves_the_pipelines_instruments() -> None:
    import urllib.request

    from sferum_audit.consumers.embedded_nats import free_port
    from sferum_audit.consumers.metrics import Metrics

    metrics = Metrics()
    metrics.commands.labels(outcome="recorded").inc(3)
    metrics.rejections.labels(code="invalid-json").inc()
    port = free_port()
    server: Any = metrics.serve(port, "127.0.0.1")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            body = response.read().decode()
    finally:
        server.shutdown()
    assert 'sferum_audit_ingest_commands_total{outcome="recorded"} 3.0' in body
    assert 'sferum_audit_rejections_total{code="invalid-json"} 1.0' in body
    for name in ("dead_letters", "view_lag_events", "relay_lag_events", "ingest_lag_seconds"):
        assert f"sferum_audit_{name}" in body
