"""``sferum-audit events``: the raw log in global order, filtered, in every format."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from cli_helpers import Cli, assert_one_line_error, jsonl

from sferum_audit.application.service import AuditLog
from sferum_audit.cli import events as events_command
from sferum_audit.domain.chat import Chat

COLUMNS = [
    "position",
    "recorded_at",
    "occurred_at",
    "type",
    "aggregate_id",
    "version",
    "actor_id",
    "actor_role",
    "command_id",
    "correlation_id",
    "data",
]


def rows(cli: Cli, *args: str) -> list[dict[str, Any]]:
    result = cli("events", "--format", "jsonl", *args)
    assert result.exit_code == 0, result.output
    return jsonl(result.stdout)


def test_events_lists_the_whole_log_in_global_order_without_receipts(
    cli: Cli, audit_log: AuditLog, loaded_school: str
) -> None:
    listed = rows(cli)

    positions = [row["position"] for row in listed]
    assert positions == sorted(positions)
    assert {row["type"] for row in listed} >= {"School.Registered", "Chat.ContentRemoved"}
    assert not [row for row in listed if row["type"] == "CommandReceipt.Recorded"]
    assert list(listed[0]) == COLUMNS
    assert listed[-1]["position"] < (audit_log.recorder.max_notification_id() or 0)


def test_receipts_are_shown_on_request(cli: Cli, loaded_school: str) -> None:
    without = rows(cli)
    with_receipts = rows(cli, "--include-receipts")

    receipts = [row for row in with_receipts if row["type"] == "CommandReceipt.Recorded"]
    assert len(receipts) == 252  # one per sample command, one for the CLI source's registration
    assert len(with_receipts) == len(without) + len(receipts)


def test_type_filter_takes_the_type_or_its_last_part_and_repeats(
    cli: Cli, loaded_school: str
) -> None:
    by_type = rows(cli, "--type", "Chat.ContentRemoved")
    by_name = rows(cli, "--type", "ContentRemoved")
    two_types = rows(cli, "--type", "ContentRemoved", "--type", "Chat.MemberBlocked")

    assert len(by_type) == 6
    assert by_name == by_type
    assert {row["type"] for row in two_types} == {"Chat.ContentRemoved", "Chat.MemberBlocked"}
    assert len(two_types) == 7
    assert cli("events", "--type", "Removed").exit_code == 2  # a part of a name is no type


def test_aggregate_filter_shows_one_aggregate_at_its_global_positions(
    cli: Cli, loaded_school: str
) -> None:
    chat_id = str(Chat.create_id(loaded_school, "class-7b"))
    everything = {row["position"]: row for row in rows(cli)}

    chat = rows(cli, "--aggregate", chat_id)

    assert {row["aggregate_id"] for row in chat} == {chat_id}
    assert [row["version"] for row in chat] == list(range(1, len(chat) + 1))
    assert all(everything[row["position"]] == row for row in chat)
    assert [row["type"] for row in chat if "lock" in str(row["type"])] == [
        "Chat.ContentBlocked",
        "Chat.MemberBlocked",
        "Chat.MemberUnblocked",
    ]


def test_aggregate_filter_combines_with_type_from_and_limit(cli: Cli, loaded_school: str) -> None:
    chat_id = str(Chat.create_id(loaded_school, "class-7b"))
    joined = rows(cli, "--aggregate", chat_id, "--type", "MemberJoined")
    after_second = str(joined[1]["position"] + 1)

    later = rows(cli, "--aggregate", chat_id, "--type", "MemberJoined", "--from", after_second,
                 "--limit", "2")  # fmt: skip

    assert later == joined[2:4]


def test_from_and_limit_select_a_window_of_positions(cli: Cli, loaded_school: str) -> None:
    everything = rows(cli, "--include-receipts")
    start = everything[10]["position"]

    window = rows(cli, "--include-receipts", "--from", str(start), "--limit", "5")

    assert window == everything[10:15]


def test_pages_of_the_log_join_up_without_gaps_or_repeats(
    cli: Cli, loaded_school: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_one_page = rows(cli, "--include-receipts")
    chat_id = str(Chat.create_id(loaded_school, "class-5a"))
    chat_in_one_page = rows(cli, "--aggregate", chat_id)
    monkeypatch.setattr(events_command, "PAGE_SIZE", 7)

    assert rows(cli, "--include-receipts") == in_one_page
    assert rows(cli, "--aggregate", chat_id) == chat_in_one_page


def test_data_holds_the_events_own_fields_and_the_envelope_is_in_columns(
    cli: Cli, loaded_school: str
) -> None:
    [unblock] = rows(cli, "--type", "MemberUnblocked")

    assert unblock["actor_id"] == f"{loaded_school}-t-2"
    assert unblock["actor_role"] == "class-teacher"
    assert unblock["correlation_id"] == unblock["data"]["member_id"] + "-block"
    assert unblock["occurred_at"].startswith("2024-12-06T09:00")
    assert set(unblock["data"]) == {"authority", "member_id", "reason"}


def test_every_format_shows_the_same_rows(cli: Cli, loaded_school: str) -> None:
    args = ["events", "--type", "LiabilityWarned"]
    as_jsonl = rows(cli, "--type", "LiabilityWarned")

    as_json = json.loads(cli(*args, "--format", "json").stdout)
    as_csv = list(csv.DictReader(io.StringIO(cli(*args, "--format", "csv").stdout)))
    as_table = cli(*args, "--format", "table").stdout

    assert len(as_jsonl) == 3
    assert as_json == as_jsonl
    assert [row["command_id"] for row in as_csv] == [row["command_id"] for row in as_jsonl]
    assert [json.loads(row["data"]) for row in as_csv] == [row["data"] for row in as_jsonl]
    for row in as_jsonl:
        assert f"\n{row['position']} " in as_table
        assert str(row["command_id"]) in as_table


def test_an_empty_log_lists_nothing(sqlite_cli: Cli, sqlite_audit_log: AuditLog) -> None:
    result = sqlite_cli("events", "--format", "json")
    table = sqlite_cli("events")

    assert result.exit_code == table.exit_code == 0
    assert json.loads(result.stdout) == []
    assert table.stdout == "Events: no event matches.\n"


def test_a_folder_without_a_store_is_an_error_not_an_empty_log(sqlite_cli: Cli) -> None:
    result = sqlite_cli("events", "-f", "json")

    assert_one_line_error(result, "no event store", str(sqlite_cli.settings.data_dir))
    assert not sqlite_cli.settings.event_store_path.exists()


def test_an_unknown_event_type_lists_the_known_ones(cli: Cli, loaded_school: str) -> None:
    result = cli("events", "--type", "ContentRemovd")

    assert_one_line_error(result, "'ContentRemovd' is no event type", "Chat.ContentRemoved",
                          exit_code=2)  # fmt: skip
