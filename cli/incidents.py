"""``sferum-audit incident ...``: security staff work a 4.2.2 report from the command line.

The friendly commands for the steps after ``report-access``: ``acknowledge``, ``contain``
(a containment step), ``notify`` (the reporter records whom they told, and when),
``resolve`` and ``dismiss``. Each builds the same command as the JSON schema
(``acknowledge-incident``, ``take-containment-step``, ``record-notification``,
``resolve-incident``, ``dismiss-incident``) and records it through ``records.submit``, so
the actor, the time (``--at``), the command id and the correlation id are handled exactly
as in ``moderate ...`` and ``report-access``. The domain decides who may: security staff
or an administrator handle an incident; only its reporter records a notification.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer

from sferum_audit.cli import records
from sferum_audit.cli.records import At, CommandId, Correlation, Envelope, School, submit
from sferum_audit.domain.regulation import CONTAINMENT_STEPS, NOTIFIED_PARTIES

STAFF_ROLES = ("security-officer", "administrator")

Incident = Annotated[str, typer.Argument(help="Incident id, as `report-access` printed it.")]
By = Annotated[str, typer.Option("--by", help="Profile id of who does it.")]
StaffRole = Annotated[
    str,
    typer.Option("--as", help=f"Role acted in: {' or '.join(STAFF_ROLES)}."),
]
Findings = Annotated[str, typer.Option("--findings", help="What was found, in words.")]

incident_app = typer.Typer(
    help="Work an unauthorised-access report (4.2.2) from report to resolution: "
    "acknowledge, contain, notify, resolve or dismiss. The report itself: report-access.",
    no_args_is_help=True,
)


def _staff_role(role: str) -> str:
    if role not in STAFF_ROLES:
        raise typer.BadParameter(
            f"{role!r} does not handle incidents; valid: {', '.join(STAFF_ROLES)}",
            param_hint="--as",
        )
    return role


def _staff_envelope(
    school: str,
    by: str,
    as_role: str,
    command_id: str | None,
    at: str | None,
    correlation: str | None,
) -> Envelope:
    """The envelope of an act by security staff: the role is checked before anything is sent."""
    return Envelope(school, (by, _staff_role(as_role)), command_id, at, correlation)


def _one_of(value: str, valid: frozenset[str], flag: str) -> str:
    if value not in valid:
        raise typer.BadParameter(
            f"{value!r} is not one of: {', '.join(sorted(valid))}", param_hint=flag
        )
    return value


@incident_app.command("acknowledge")
def acknowledge(
    ctx: typer.Context,
    incident: Incident,
    school: School,
    by: By,
    as_role: StaffRole = "security-officer",
    command_id: CommandId = None,
    at: At = None,
    correlation_id: Correlation = None,
) -> None:
    """Security staff take the report on: the time to acknowledge stops here."""
    envelope = _staff_envelope(school, by, as_role, command_id, at, correlation_id)
    submit(ctx, "acknowledge-incident", envelope, {"incident_id": incident})


@incident_app.command("contain")
def contain(
    ctx: typer.Context,
    incident: Incident,
    school: School,
    by: By,
    step: Annotated[
        str, typer.Option("--step", help=f"One of: {', '.join(sorted(CONTAINMENT_STEPS))}.")
    ],
    note: Annotated[str, typer.Option("--note", help="What was done, in words.")],
    as_role: StaffRole = "security-officer",
    command_id: CommandId = None,
    at: At = None,
    correlation_id: Correlation = None,
) -> None:
    """Records a containment step taken on the affected account (repeatable)."""
    envelope = _staff_envelope(school, by, as_role, command_id, at, correlation_id)
    fields = {"incident_id": incident, "step": _one_of(step, CONTAINMENT_STEPS, "--step")}
    submit(ctx, "take-containment-step", envelope, fields | {"note": note})


@incident_app.command("notify")
def notify(
    ctx: typer.Context,
    incident: Incident,
    school: School,
    by: Annotated[str, typer.Option("--by", help="Profile id of the reporter.")],
    party: Annotated[
        str, typer.Option("--party", help=f"Who was told: {', '.join(sorted(NOTIFIED_PARTIES))}.")
    ],
    told_at: Annotated[
        str, typer.Option("--told-at", help="When they were told (ISO 8601 with timezone).")
    ],
    as_role: Annotated[
        str,
        typer.Option("--as", help="student (one's own account) or parent (for a child)."),
    ] = "parent",
    command_id: CommandId = None,
    at: At = None,
    correlation_id: Correlation = None,
) -> None:
    """The reporter records that they told the school's administrator or the platform
    operator (4.2.2 asks for both)."""
    envelope = Envelope(school, (by, as_role), command_id, at, correlation_id)
    fields = {
        "incident_id": incident,
        "party": _one_of(party, NOTIFIED_PARTIES, "--party"),
        "told_at": records.moment(told_at, "--told-at"),
    }
    submit(ctx, "record-notification", envelope, fields)


def _close(command_type: str) -> Callable[..., None]:
    def close(
        ctx: typer.Context,
        incident: Incident,
        school: School,
        by: By,
        findings: Findings,
        as_role: StaffRole = "security-officer",
        command_id: CommandId = None,
        at: At = None,
        correlation_id: Correlation = None,
    ) -> None:
        envelope = _staff_envelope(school, by, as_role, command_id, at, correlation_id)
        submit(ctx, command_type, envelope, {"incident_id": incident, "findings": findings})

    return close


incident_app.command(
    "resolve", help="Closes the incident with what was found and done (the time to resolve)."
)(_close("resolve-incident"))
incident_app.command(
    "dismiss", help="Closes the incident as unfounded, with the reasons (findings)."
)(_close("dismiss-incident"))


def register(app: typer.Typer) -> None:
    """Adds ``incident`` (the register itself is ``incidents``)."""
    app.add_typer(incident_app, name="incident")
