"""The sample school: every command accepted, loading twice records nothing, and many
schools live side by side."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest

from sferum_audit.application.commands import parse_command
from sferum_audit.application.sample_school import sample_school
from sferum_audit.application.service import AuditLog, CommandResult


def load(app: AuditLog, commands: list[dict[str, Any]]) -> list[CommandResult]:
    return app.handle_batch([parse_command(command) for command in commands])


def refusals(commands: list[dict[str, Any]], results: list[CommandResult]) -> list[str]:
    return [
        f"{c['command_id']} {c['type']}: {r.error_code}: {r.error_message}"
        for c, r in zip(commands, results, strict=True)
        if r.status != "recorded"
    ]


def test_every_sample_command_is_accepted_on_a_fresh_store(
    audit_log: AuditLog, unique: str
) -> None:
    commands = sample_school(f"sch-{unique}")

    results = load(audit_log, commands)

    assert refusals(commands, results) == []


def test_loading_the_sample_twice_gives_only_duplicates(audit_log: AuditLog, unique: str) -> None:
    commands = sample_school(f"sch-{unique}")
    load(audit_log, commands)
    before = audit_log.recorder.max_notification_id()

    again = load(audit_log, commands)

    assert {r.status for r in again} == {"duplicate"}
    assert audit_log.recorder.max_notification_id() == before


@pytest.mark.parametrize(
    ("seed", "start"),
    [
        (1, None),
        (2, datetime(2025, 3, 31, 23, 55, tzinfo=UTC)),
        (3, datetime(2025, 9, 1, 0, 0, tzinfo=UTC)),
        (4, None),
    ],
)
def test_other_seeds_and_start_times_are_accepted_too(
    sqlite_audit_log: AuditLog, unique: str, seed: int, start: datetime | None
) -> None:
    commands = sample_school(f"sch-{unique}", seed=seed, start=start)

    assert refusals(commands, load(sqlite_audit_log, commands)) == []


def test_schools_of_a_region_are_independent_in_one_store(
    sqlite_audit_log: AuditLog, unique: str
) -> None:
    region = [sample_school(f"{unique}-{n}", seed=n) for n in range(3)]

    results = [load(sqlite_audit_log, commands) for commands in region]

    for commands, loaded in zip(region, results, strict=True):
        assert refusals(commands, loaded) == []


def test_the_same_school_and_seed_give_the_same_commands() -> None:
    assert sample_school("sch-58") == sample_school("sch-58")
    assert sample_school("sch-58", seed=7) == sample_school("sch-58", seed=7)


def test_the_seed_changes_names_but_not_the_command_ids() -> None:
    first, second = sample_school("sch-58"), sample_school("sch-58", seed=7)

    assert [c["command_id"] for c in first] == [c["command_id"] for c in second]
    names = [c["display_name"] for c in first if c["type"] == "register-profile"]
    other_names = [c["display_name"] for c in second if c["type"] == "register-profile"]
    assert names != other_names
    assert len(set(names)) == len(names)


def test_command_ids_come_from_the_school_id_and_a_counter() -> None:
    commands = sample_school("north-7")

    assert [c["command_id"] for c in commands] == [
        f"north-7-{n:05d}" for n in range(1, len(commands) + 1)
    ]


def test_commands_are_in_time_order_and_json_ready() -> None:
    commands = sample_school("sch-58")

    times = [datetime.fromisoformat(c["occurred_at"]) for c in commands]
    assert times == sorted(times)
    assert all(isinstance(c["occurred_at"], str) for c in commands)


def test_the_sample_tells_the_stories_the_demo_shows() -> None:
    commands = sample_school("sch-58")
    types = Counter(c["type"] for c in commands)
    profiles = Counter(c["role"] for c in commands if c["type"] == "register-profile")
    moderation = [c for c in commands if "authority" in c]

    assert profiles == {"teacher": 8, "student": 20, "parent": 12, "security-officer": 1}
    assert types["create-class"] == 3
    assert types["assign-class-teacher"] == 3
    assert types["annul-invitation"] == 2
    assert types["expire-invitation"] == 1
    assert types["report-unauthorised-access"] == 2
    assert types["unblock-member"] == 1
    assert {c["authority"] for c in moderation} == {"2.3", "2.4", "2.5"}
    assert {c["ground"] for c in moderation if "ground" in c} >= {"law", "third-party-rights"}
    assert {c["actor"]["role"] for c in commands if c["type"] == "warn-about-liability"} == {
        "class-teacher"
    }
    registrars = {
        (c["role"], c["actor"]["role"], c["actor"]["id"] == c["profile_id"])
        for c in commands
        if c["type"] == "register-profile"
    }
    assert registrars == {
        ("student", "student", True),
        ("parent", "parent", True),
        ("teacher", "administrator", False),
        ("teacher", "administrator", True),  # the first administrator's own profile
        ("security-officer", "administrator", False),
    }
    [register] = [c for c in commands if c["type"] == "register-school"]
    assert register["actor"]["role"] == "school-administration"
    free_chats = {c["purpose"] for c in commands if c["type"] == "create-chat" and "purpose" in c}
    assert free_chats == {"olympiad", "excursion"}


def test_a_start_without_timezone_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        sample_school("sch-58", start=datetime(2024, 12, 2, 8, 0))
