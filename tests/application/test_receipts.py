"""The receipt event a batch makes directly is the one the aggregate would trigger."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

from sferum_audit.application.receipts import CommandReceipt
from sferum_audit.domain.context import CommandContext


def test_a_receipt_event_made_directly_rebuilds_the_same_receipt_as_the_aggregate() -> None:
    ctx = CommandContext(
        actor_id="t-1",
        actor_role="teacher",
        occurred_at=datetime(2026, 9, 1, tzinfo=UTC),
        command_id=f"cmd-{uuid4()}",
        correlation_id="corr-1",
    )
    first, second = uuid4(), uuid4()
    refs = [[str(first), "3"], [str(second), "1"]]
    fields = {
        "ctx": ctx,
        "command_id": ctx.command_id,
        "command_type": "remove-content",
        "fingerprint": "f" * 64,
        "events": refs,
    }
    (by_aggregate,) = CommandReceipt(**fields).collect_events()
    direct = CommandReceipt.receipt_event(**fields)

    assert type(direct) is type(by_aggregate)
    assert (direct.originator_id, direct.originator_version, direct.originator_topic) == (
        by_aggregate.originator_id,
        by_aggregate.originator_version,
        by_aggregate.originator_topic,
    )
    rebuilt = direct.mutate(None)
    assert isinstance(rebuilt, CommandReceipt)
    assert rebuilt.id == CommandReceipt.create_id(ctx.command_id)
    assert (rebuilt.command_id, rebuilt.fingerprint) == (ctx.command_id, "f" * 64)
    assert rebuilt.recorded() == [(first, 3), (second, 1)]
