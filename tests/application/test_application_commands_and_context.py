"""The command schema's refusals, reasons, and the context every recorded event carries."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sferum_app_builder import (
    ADMIN,
    CLASS_TEACHER,
    STUDENT,
    T0,
    As,
    SchoolBuilder,
)

from sferum_audit.application.bootstrap import build_audit_log
from sferum_audit.application.commands import CommandRejected, parse_command
from sferum_audit.application.settings import Settings
from sferum_audit.domain.context import CommandContext

# -- the schema ----------------------------------------------------------------------------------


def test_naive_occurred_at_is_rejected_by_the_schema(school: SchoolBuilder) -> None:
    raw = school.raw("create-class", ADMIN, class_id="7v", name="7В")
    raw["occurred_at"] = "2024-11-25T09:00:00"
    with pytest.raises(CommandRejected) as rejected:
        parse_command(raw)
    assert rejected.value.code == "invalid-command"
    assert "occurred_at" in rejected.value.message


@pytest.mark.parametrize(
    ("command_type", "fields"),
    [
        (
            "issue-invitation",
            {
                "invitation_id": "i",
                "chat_id": "c",
                "role": "student",
                "expires_at": "2024-12-01T00:00:00",
            },
        ),
        (
            "report-unauthorised-access",
            {
                "incident_id": "i",
                "affected_profile_id": "p",
                "noticed_at": "2024-11-25T08:00:00",
                "how_noticed": "x",
                "description": "y",
            },
        ),
    ],
)
def test_every_timestamp_of_a_command_must_be_timezone_aware(
    school: SchoolBuilder, command_type: str, fields: dict[str, str]
) -> None:
    with pytest.raises(CommandRejected) as rejected:
        parse_command(school.raw(command_type, ADMIN, **fields))
    assert rejected.value.code == "invalid-command"


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda raw: raw.update(type="launch-rocket"), "invalid-command"),
        (lambda raw: raw.update(colour="red"), "invalid-command"),
        (lambda raw: raw.pop("command_id"), "invalid-command"),
        (lambda raw: raw.update(command_id="has space"), "invalid-command"),
        (lambda raw: raw["actor"].update(role="director"), "invalid-command"),
    ],
    ids=["unknown-type", "extra-field", "no-command-id", "id-with-space", "unknown-role"],
)
def test_malformed_commands_are_rejected_by_the_schema(
    school: SchoolBuilder, mutate: Callable[[dict], object], code: str
) -> None:
    raw = school.raw("create-class", ADMIN, class_id="7v", name="7В")
    mutate(raw)
    with pytest.raises(CommandRejected) as rejected:
        parse_command(raw)
    assert rejected.value.code == code


def test_invalid_json_is_rejected_with_its_own_code() -> None:
    with pytest.raises(CommandRejected) as rejected:
        parse_command('{"type": "create-class",')
    assert rejected.value.code == "invalid-json"
    with pytest.raises(CommandRejected) as rejected:
        parse_command("[1, 2]")
    assert rejected.value.code == "invalid-command"


# -- reasons: required, non-blank, at most 1000 characters --------------------------------------


def _member_in_class_chat(school: SchoolBuilder) -> None:
    school.add("class-5a", STUDENT.id)


def _blocked_in_class_chat(school: SchoolBuilder) -> None:
    school.add("class-5a", STUDENT.id)
    school.ok(
        "block-member",
        ADMIN,
        chat_id="class-5a",
        authority="2.3",
        ground="4.2.4",
        member_id=STUDENT.id,
        reason="оскорбления",
    )


def _invitation(school: SchoolBuilder) -> None:
    school.ok(
        "issue-invitation",
        ADMIN,
        invitation_id="inv-1",
        chat_id="class-5a",
        role="student",
        expires_at=T0 + timedelta(days=7),
    )


def _second_admin(school: SchoolBuilder) -> None:
    school.ok(
        "appoint-administrator", ADMIN, person_id=school.teaching_staff("adm2"), order_ref="1"
    )


def _linked(school: SchoolBuilder) -> None:
    school.ok("link-account", STUDENT, profile_id=STUDENT.id, elzhur_account_id="elz-1")


def _nothing(school: SchoolBuilder) -> None:
    return None


MODERATION = {"authority": "2.5", "ground": "4.2.4"}
REASONED: dict[str, tuple[As, dict[str, str], Callable[[SchoolBuilder], None]]] = {
    "remove-content": (
        CLASS_TEACHER,
        {"chat_id": "class-5a", "message_id": "m1", "author_id": STUDENT.id, **MODERATION},
        _nothing,
    ),
    "block-content": (
        CLASS_TEACHER,
        {"chat_id": "class-5a", "message_id": "m1", "author_id": STUDENT.id, **MODERATION},
        _nothing,
    ),
    "block-member": (
        CLASS_TEACHER,
        {"chat_id": "class-5a", "member_id": STUDENT.id, **MODERATION},
        _member_in_class_chat,
    ),
    "warn-about-liability": (
        CLASS_TEACHER,
        {"chat_id": "class-5a", "member_id": STUDENT.id, **MODERATION},
        _member_in_class_chat,
    ),
    "unblock-member": (
        ADMIN,
        {"chat_id": "class-5a", "member_id": STUDENT.id, "authority": "2.3"},
        _blocked_in_class_chat,
    ),
    "remove-member": (
        CLASS_TEACHER,
        {"chat_id": "class-5a", "profile_id": STUDENT.id},
        _member_in_class_chat,
    ),
    "record-departure": (ADMIN, {"person_id": STUDENT.id}, _nothing),
    "annul-invitation": (ADMIN, {"invitation_id": "inv-1"}, _invitation),
    "remove-administrator": (ADMIN, {"person_id": "adm2"}, _second_admin),
    "unlink-account": (STUDENT, {"profile_id": STUDENT.id}, _linked),
    "archive-chat": (ADMIN, {"chat_id": "class-5a"}, _nothing),
}


# Moderation commands bound the reason in the schema; the others in the domain.
SCHEMA_BOUNDED = {
    "remove-content",
    "block-content",
    "block-member",
    "unblock-member",
    "warn-about-liability",
}


@pytest.mark.parametrize("command_type", sorted(REASONED))
def test_reason_is_required(school: SchoolBuilder, command_type: str) -> None:
    actor, fields, prepare = REASONED[command_type]
    prepare(school)
    for missing in ({}, {"reason": ""}):
        with pytest.raises(CommandRejected) as rejected:
            school.command(command_type, actor, **fields, **missing)
        assert rejected.value.code == "invalid-command"
    assert school.refused(command_type, actor, **fields, reason="   \n") == "invalid-value"


@pytest.mark.parametrize("command_type", sorted(REASONED))
def test_reason_of_1001_characters_is_refused_and_1000_accepted(
    school: SchoolBuilder, command_type: str
) -> None:
    actor, fields, prepare = REASONED[command_type]
    prepare(school)
    if command_type in SCHEMA_BOUNDED:
        with pytest.raises(CommandRejected) as rejected:
            school.command(command_type, actor, **fields, reason="ж" * 1001)
        assert rejected.value.code == "invalid-command"
    else:
        assert school.refused(command_type, actor, **fields, reason="ж" * 1001) == "invalid-value"
    result = school.ok(command_type, actor, **fields, reason="ж" * 1000)
    reasons = [getattr(e, "reason", None) for e in school.events_of(result)]
    assert "ж" * 1000 in reasons


# -- the context on every event ----------------------------------------------------------------


def test_every_event_carries_actor_occurred_at_command_and_correlation_id(
    school: SchoolBuilder,
) -> None:
    occurred_at = datetime(2024, 12, 2, 10, 30, tzinfo=T0.tzinfo)
    before = datetime.now(UTC)
    result = school.app.handle(
        parse_command(
            school.raw(
                "create-class",
                ADMIN,
                command_id="cmd-class-7v",
                at=occurred_at,
                class_id="7v",
                name="7В",
            )
        )
    )
    after = datetime.now(UTC)
    events = school.events_of(result)
    assert [type(e).__name__ for e in events] == ["ClassCreated", "Created", "Created"]
    for event in events:
        assert event.ctx == CommandContext(
            actor_id=ADMIN.id,
            actor_role="administrator",
            occurred_at=occurred_at,
            command_id="cmd-class-7v",
            correlation_id="cmd-class-7v",
            causation_id=None,
        )
        assert event.ctx.occurred_at.utcoffset() == timedelta(hours=2)
        assert before <= event.timestamp <= after


def test_given_correlation_and_causation_ids_are_kept(school: SchoolBuilder) -> None:
    raw = school.raw("create-class", ADMIN, command_id="cmd-2", class_id="7v", name="7В")
    raw |= {"correlation_id": "request-9", "causation_id": "nats-msg-4"}
    result = school.app.handle(parse_command(raw))
    for event in school.events_of(result):
        assert (event.ctx.command_id, event.ctx.correlation_id, event.ctx.causation_id) == (
            "cmd-2",
            "request-9",
            "nats-msg-4",
        )


def test_context_survives_a_restart(settings: Settings, school: SchoolBuilder) -> None:
    result = school.ok("create-class", ADMIN, class_id="7v", name="7В")
    fresh = build_audit_log(settings)
    try:
        school_events = list(fresh.events.get(school.school().id))
        assert all(isinstance(e.ctx, CommandContext) for e in school_events)
        last = school_events[-1]
        assert type(last).__name__ == "ClassCreated"
        assert last.ctx.command_id == result.command_id
        assert last.ctx.occurred_at.tzinfo is not None
    finally:
        fresh.close()


# -- the role an actor claims is the role recorded: it must be one they hold -------------------


CLAIMS: dict[str, tuple[As, dict[str, str], Callable[[SchoolBuilder], None]]] = {
    "redeem-invitation": (STUDENT("teacher"), {"invitation_id": "inv-1"}, _invitation),
    "link-account": (
        STUDENT("administrator"),
        {"profile_id": STUDENT.id, "elzhur_account_id": "elz-1"},
        _nothing,
    ),
    "unlink-account": (STUDENT("parent"), {"profile_id": STUDENT.id, "reason": "x"}, _linked),
    "add-member": (
        STUDENT("administrator"),
        {"chat_id": "class-5a", "profile_id": STUDENT.id},
        _nothing,
    ),
    "create-chat": (
        STUDENT("teacher"),
        {"chat_id": "c1", "kind": "free", "title": "Чат", "purpose": "project"},
        _nothing,
    ),
    "issue-invitation": (
        STUDENT("class-teacher"),
        {
            "invitation_id": "inv-9",
            "chat_id": "class-5a",
            "role": "student",
            "expires_at": (T0 + timedelta(days=7)).isoformat(),
        },
        _nothing,
    ),
}


@pytest.mark.parametrize("command_type", sorted(CLAIMS))
def test_a_role_the_actor_does_not_hold_is_refused(
    school: SchoolBuilder, command_type: str
) -> None:
    actor, fields, prepare = CLAIMS[command_type]
    prepare(school)
    assert school.refused(command_type, actor, **fields) == "role-not-held"


def _kolya_in_class_chat_with_a_report(school: SchoolBuilder) -> None:
    school.add("class-5a", STUDENT.id)
    school.ok(
        "report-unauthorised-access",
        STUDENT,
        incident_id="inc-1",
        affected_profile_id=STUDENT.id,
        noticed_at=T0,
        how_noticed="письмо",
        description="чужой вход",
    )


UNVERIFIED_CLAIMS: dict[str, tuple[As, dict[str, str]]] = {
    "leave-chat": (STUDENT("administrator"), {"chat_id": "class-5a"}),
    "report-unauthorised-access": (
        STUDENT("security-officer"),
        {
            "incident_id": "inc-2",
            "affected_profile_id": STUDENT.id,
            "noticed_at": T0.isoformat(),
            "how_noticed": "письмо",
            "description": "снова чужой вход",
        },
    ),
    "record-notification": (
        STUDENT("teacher"),
        {"incident_id": "inc-1", "party": "platform-operator", "told_at": T0.isoformat()},
    ),
}


@pytest.mark.parametrize("command_type", sorted(UNVERIFIED_CLAIMS))
def test_a_role_the_actor_does_not_hold_is_refused_for_self_service_commands(
    school: SchoolBuilder, command_type: str
) -> None:
    _kolya_in_class_chat_with_a_report(school)
    actor, fields = UNVERIFIED_CLAIMS[command_type]
    assert school.refused(command_type, actor, **fields) == "role-not-held"


def test_a_results_events_are_listed_in_log_order(school: SchoolBuilder) -> None:
    school.add("class-5a", STUDENT.id)
    result = school.ok("record-departure", ADMIN, person_id=STUDENT.id, reason="переезд")
    positions = [e.position for e in result.events]
    assert positions == sorted(positions)
