"""The pipeline's CLI commands (``rejected``, ``dead-letters``, ``serve``) and the demo."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import nats
import pytest
import typer
from consumer_helpers import receipts, wait_for
from faststream.nats.testing import build_message
from source_signing import ProvisioningSigner
from typer.testing import CliRunner

from sferum_audit.application.bootstrap import build_audit_log
from sferum_audit.application.local_sources import LocalSigner
from sferum_audit.application.settings import Settings
from sferum_audit.cli import pipeline as pipeline_cli
from sferum_audit.consumers import subjects as hdr
from sferum_audit.consumers.command_mix import school_commands
from sferum_audit.consumers.demo import run_pipeline_demo
from sferum_audit.consumers.embedded_nats import EmbeddedNats, free_port
from sferum_audit.consumers.ingest import IngestProcessor
from sferum_audit.consumers.publisher import CommandPublisher
from sferum_audit.consumers.settings import PipelineSettings
from sferum_audit.consumers.topology import ensure_topology
from sferum_audit.integrity.checkpoint import parse_checkpoint
from sferum_audit.integrity.verifier import verify_log


def cli_app(settings: Settings) -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def root(ctx: typer.Context) -> None:
        ctx.obj = settings

    pipeline_cli.register(app)
    return app


class NoTransport:
    async def reply(self, subject: str, payload: bytes, headers: dict[str, str]) -> None:
        raise AssertionError("no answers expected")

    async def dead_letter(self, subject: str, payload: bytes, headers: dict[str, str]) -> None:
        raise AssertionError("no dead letters expected")


async def test_rejected_lists_the_kept_rejections_with_payload_and_reason(
    sqlite_settings: Settings, unique: str
) -> None:
    app = build_audit_log(sqlite_settings)
    options = PipelineSettings(instance_id="cli", metrics_port=None)
    good = school_commands(f"s-{unique}")[0]
    payload = json.dumps(good).encode()
    signer = LocalSigner.from_settings(sqlite_settings)
    raw = [
        await build_message(
            payload,
            f"sferum.ingest.0.s-{unique}.register-school",
            headers=signer.signature(payload, good["school_id"], good["type"]).as_headers(),
        ),
        await build_message(b"{broken", f"sferum.ingest.0.s-{unique}.remove-content"),
        await build_message(b"{}", f"sferum.ingest.0.other-{unique}.create-chat"),
    ]
    await IngestProcessor(app, options, NoTransport()).process(raw)
    app.close()

    runner = CliRunner()
    result = runner.invoke(cli_app(sqlite_settings), ["rejected", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [(r["school_id"], r["error_code"]) for r in rows] == [
        (f"s-{unique}", "invalid-json"),
        (f"other-{unique}", "invalid-command"),
    ]
    assert rows[0]["payload"] == "{broken"
    result = runner.invoke(
        cli_app(sqlite_settings), ["rejected", "--code", "invalid-command", "--format", "jsonl"]
    )
    assert [json.loads(line)["school_id"] for line in result.stdout.splitlines()] == [
        f"other-{unique}"
    ]


@pytest.mark.nats
async def test_dead_letters_lists_and_retries(
    nats_server: EmbeddedNats, sqlite_settings: Settings, unique: str
) -> None:
    options = PipelineSettings(nats_url=nats_server.url, partitions=2)
    command = school_commands(f"s-{unique}")[0]
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    try:
        await ensure_topology(js, options)
        await js.publish(
            f"sferum.dead-letters.s-{unique}.register-school",
            json.dumps(command).encode(),
            headers={
                hdr.MSG_ID: f"dead/{unique}",
                hdr.DLQ_SUBJECT: f"sferum.ingest.1.s-{unique}.register-school",
                hdr.DLQ_DELIVERIES: "5",
                hdr.DLQ_ERROR: "OperationalError('connection refused')",
                hdr.DLQ_MSG_ID: command["command_id"],
            },
        )
        runner = CliRunner()
        app = cli_app(sqlite_settings)
        listed = await asyncio.to_thread(
            runner.invoke, app, ["dead-letters", "--nats-url", nats_server.url, "--format", "json"]
        )
        assert listed.exit_code == 0, listed.output
        [row] = json.loads(listed.stdout)
        assert row["command_id"] == command["command_id"]
        assert row["school_id"] == f"s-{unique}"
        assert "connection refused" in row["error"]

        retried = await asyncio.to_thread(
            runner.invoke,
            app,
            ["dead-letters", "--nats-url", nats_server.url, "--retry", "--format", "json"],
        )
        assert retried.exit_code == 0, retried.output
        assert "1 dead letter(s) published again" in retried.stderr
        info = await js.stream_info(options.dead_letter_stream)
        assert info.state.messages == 0
        again = await js.get_last_msg(options.commands_stream, f"sferum.ingest.*.s-{unique}.*")
        assert json.loads(again.data) == command
        assert again.headers is not None
        assert again.headers[hdr.MSG_ID] == f"{command['command_id']}/retry/1"
    finally:
        await nc.close()


@pytest.mark.nats
async def test_serve_with_embedded_nats_needs_nothing_installed(
    tmp_path: Path, unique: str
) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    port = free_port()
    options = PipelineSettings(
        embedded_nats_port=port, metrics_port=None, instance_id=f"e-{unique}", ack_wait=2
    )
    stop = asyncio.Event()
    service = asyncio.create_task(
        pipeline_cli.run_service(settings, options, embedded=True, views=True, stop=stop)
    )
    url = f"nats://127.0.0.1:{port}"
    commands = school_commands(f"s-{unique}", students=2, moderations=2)
    nc: Any = None
    try:

        async def streams_ready() -> bool:
            nonlocal nc
            try:
                nc = nc or await nats.connect(url, allow_reconnect=False)
                await nc.jetstream().stream_info(options.commands_stream)
            except Exception:
                nc = None
                return False
            return True

        await wait_for(streams_ready, 30, "the embedded server and its streams")
        signer = ProvisioningSigner(settings)
        await CommandPublisher(nc.jetstream(), nc=nc, signer=signer).publish_many(commands)
        store = build_audit_log(settings)
        try:
            await wait_for(lambda: len(receipts(store)) == len(commands), 30, "the commands")
        finally:
            store.close()
    finally:
        if nc is not None:
            await nc.close()
        stop.set()
        await asyncio.wait_for(service, 60)
    assert (tmp_path / "data" / "nats" / "jetstream").is_dir()
    assert (tmp_path / "data" / "views.sqlite").is_file()  # the views were followed
    # ... and the log was sealed: the last signed checkpoint covers every recorded event.
    report = verify_log(build_audit_log(settings).recorder, settings.data_dir)
    assert report.ok, report.summary()
    checkpoints = (tmp_path / "data" / "integrity" / "checkpoints.log").read_text().splitlines()
    final = parse_checkpoint(json.loads(checkpoints[-1])["checkpoint"])
    assert final.size == build_audit_log(settings).recorder.max_notification_id()


@pytest.mark.nats
async def test_the_pipeline_demo_records_the_sample_school_and_stops_cleanly(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    report = await run_pipeline_demo(settings, timeout=90)
    assert report.ok
    assert report.recorded == report.published
    assert report.rejected == 0
    assert report.events_published == report.log_position > report.published
    again = await run_pipeline_demo(settings, timeout=90)
    assert again.ok
    assert again.recorded == 0
    assert again.duplicates_at_publish + again.duplicate == again.published
