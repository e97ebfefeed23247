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
from sferum_audit.application.service import AuditLog, RecordedEvent
from sferum_audit.application.settings import Settings
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


def _audit_log(ctx: typer.Context) -> AuditLog:
    app = build_audit_log(_settings(ctx))
    ctx.call_on_close(app.close)
    return app


def _sealer(ctx: typer.Context, app: AuditLog) -> Sealer:
    sealer = Sealer(app.recorder, _settings(ctx).data_dir, IntegritySettings())
    ctx.call_on_close(sealer.close)
    return sealer


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
    app = _audit_log(ctx)
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

    The erasure is recorded as an event holding no personal data and the person's key is
    destroyed, so every view and export shows their personal fields as [erased], and so
    does `rejected` for every refused command whose payload names them, while positions,
    counts and every proof stay valid. The destruction act and the log extract
    (Roskomnadzor Order No. 179) are written under <data_dir>/erasures/. Dead letters
    (commands kept in plain text on NATS after every delivery failed) whose payloads name
    the person are deleted; if NATS cannot be reached, a warning says how to do it later.
    """
    from sferum_audit.application.erasure import erase
    from sferum_audit.cli.pipeline import purge_after_erasure
    from sferum_audit.integrity.erasure_act import (
        file_stem,
        log_extract,
        new_act,
        school_name,
        write_act,
    )

    settings = _settings(ctx)
    app = _audit_log(ctx)
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
    outcome = erase(app, command)
    result = outcome.result
    if not result.accepted:
        raise _fail(f"{result.error_code}: {result.error_message}")
    recorded = next((e for e in result.events if e.type == "Erasure.Recorded"), None)
    erasure_event: dict[str, Any] = recorded.as_dict() if recorded else {}
    folder = settings.data_dir / "erasures"

    # The key is gone now: whatever happens to the sealing, the act must be written.
    integrity: dict[str, Any] = {}
    system = "sferum-audit"
    try:
        sealer = _sealer(ctx, app)
        system = f"sferum-audit ({sealer.origin})"
        integrity = {"origin": sealer.origin, "public_key": sealer.public_key_text()}
        integrity |= _seal_and_prove(sealer, app, settings, recorded, folder / file_stem(act_id))
    except ValueError as exc:  # evidence or proof problems: reported, not fatal here
        integrity["problem"] = str(exc)
        typer.echo(f"warning: the erasure is recorded but not proven: {exc}", err=True)

    act = new_act(
        act_id=act_id,
        school_id=school,
        operator_name=operator or school_name(app, school),
        subject_id=subject,
        requested_by=requested_by,
        administrator_id=by,
        reason=basis,
        destroyed_at=now,
        erasure_event=erasure_event,
        key_destroyed_now=outcome.key_destroyed_now,
        system=system,
        extract=log_extract(app, subject),
    )
    act.integrity = integrity
    json_path, text_path = write_act(folder, act)
    typer.echo(f"erased personal data of {subject} (erasure {act_id}, {result.status})")
    if outcome.rejected_payloads:
        positions = ", ".join(str(p) for p in outcome.rejected_payloads)
        typer.echo(
            f"{len(outcome.rejected_payloads)} rejected command payload(s) naming them are "
            f"unreadable now (positions {positions})"
        )
    purge_after_erasure(subject, nats_url)
    typer.echo(f"destruction act and log extract: {json_path}")
    typer.echo(f"readable act: {text_path}")
    if "inclusion_proof" in integrity:
        typer.echo(f"proof that the erasure is in the log: {integrity['inclusion_proof']}")
    _refresh_views(app, settings, rebuild_views)


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


def _refresh_views(app: AuditLog, settings: Settings, rebuild_all: bool) -> None:
    """Make the views show the erasure; drop as-of snapshots that still hold the data."""
    from sferum_audit.projections.database import ViewsDatabase
    from sferum_audit.projections.replay import rebuild
    from sferum_audit.projections.runner import ViewRunner
    from sferum_audit.projections.settings import ViewsSettings

    options = ViewsSettings()
    db = ViewsDatabase.from_settings(settings, options)
    try:
        if rebuild_all:
            result = rebuild(app, db, page_size=options.views_page_size)
            typer.echo(f"views rebuilt to position {result.position}")
        else:
            runner = ViewRunner(app, db, page_size=options.views_page_size)
            runner.ensure_tables()
            runner.catch_up()
            typer.echo("views brought up to date")
    finally:
        db.dispose()
    for snapshot in sorted(settings.data_dir.glob("views-asof-*.sqlite")):
        snapshot.unlink()
        typer.echo(
            f"removed {snapshot.name}: it held the erased data (rebuild it with `replay --upto`)",
            err=True,
        )


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
