"""Application fixtures: the audit log on each store, and a ready school built through it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sferum_app_builder import SchoolBuilder

from sferum_audit.application.bootstrap import build_audit_log
from sferum_audit.application.service import AuditLog
from sferum_audit.application.settings import Settings


@pytest.fixture
def app(settings: Settings) -> Iterator[AuditLog]:
    audit_log = build_audit_log(settings)
    try:
        yield audit_log
    finally:
        audit_log.close()


@pytest.fixture
def school(app: AuditLog, unique: str) -> SchoolBuilder:
    """School 58 set up as ``SchoolBuilder.setup`` describes, on the store under test."""
    return SchoolBuilder(app, unique).setup()
