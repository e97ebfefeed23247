"""The composition root: builds the application from settings, once, for every entry point."""

from __future__ import annotations

from sferum_audit.application.service import AuditLog
from sferum_audit.application.settings import Settings
from sferum_audit.application.store import persistence_environment


def build_audit_log(settings: Settings | None = None) -> AuditLog:
    """The audit log on the configured store (SQLite in the data folder, or PostgreSQL)."""
    settings = settings or Settings()
    app = AuditLog(env=persistence_environment(settings))
    app.conflict_retries = settings.conflict_retries
    return app
