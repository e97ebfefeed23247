"""The environment that points an in-process ``sferum-audit`` at a test's store.

The store reaches the CLI through the ``SFERUM_AUDIT_*`` environment, as in production;
PostgreSQL tests pass their own schema that way too. ``None`` unsets a variable.
"""

from __future__ import annotations

from sferum_audit.application.settings import Settings


def cli_environment(settings: Settings) -> dict[str, str | None]:
    """The variables that point ``sferum-audit`` at ``settings``' store."""
    return {
        "SFERUM_AUDIT_DATA_DIR": str(settings.data_dir),
        "SFERUM_AUDIT_DATABASE_URL": settings.database_url,
        "SFERUM_AUDIT_DATABASE_SCHEMA": settings.database_schema,
        "SFERUM_AUDIT_LOG_FORMAT": "json",
        "SFERUM_AUDIT_LOG_LEVEL": "WARNING",
        "COLUMNS": "200",
    }
