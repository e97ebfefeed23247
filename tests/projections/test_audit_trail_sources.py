"""The audit trail names the source that vouched for each moderation action."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from source_signing import provision_local_source

from sferum_audit.application.authentication import vouched_command
from sferum_audit.application.local_sources import local_source_id
from sferum_audit.application.service import AuditLog
from sferum_audit.application.settings import Settings
from sferum_audit.projections import queries
from sferum_audit.projections.database import ViewsDatabase
from sferum_audit.projections.runner import ViewRunner


def removal_like(history: list[dict[str, Any]], command_id: str) -> dict[str, Any]:
    """Another removal by the moderator of the history's first one, with a new id."""
    first = next(c for c in history if c["type"] == "remove-content")
    return dict(first, command_id=command_id, message_id=f"{command_id}-msg")


def test_a_signed_action_names_its_source_and_an_in_process_one_none(
    recorded: AuditLog, views: ViewsDatabase, settings: Settings, history: list[dict[str, Any]]
) -> None:
    school = history[0]["school_id"]
    signer = provision_local_source(recorded, settings, school)
    body = json.dumps(removal_like(history, "signed-removal")).encode()
    command = vouched_command(
        body, signer.signature(body, school, "remove-content"), datetime.now(UTC)
    )
    assert recorded.handle(command).status == "recorded"
    runner = ViewRunner(recorded, views)
    runner.ensure_tables()
    runner.catch_up()

    rows = queries.audit_rows(views, queries.AuditFilter(school=school))

    sources = {row["command_id"]: row["source_id"] for row in rows}
    assert sources["signed-removal"] == local_source_id(school)
    assert {s for cid, s in sources.items() if cid != "signed-removal"} == {None}


def test_views_built_before_sources_gain_the_column_and_keep_following(
    recorded: AuditLog, views: ViewsDatabase, history: list[dict[str, Any]]
) -> None:
    runner = ViewRunner(recorded, views)
    runner.ensure_tables()
    with views.writing() as conn:  # the table as the version before sources made it
        conn.exec_driver_sql('ALTER TABLE "audit_trail" DROP COLUMN "source_id"')

    runner = ViewRunner(recorded, views)
    runner.ensure_tables()
    runner.catch_up()

    with views.reading() as conn:
        columns = {c["name"] for c in sa.inspect(conn).get_columns("audit_trail")}
    assert "source_id" in columns
    school = history[0]["school_id"]
    assert queries.audit_rows(views, queries.AuditFilter(school=school))
