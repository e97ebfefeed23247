"""Tamper evidence and erasure on the command line: ``seal``, ``verify``, ``prove``,
``check-proof``, ``public-key``, ``forget`` and ``forget-rejected``.

``seal`` catches the Merkle tree up with the log and signs a checkpoint; ``verify``
recomputes every leaf from the store and checks it against the signed checkpoints,
naming the first bad position (exit 1); ``prove`` writes an inclusion proof for one
event or a consistency proof between two checkpoints, and ``check-proof`` checks such a
file offline with nothing but the log's public key. ``forget`` erases a person's
personal data (152-FZ), including the refused commands' payloads that name them, and
writes the destruction act and the log extract; ``forget-rejected`` erases one refused
payload that names nobody the service can tell (e.g. bytes that are not JSON). The
evidence lives in ``<data_dir>/integrity/``; see ``sferum_audit.integrity``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from uuid import uuid4

import typer

from sferum_audit.application.bootstrap import build_audit_log
from sferum_audit.application.commands import ErasePersonalData
from sferum_audit.application.local_sources import LocalSigner
from sferum_audit.application.logging_setup import configure_logging
from sferum_audit.application.service import AuditLog, RecordedEvent
from sferum_audit.application.settings import Settings
from sferum_audit.cli.stores import reading_log, require_store
from sferum_audit.integrity.evidence import CheckpointLog
from sferum_audit.integrity.keys import public_key_text
from sferum_audit.integrity.offline_check import ProofFileError, check_proof_file
from sferum_audit.integrity.proofs import (
    NotSealedError,
    consistency_proof_document,
    inclusion_proof_document,
    write_document,
)
from sferum_audit.integrity.sealer import Sealer, resolve_origin
from sferum_audit.integrity.settings import IntegrityPaths, IntegritySettings
from sferum_audit.integrity.store_reader import open_reader
from sferum_audit.integrity.verifier import verify_log

EXIT_TAMPERED = 1


def _settings(ctx: typer.Context) -> Settings:
    return ctx.find_object(Settings) or Settings()


def _audit_log(ctx: typer.Context, *, read_only: bool = False) -> AuditLog:
    """The log, which must exist: sealing, proving and erasing act on a store, and a
    mistyped --data-dir must not get a new empty one; ``read_only`` for commands that only
    read it."""
    settings = _settings(ctx)
    require_store(settings)
    app = reading_log(settings) if read_only else build_audit_log(settings)
    ctx.call_on_close(app.close)
    return app


def _sealer(ctx: typer.Context, app: AuditLog) -> Sealer:
    sealer = Sealer(app.recorder, _settings(ctx).data_dir, IntegritySettings())
    ctx.call_on_close(sealer.close)
    return sealer


def quiet_info(settings: Settings) -> None:
    """Log lines from WARNING up only, unless a lower level was asked for explicitly."""
    if settings.log_level == "INFO":
        configure_logging(settings.model_copy(update={"log_level": "WARNING"}))


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {' '.join(message.split())}", err=True)
    return typer.Exit(code)


def _key_text(value: str) -> str:
    """A verifier key given as text, or the path of a file holding it."""
    path = Path(value)
    if path.is_file():
        return path.read_text(encoding="utf-8").strip()
    return value.strip()


# -- seal, public-key ---------------------------------------------------------------------------


def seal_command(ctx: typer.Context) -> None:
    """Catches the Merkle tree up with the log and signs a checkpoint if anything is new."""
    quiet_info(_settings(ctx))  # the line below is the news; the service's log line is not
    app = _audit_log(ctx)
    result = _sealer(ctx, app).run_once(force=True)
    typer.echo(result.describe())
    if result.alarm is not None:
        raise _fail(f"sealing stopped: {result.alarm}")


def public_key_command(ctx: typer.Context) -> None:
    """Prints the log's public (verifier) key: what auditors check checkpoints and proofs with.

    The key is made on first use in <data_dir>/integrity/signing-key.pem unless
    SFERUM_AUDIT_SIGNING_KEY provides it.
    """
    require_store(_settings(ctx))  # a mistyped --data-dir would get a new key, not the log's
    settings = IntegritySettings()
    paths = IntegrityPaths.of(_settings(ctx).data_dir)
    origin = resolve_origin(settings, CheckpointLog(paths.checkpoints).last())
    typer.echo(public_key_text(settings.load_signing_key(paths), origin))


def checkpoint_command(
    ctx: typer.Context,
    size: Annotated[
        int | None,
        typer.Option("--size", help="The checkpoint of this tree size (default: the latest)."),
    ] = None,
) -> None:
    """Prints a signed checkpoint (the latest by default), for auditors to keep.

    A kept checkpoint can be given back to `verify --checkpoint FILE`: the log must still
    reproduce it, whatever happens to the server's integrity folder.
    """
    paths = IntegrityPaths.of(_settings(ctx).data_dir)
    entries, _ = CheckpointLog(paths.checkpoints).read()
    chosen = [e for e in entries if size is None or e.checkpoint.size == size]
    if not chosen:
        wanted = "any signed checkpoint" if size is None else f"a checkpoint of size {size}"
        raise _fail(f"there is not {wanted} in {paths.checkpoints}")
    typer.echo(chosen[-1].note, nl=False)


# -- verify -------------------------------------------------------------------------------------


def verify_command(
    ctx: typer.Context,
    public_key: Annotated[
        str | None,
        typer.Option(
            "--public-key",
            help="Check the checkpoints with this verifier key (text or a file) instead of "
            "the log's own key file: what an auditor who does not trust the server does.",
        ),
    ] = None,
    checkpoint: Annotated[
        list[Path] | None,
        typer.Option(
            "--checkpoint",
            help="A signed checkpoint kept elsewhere (a file); the log must reproduce it "
            "too. Repeatable.",
        ),
    ] = None,
) -> None:
    """Recomputes every leaf from the store and checks it against the signed checkpoints.

    Catches a changed byte in any stored event, a deleted, inserted or moved event and a
    truncated log; names the first bad position and exits 1.
    """
    settings = _settings(ctx)
    app = _audit_log(ctx, read_only=True)
    kept = [(path.read_text(encoding="utf-8"), str(path)) for path in checkpoint or []]
    report = verify_log(
        app.recorder,
        settings.data_dir,
        settings=IntegritySettings(),
        public_key=_key_text(public_key) if public_key else None,
        trusted_checkpoints=kept,
    )
    lines = report.lines()
    if report.ok:
        typer.echo("\n".join(lines))
        return
    typer.echo("\n".join(lines[1:]))
    raise _fail(lines[0], EXIT_TAMPERED)


# -- prove, check-proof -------------------------------------------------------------------------


def prove_command(
    ctx: typer.Context,
    position: Annotated[
        int | None, typer.Argument(help="Global position of the event to prove.", min=1)
    ] = None,
    consistency: Annotated[
        tuple[int, int] | None,
        typer.Option(
            "--consistency",
            help="Prove that the checkpoint of size NEW extends the one of size OLD.",
            metavar="OLD NEW",
        ),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the proof here (default stdout).")
    ] = None,
) -> None:
    """Writes an inclusion proof for one event, or a consistency proof between checkpoints."""
    if (position is None) == (consistency is None):
        raise _fail("give either POSITION or --consistency OLD NEW", 2)
    settings = _settings(ctx)
    app = _audit_log(ctx)
    if consistency is not None:
        document = consistency_proof_document(settings.data_dir, *consistency)
    else:
        assert position is not None
        reader = open_reader(app.recorder)
        ctx.call_on_close(reader.close)
        try:
            document = inclusion_proof_document(reader, settings.data_dir, position)
        except NotSealedError:
            result = _sealer(ctx, app).run_once(force=True)  # seal now, then prove
            if result.alarm is not None:
                raise _fail(f"cannot seal position {position}: {result.alarm}") from None
            document = inclusion_proof_document(reader, settings.data_dir, position)
    if output is None:
        typer.echo(json.dumps(document, indent=2, ensure_ascii=False))
        return
    write_document(document, output)
    typer.echo(f"wrote {output}", err=True)


def check_proof_command(
    file: Annotated[Path, typer.Argument(help="A proof file written by `prove`.")],
    public_key: Annotated[
        str,
        typer.Option(
            "--public-key",
            help="The log's verifier key <origin>+<key ID>+<base64> (text or a file), as "
            "printed by `sferum-audit public-key`.",
        ),
    ],
) -> None:
    """Checks a proof file offline, with nothing but the file and the log's public key."""
    try:
        checked = check_proof_file(file, _key_text(public_key))
    except ProofFileError as exc:
        raise _fail(f"proof does not hold: {exc}") from None
    typer.echo(checked.describe())


# -- forget -------------------------------------------------------------------------------------


def forget_command(
    ctx: typer.Context,
    subject: Annotated[str, typer.Argument(help="Profile id of the person whose data is erased.")],
    requested_by: Annotated[
        str,
        typer.Option("--requested-by", help="Who asked: the person, or a parent of the person."),
    ],
    basis: Annotated[
        str, typer.Option("--basis", help="The request and its legal basis, e.g. its number.")
    ],
    school: Annotated[str, typer.Option("--school", help="School id (the operator).")],
    by: Annotated[
        str, typer.Option("--by", help="Profile id of the platform administrator who erases.")
    ],
    erasure_id: Annotated[
        str | None,
        typer.Option(
            "--erasure-id",
            help="Id of this erasure (default: a new one); rerun with the same id to finish "
            "an interrupted run.",
        ),
    ] = None,
    operator: Annotated[
        str | None,
        typer.Option("--operator", help="The operator's name on the act (default: the school's)."),
    ] = None,
    rebuild_views: Annotated[
        bool,
        typer.Option(
            "--rebuild-views/--no-rebuild-views",
            help="Rebuild every view afterwards (default), or only bring them up to date.",
        ),
    ] = True,
    nats_url: Annotated[
        str | None,
        typer.Option(
            "--nats-url",
            help="NATS whose dead letters naming the person are deleted "
            "(env SFERUM_AUDIT_NATS_URL).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Erases a person's personal data: records it, destroys their key, writes the act.

    Only an administrator of the school where the person is registered erases, on the
    request of the person or of a parent registered for that child; a refusal is kept in
    `rejected`. The erasure is recorded as an event holding no personal data, so every view,
    export and `rejected` payload shows their personal fields as [erased]; free text in
    other records that names the person is shredded; messages still held in the NATS
    streams that name them (by id or by name) are erased; the destruction act and the log
    extract (Roskomnadzor Order No. 179) are written once under <data_dir>/erasures/; the
    person's key is destroyed (and the key-encryption key rotated); as-of snapshots are
    removed, the views rebuilt and SQLite write-ahead logs truncated. Positions, counts and
    every proof stay valid. If NATS cannot be reached, a warning says how to finish later.
    """
    import asyncio

    from sferum_audit.application.erasure import finish_erasure, keep_refused

    settings = _settings(ctx)
    app = _audit_log(ctx)
    app.settings = settings
    now = datetime.now(UTC)
    act_id = erasure_id or f"er-{now:%Y%m%d}-{uuid4().hex[:8]}"
    # A rerun of an interrupted erasure repeats its command exactly, time included, so it
    # is recognised as a repetition and only finishes what was left (destroying the key).
    now = _recorded_erasure_time(app, school, act_id) or now
    signer = LocalSigner.from_settings(settings)  # the local CLI source vouches for it
    registration = signer.ensure_registered(app, school)
    if registration is not None and not registration.accepted:
        raise _fail(f"{registration.error_code}: {registration.error_message}")
    command = signer.vouched(
        {
            "type": "erase-personal-data",
            "command_id": f"forget-{act_id}",
            "school_id": school,
            "actor": {"id": by, "role": "administrator"},
            "occurred_at": now.isoformat(),
            "erasure_id": act_id,
            "subject_id": subject,
            "requested_by": requested_by,
            "basis": basis,
        }
    )
    assert isinstance(command, ErasePersonalData)
    result = app.handle(command)
    if not result.accepted:
        keep_refused(app, command, result)
        raise _fail(f"{result.error_code}: {result.error_message} (kept in `rejected`)")

    def prove(recorded: RecordedEvent | None, stem: Path) -> dict[str, Any]:
        sealer = _sealer(ctx, app)
        integrity: dict[str, Any] = {
            "system": f"sferum-audit ({sealer.origin})",
            "origin": sealer.origin,
            "public_key": sealer.public_key_text(),
        }
        try:
            integrity |= _seal_and_prove(sealer, app, settings, recorded, stem)
        except ValueError as exc:  # evidence or proof problems: reported, not fatal here
            integrity["problem"] = str(exc)
        return integrity

    report = asyncio.run(
        finish_erasure(
            app,
            command,
            result,
            messages=_nats_eraser(nats_url),
            messages_required=False,
            prove=prove,
            operator_name=operator,
            rebuild_views=rebuild_views,
        )
    )
    typer.echo(f"erased personal data of {subject} (erasure {act_id}, {result.status})")
    _tell(report)


def _tell(report: Any) -> None:
    """What ``forget`` did, a line each."""
    if report.rejected_payloads:
        positions = ", ".join(str(p) for p in report.rejected_payloads)
        typer.echo(
            f"{len(report.rejected_payloads)} rejected command payload(s) naming them are "
            f"unreadable now (positions {positions})"
        )
    if report.free_text:
        typer.echo(f"{len(report.free_text)} free-text field(s) naming them shredded")
    if report.messages_problem:
        typer.echo(
            f"warning: NATS messages not checked: {report.messages_problem}. The erasure "
            "stands (the act says so); once NATS is reachable, delete the dead letters "
            f"naming them with: sferum-audit dead-letters --purge-subject {report.subject_id} "
            "(with the --nats-url or --embedded-nats that `serve` uses)",
            err=True,
        )
    streams: dict[str, list[int]] = {}
    for message in report.messages:
        streams.setdefault(message.stream, []).append(message.sequence)
    for stream, sequences in streams.items():
        typer.echo(
            f"{len(sequences)} message(s) naming them erased from stream {stream} "
            f"(sequences {', '.join(str(s) for s in sequences)})"
        )
    if report.act_path is not None:
        typer.echo(f"destruction act and log extract: {report.act_path}")
        typer.echo(f"readable act: {report.act_path.with_suffix('.txt')}")
        proof = report.act_path.with_name(report.act_path.stem + ".proof.json")
        if proof.exists():
            typer.echo(f"proof that the erasure is in the log: {proof}")
    problem = _act_problem(report.act_path)
    if problem:
        typer.echo(f"warning: the erasure is recorded but not proven: {problem}", err=True)
    for line in report.cleaned:
        typer.echo(line, err=line.startswith("removed"))


def _act_problem(act_path: Path | None) -> str | None:
    if act_path is None or not act_path.exists():
        return None
    problem = json.loads(act_path.read_text(encoding="utf-8")).get("integrity", {}).get("problem")
    return str(problem) if problem else None


def _nats_eraser(url: str | None) -> Any:
    """The NATS side of ``forget`` at the configured NATS (``--nats-url``,
    ``SFERUM_AUDIT_NATS_URL``), authenticated as the service (``SFERUM_AUDIT_NATS_*``
    credentials), one short connection per step."""
    from sferum_audit.cli.pipeline import connect
    from sferum_audit.consumers.dead_letters import StreamEraser
    from sferum_audit.consumers.settings import PipelineSettings

    options = PipelineSettings()
    if url:
        options = options.model_copy(update={"nats_url": url})

    class OneShot:
        async def erase_naming(self, person_id: str, variants: Any) -> Any:
            nc = await connect(options.nats_url, options)
            try:
                return await StreamEraser(nc.jetstream(), options).erase_naming(person_id, variants)
            finally:
                await nc.close()

        async def drop_erasure(self, command_id: str) -> Any:
            nc = await connect(options.nats_url, options)
            try:
                return await StreamEraser(nc.jetstream(), options).drop_erasure(command_id)
            finally:
                await nc.close()

    return OneShot()


def forget_rejected_command(
    ctx: typer.Context,
    position: Annotated[
        int, typer.Argument(help="Log position of the rejected command (see `rejected`).", min=1)
    ],
    basis: Annotated[
        str, typer.Option("--basis", help="Why: the request and its legal basis, or a note.")
    ],
    by: Annotated[
        str,
        typer.Option(
            "--by",
            help="Profile id of the platform administrator who erases (of the rejection's "
            "school, when the log knows it).",
        ),
    ],
) -> None:
    """Erases the payload of one refused command: records it, then destroys its key.

    For a payload that holds personal data but names nobody `forget` could reach: bytes
    that are not JSON, or a name at a place the command schema does not put one. The
    error code and message stay readable; `rejected` shows the payload as [erased].
    """
    from sferum_audit.application.erasure import erase_rejected_payload, rejection_at
    from sferum_audit.domain.errors import DomainError

    app = _audit_log(ctx)
    try:
        done = erase_rejected_payload(app, rejection_at(app, position), by=by, basis=basis)
    except DomainError as exc:
        raise _fail(f"{exc.code}: {exc}") from None
    recorded = f"recorded at position {done.position}" if done.position else "recorded before"
    key = "key destroyed now" if done.key_destroyed_now else "key was already destroyed"
    typer.echo(f"erased the payload of the rejected command at {position} ({recorded}; {key})")


def _seal_and_prove(
    sealer: Sealer,
    app: AuditLog,
    settings: Settings,
    recorded: RecordedEvent | None,
    stem: Path,
) -> dict[str, Any]:
    """Seal the erasure event and write its inclusion proof beside the act."""
    sealed = sealer.run_once(force=True)
    if sealed.alarm is not None:
        raise ValueError(f"not sealed: {sealed.alarm}")
    if recorded is None:
        return {}
    reader = open_reader(app.recorder)
    try:
        proof = inclusion_proof_document(reader, settings.data_dir, recorded.position)
    finally:
        reader.close()
    proof_path = stem.with_name(stem.name + ".proof.json")
    write_document(proof, proof_path)
    return {
        "tree_size": proof["tree_size"],
        "root": proof["checkpoint"].split("\n")[2],
        "checkpoint": proof["checkpoint"],
        "inclusion_proof": str(proof_path),
    }


def _recorded_erasure_time(app: AuditLog, school: str, erasure_id: str) -> datetime | None:
    """When the erasure ``erasure_id`` was recorded, if it already was."""
    from sferum_audit.domain.erasure import Erasure

    events = list(app.repository.event_store.get(Erasure.create_id(school, erasure_id), lte=1))
    if not events:
        return None
    occurred: Any = getattr(getattr(events[0], "ctx", None), "occurred_at", None)
    return occurred if isinstance(occurred, datetime) else None


def register(app: typer.Typer) -> None:
    """Adds this module's commands to the root `sferum-audit` command."""
    app.command("seal")(seal_command)
    app.command("verify")(verify_command)
    app.command("prove")(prove_command)
    app.command("check-proof")(check_proof_command)
    app.command("public-key")(public_key_command)
    app.command("checkpoint")(checkpoint_command)
    app.command("forget")(forget_command)
    app.command("forget-rejected")(forget_rejected_command)
