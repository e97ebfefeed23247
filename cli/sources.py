"""Who may sign commands for a school: ``source register|rotate|revoke|list|new-key`` and
``operator-key``.

Registering, rotating and revoking are commands like any other, recorded in the log; this
CLI signs them with the deployment operator's key (``application.local_sources``), in the
name of the school's administration (2.2) unless ``--by``/``--as`` name an administrator
(2.3) of the school.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sferum_audit.application.authentication import key_id, public_key_text
from sferum_audit.application.local_sources import (
    OPERATOR_ACTOR,
    LocalSigner,
    local_source_id,
    operator_key,
    operator_public_keys,
)
from sferum_audit.application.settings import Settings
from sferum_audit.cli.output import OutputFormat, emit
from sferum_audit.cli.records import Envelope, audit_log, submit
from sferum_audit.domain.source import Source
from sferum_audit.integrity.keys import private_key_pem

source_app = typer.Typer(
    help="Command sources: the keys that may sign commands for a school (registered, "
    "rotated and revoked in the log)."
)

School = Annotated[str, typer.Option("--school", help="School id.")]
SourceId = Annotated[str, typer.Argument(help="Source id, e.g. elzhur/sch-58.")]
PublicKey = Annotated[
    str,
    typer.Option("--public-key", help="The source's Ed25519 public key: base64 of 32 bytes."),
]
By = Annotated[
    str,
    typer.Option("--by", help="Who acts: the school administration, or an administrator's id."),
]
As = Annotated[
    str,
    typer.Option("--as", help="school-administration (2.2) or administrator (2.3)."),
]
TOPICS = tuple(
    f"{Source.__module__}:Source.{name}" for name in ("Registered", "Rotated", "Revoked")
)
LIST_COLUMNS = ("source_id", "school_id", "kind", "person_id", "key_id", "public_key", "status")


def _envelope(school: str, by: str, as_role: str) -> Envelope:
    return Envelope(school, (by, as_role), None, None, None)


@source_app.command("register")
def register_source(
    ctx: typer.Context,
    source_id: SourceId,
    school: School,
    public_key: PublicKey,
    person: Annotated[
        str | None,
        typer.Option("--person", help="A person's own key: the person it vouches for."),
    ] = None,
    by: By = OPERATOR_ACTOR["id"],
    as_role: As = OPERATOR_ACTOR["role"],
) -> None:
    """Registers a source for a school: an integration (any actor of the school) or, with
    --person, a person's own key (only that person)."""
    fields: dict[str, Any] = {
        "source_id": source_id,
        "kind": "person" if person else "integration",
        "person_id": person,
        "public_key": public_key,
    }
    submit(ctx, "register-source", _envelope(school, by, as_role), fields)


@source_app.command("rotate")
def rotate(
    ctx: typer.Context,
    source_id: SourceId,
    school: School,
    public_key: PublicKey,
    by: By = OPERATOR_ACTOR["id"],
    as_role: As = OPERATOR_ACTOR["role"],
) -> None:
    """Replaces a source's key; the old key signs nothing from now on."""
    fields = {"source_id": source_id, "public_key": public_key}
    submit(ctx, "rotate-source", _envelope(school, by, as_role), fields)


@source_app.command("revoke")
def revoke(
    ctx: typer.Context,
    source_id: SourceId,
    school: School,
    reason: Annotated[str, typer.Option("--reason", help="Why, in words.")],
    by: By = OPERATOR_ACTOR["id"],
    as_role: As = OPERATOR_ACTOR["role"],
) -> None:
    """Withdraws a source; nothing it signs is accepted from now on."""
    fields = {"source_id": source_id, "reason": reason}
    submit(ctx, "revoke-source", _envelope(school, by, as_role), fields)


@source_app.command("list")
def list_sources(
    ctx: typer.Context,
    school: Annotated[str | None, typer.Option("--school", help="Only this school.")] = None,
    fmt: Annotated[OutputFormat, typer.Option("--format")] = OutputFormat.table,
) -> None:
    """Every registered source, with its current key and whether it is revoked."""
    app = audit_log(ctx)
    seen: dict[str, Source] = {}
    start = 1
    while True:
        page = app.recorder.select_notifications(start, 1000, topics=TOPICS)
        if not page:
            break
        for notification in page:
            source: object = app.repository.get(UUID(str(notification.originator_id)))
            if isinstance(source, Source):
                seen[source.source_id] = source
        start = page[-1].id + 1
    rows = [
        {
            "source_id": s.source_id,
            "school_id": s.school_id,
            "kind": s.kind,
            "person_id": s.person_id,
            "key_id": key_id(s.public_key),
            "public_key": s.public_key,
            "status": "revoked" if s.revoked else "active",
        }
        for s in sorted(seen.values(), key=lambda s: (s.school_id, s.source_id))
        if school is None or s.school_id == school
    ]
    emit(rows, fmt, LIST_COLUMNS, title="Command sources")


@source_app.command("new-key")
def new_key(
    out: Annotated[Path, typer.Argument(help="Where to write the private key (PEM, 0600).")],
) -> None:
    """Makes a key pair for a source (a school's publisher): writes the private key to a
    new file readable only by its owner and prints the public key to register."""
    key = Ed25519PrivateKey.generate()
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(private_key_pem(key))
    typer.echo(public_key_text(key.public_key()))


def operator_key_command(ctx: typer.Context) -> None:
    """The deployment operator's public keys the service trusts (from the configuration,
    or the local operator key's, created in the data folder on first use), and the local
    CLI source's public key."""
    settings = ctx.find_object(Settings) or Settings()
    trusted = operator_public_keys(settings)
    for public_key in trusted:
        typer.echo(f"trusted operator key {key_id(public_key)}: {public_key}")
    local = public_key_text(operator_key(settings).public_key())
    if local not in trusted:
        typer.echo(
            f"the local operator key {key_id(local)} is NOT trusted by this configuration: {local}",
            err=True,
        )
    signer = LocalSigner.from_settings(settings)
    typer.echo(f"local CLI source key ({local_source_id('<school>')}): {signer.local_public_key}")


def register(app: typer.Typer) -> None:
    """Adds ``source`` and ``operator-key``."""
    app.add_typer(source_app, name="source")
    app.command("operator-key")(operator_key_command)
