"""Application fixtures: a ready school, built through the audit log (tests/conftest `app`)."""

from __future__ import annotations

import pytest
from sferum_app_builder import SchoolBuilder

from sferum_audit.application.service import AuditLog


@pytest.fixture
def school(app: AuditLog, unique: str) -> SchoolBuilder:
    """School 58 set up as ``SchoolBuilder.setup`` describes, on the store under test."""
    return SchoolBuilder(app, unique).setup()
