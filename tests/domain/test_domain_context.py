"""Every event carries the command's context; the context itself refuses bad values."""

from __future__ import annotations

from datetime import datetime

import pytest
from domain_factories import ADMIN, T0, class_chat, ctx

from sferum_audit.domain.context import CommandContext
from sferum_audit.domain.errors import DomainError


def make(**changes: object) -> CommandContext:
    fields: dict[str, object] = {
        "actor_id": "adm",
        "actor_role": "administrator",
        "occurred_at": T0,
        "command_id": "cmd-1",
        "correlation_id": "cmd-1",
    }
    fields.update(changes)
    return CommandContext(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "changes",
    [
        {"occurred_at": datetime(2024, 11, 25, 9, 0)},
        {"actor_id": ""},
        {"command_id": ""},
        {"actor_role": "director"},
    ],
    ids=["naive-occurred-at", "empty-actor", "empty-command-id", "unknown-role"],
)
def test_context_refuses_bad_values(changes: dict[str, object]) -> None:
    with pytest.raises(DomainError) as refused:
        make(**changes)
    assert refused.value.code == "invalid-value"


def test_every_event_carries_the_context_of_its_command() -> None:
    chat = class_chat()
    c = ctx("adm", "administrator", command_id="cmd-archive")
    chat.archive(c, ADMIN, "конец учебного года")
    event = chat.collect_events()[-1]
    assert event.ctx == c
    assert event.ctx.as_dict() == {
        "actor_id": "adm",
        "actor_role": "administrator",
        "occurred_at": c.occurred_at,
        "command_id": "cmd-archive",
        "correlation_id": "cmd-archive",
        "causation_id": None,
    }
    assert event.timestamp.tzinfo is not None
