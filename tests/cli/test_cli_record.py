"""``sferum-audit record``: JSON Lines in, each line recorded or refused on its own."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import Cli, assert_one_line_error, command, jsonl, max_position, register

from sferum_audit.application.commands import COMMAND_TYPES
from sferum_audit.application.service import AuditLog
from sferum_audit.cli import records


def create_class(school: str, n: int, actor: str | None = None, **fields: Any) -> str:
    fields = {"class_id": f"c{n}", "name": f"{n}А"} | fields
    actor = actor or f"{school}-adm"
    return command(f"{school}-c{n}", "create-class", school, actor, "administrator", **fields)


def write(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "commands.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_recording_a_file_records_every_command_and_prints_a_summary(
    cli: Cli, audit_log: AuditLog, unique: str, tmp_path: Path
) -> None:
    path = write(tmp_path, register(unique), create_class(unique, 5), create_class(unique, 7))

    result = cli("record", str(path))

    assert result.exit_code == 0, result.output
    assert "recorded 3 (9 events), duplicates 0, rejected 0" in result.stdout
    assert result.stderr == ""
    assert max_position(audit_log) >= 9


def test_recording_the_same_file_again_records_nothing_new(
    cli: Cli, audit_log: AuditLog, unique: str, tmp_path: Path
) -> None:
    path = write(tmp_path, register(unique), create_class(unique, 5))
    cli("record", str(path))
    before = max_position(audit_log)

    result = cli("record", str(path))

    assert result.exit_code == 0
    assert "recorded 0 (0 events), duplicates 2, rejected 0" in result.stdout
    assert max_position(audit_log) == before


def test_bad_lines_are_reported_by_line_number_and_code_and_only_good_lines_are_recorded(
    cli: Cli, unique: str, tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        register(unique),
        "",
        '{"command_id": "broken", "type": ',
        command(
            f"{unique}-c5", "create-class", unique, f"{unique}-adm", "administrator", class_id="c5"
        ),
        create_class(unique, 6, actor="not-an-administrator"),
        create_class(unique, 7),
    )

    result = cli("record", str(path))

    assert result.exit_code == 1
    bad_json, schema_error, broken_rule = result.stderr.splitlines()
    assert bad_json.startswith("line 3: invalid-json: not valid JSON")
    assert schema_error == "line 4: invalid-command: create-class.name: Field required"
    assert broken_rule.startswith("line 5: role-not-held: not-an-administrator")
    assert "recorded 2 (6 events), duplicates 0, rejected 3" in result.stdout
    classes = jsonl(cli("events", "--type", "School.ClassCreated", "--format", "jsonl").stdout)
    assert [row["data"]["class_id"] for row in classes if row["command_id"].startswith(unique)] == [
        "c7"
    ]


def test_a_rejected_line_leaves_no_event_only_the_receipt_of_its_refusal(
    cli: Cli, audit_log: AuditLog, unique: str, tmp_path: Path
) -> None:
    cli("record", str(write(tmp_path, register(unique), create_class(unique, 4))))
    before = max_position(audit_log)

    result = cli("record", str(write(tmp_path, create_class(unique, 5, actor="intruder"))))

    assert result.exit_code == 1
    stored = audit_log.recorder.select_notifications(before + 1, 10)
    assert [n.topic.rsplit(":", 1)[1] for n in stored] == ["CommandReceipt.Refused"]


def test_commands_can_come_from_stdin(cli: Cli, unique: str) -> None:
    lines = "\n".join([register(unique), create_class(unique, 5)]) + "\n"

    result = cli("record", "-", input=lines)

    assert result.exit_code == 0, result.output
    assert "recorded 2" in result.stdout


def test_json_format_prints_one_result_per_line_with_its_line_number(
    cli: Cli, unique: str, tmp_path: Path
) -> None:
    path = write(tmp_path, register(unique), "[1, 2]", "", register(unique))

    result = cli("record", str(path), "--format", "json")

    assert result.exit_code == 1
    rows = jsonl(result.stdout)
    assert [(row["line"], row["status"]) for row in rows] == [
        (1, "recorded"),
        (2, "rejected"),
        (4, "duplicate"),
    ]
    assert rows[0]["events"][0]["type"] == "School.Registered"
    assert rows[1]["error"]["code"] == "invalid-command"
    assert rows[2]["events"] == rows[0]["events"]
    assert "duplicates 1, rejected 1" in result.stderr


def test_a_file_larger_than_a_batch_is_recorded_in_batches_in_line_order(
    sqlite_cli: Cli, unique: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(records, "BATCH_SIZE", 2)
    lines = [register(unique), *(create_class(unique, n) for n in range(1, 5))]
    lines.insert(3, create_class(unique, 9, actor="intruder"))
    path = write(tmp_path, *lines)

    result = sqlite_cli("record", str(path), "--format", "json")

    statuses = [(row["line"], row["status"]) for row in jsonl(result.stdout)]
    assert statuses == [
        (1, "recorded"),
        (2, "recorded"),
        (3, "recorded"),
        (4, "rejected"),
        (5, "recorded"),
        (6, "recorded"),
    ]


def test_a_byte_order_mark_and_windows_line_ends_are_accepted(
    sqlite_cli: Cli, unique: str, tmp_path: Path
) -> None:
    path = tmp_path / "windows.jsonl"
    text = "\r\n".join([register(unique), create_class(unique, 5)]) + "\r\n"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))

    result = sqlite_cli("record", str(path))

    assert result.exit_code == 0, result.output
    assert "recorded 2" in result.stdout


def test_a_missing_file_is_one_line_error(sqlite_cli: Cli, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.jsonl"

    result = sqlite_cli("record", str(missing))

    assert_one_line_error(result, str(missing), "No such file or directory")


def test_a_folder_instead_of_a_file_is_one_line_error(sqlite_cli: Cli, tmp_path: Path) -> None:
    result = sqlite_cli("record", str(tmp_path))

    assert_one_line_error(result, str(tmp_path))


def test_schema_prints_the_json_schema_of_every_command_type(sqlite_cli: Cli) -> None:
    result = sqlite_cli("schema")

    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    types = {
        definition["properties"]["type"]["const"]
        for definition in schema["$defs"].values()
        if "type" in definition.get("properties", {})
    }
    assert types == set(COMMAND_TYPES)


@pytest.mark.parametrize(
    ("bad_line", "code"),
    [
        ("[" * 10_000 + "]" * 10_000, "command-too-deep"),
        ('{"command_id": "deep", "x": ' + '{"a": ' * 1_000 + "1" + "}" * 1_001, "command-too-deep"),
        ('{"command_id": "huge", "x": ' + "9" * 5_000 + "}", "number-too-long"),
        ('{"command_id": "long", "x": "' + "x" * 300_000 + '"}', "command-too-large"),
    ],
)
def test_a_malformed_line_in_a_chunk_is_refused_alone_and_every_good_line_recorded(
    sqlite_cli: Cli,
    unique: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    bad_line: str,
    code: str,
) -> None:
    monkeypatch.setattr(records, "BATCH_SIZE", 4)
    classes = [create_class(unique, n) for n in range(1, 10)]
    path = write(tmp_path, register(unique), *classes[:3], bad_line, *classes[3:])

    result = sqlite_cli("record", str(path), "--format", "json")

    assert result.exit_code == 1
    rows = jsonl(result.stdout)
    assert [row["line"] for row in rows] == list(range(1, 12))
    assert [row["status"] for row in rows].count("recorded") == 10
    [refused] = [row for row in rows if row["status"] == "rejected"]
    assert (refused["line"], refused["error"]["code"]) == (5, code)
    assert "recorded 10 (" in result.stderr


def test_a_line_that_makes_the_service_fail_is_refused_alone_by_its_number(
    sqlite_cli: Cli, unique: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sferum_audit.application.handlers import HANDLERS

    original = HANDLERS["create-class"]

    def fails_on_c3(uow: Any, command: Any, ctx: Any) -> None:
        if command.class_id == "c3":
            raise RuntimeError("a bug this command triggers")
        original(uow, command, ctx)

    monkeypatch.setitem(HANDLERS, "create-class", fails_on_c3)
    path = write(tmp_path, register(unique), *(create_class(unique, n) for n in range(1, 6)))

    result = sqlite_cli("record", str(path))

    assert result.exit_code == 1
    [refused] = [line for line in result.stderr.splitlines() if line.startswith("line ")]
    assert refused.startswith("line 4: internal-error: the service failed on this command")
    assert "recorded 5 (" in result.stdout
