"""CLI commands of this area; registered on the root app by `sferum_audit.cli.main`."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Adds this module's commands to the root `sferum-audit` command."""
