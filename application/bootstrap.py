"""The composition root: builds the application from settings, once, for every entry point."""

from __future__ import annotations

from datetime import timedelta

from sferum_audit.application.local_sources import authenticator_for
from sferum_audit.application.service import AuditLog
from sferum_audit.application.settings import Settings
from sferum_audit.application.store import persistence_environment
from sferum_audit.application.subject_keys import SubjectKeys


def build_audit_log(settings: Settings | None = None, *, read_only: bool = False) -> AuditLog:
    """The audit log on the configured store (SQLite in the data folder, or PostgreSQL).

    ``read_only``: for commands that only read. Nothing is created; SQLite files are
    opened with ``mode=ro`` and every PostgreSQL transaction is read-only, so the command
    works on a write-protected copy and cannot change what it reads."""
    settings = settings or Settings()
    env = persistence_environment(settings, read_only=read_only)
    keys = SubjectKeys.from_settings(settings, read_only=read_only)
    app = AuditLog(env=env, subject_keys=keys, authenticator=authenticator_for(settings))
    app.conflict_retries = settings.conflict_retries
    app.settings = settings
    app.clock_skew = timedelta(seconds=settings.clock_skew_seconds)
    return app
