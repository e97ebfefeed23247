"""Erasure reaches refused commands' payloads, from the command line, and the seal holds.

``forget`` makes every rejected payload that names the person unreadable (``rejected``
shows ``[erased]`` in each format) and the act's log extract lists those rejections;
``forget-rejected`` erases a payload that names nobody; ``verify`` passes after both.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from typing import Any

from faststream.nats.testing import build_message
from integrity_helpers import Cli, one_error_line, record_school

from sferum_audit.application.bootstrap import build_audit_log
from sferum_audit.application.sample_school import sample_school
from sferum_audit.application.settings import Settings
from sferum_audit.consumers.ingest import IngestProcessor
from sferum_audit.consumers.settings import PipelineSettings
from sferum_audit.domain.personal_data import ERASED


class NoTransport:
    async def reply(self, subject: str, payload: bytes, headers: dict[str, str]) -> None:
        return None

    async def dead_letter(self, subject: str, payload: bytes, headers: dict[str, str]) -> None:
        raise AssertionError("no dead letters expected")


def cast(school_id: str) -> dict[str, str]:
    """An administrator, a student with a parent, and another student of the sample."""
    commands = sample_school(school_id)
    students = [
        c["profile_id"]
        for c in commands
        if c["type"] == "register-profile" and c["role"] == "student"
    ]
    student = next(
        s
        for s in students
        if any(s in c.get("children", []) for c in commands if c["type"] == "register-profile")
    )
    parent = next(
        c["profile_id"]
        for c in commands
        if c["type"] == "register-profile" and student in c.get("children", [])
    )
    other = next(s for s in students if s != student)
    return {
        "school": school_id,
        "admin": commands[0]["first_administrator_id"],
        "student": student,
        "parent": parent,
        "other": other,
    }


def removal(who: dict[str, str], actor: str, author: str, excerpt: str) -> dict[str, Any]:
    """A removal a student may not make: refused by the rules, kept as a rejection."""
    return {
        "command_id": f"refused-{actor}-{author}",
        "type": "remove-content",
        "school_id": who["school"],
        "actor": {"id": actor, "role": "student"},
        "occurred_at": "2024-12-09T10:00:00+00:00",
        "chat_id": "no-such-chat",
        "authority": "2.5",
        "ground": "4.2.4",
        "message_id": "m-1",
        "author_id": author,
        "reason": "breaks the rules",
        "excerpt": excerpt,
    }


def ingest(settings: Settings, school: str, payloads: list[bytes]) -> None:
    async def run() -> None:
        app = build_audit_log(settings)
        try:
            subject = f"sferum.ingest.0.{school}.remove-content"
            messages = [await build_message(data, subject) for data in payloads]
            options = PipelineSettings(instance_id="erasure", metrics_port=None)
            report = await IngestProcessor(app, options, NoTransport()).process(messages)
            assert report.rejected == len(payloads), report
        finally:
            app.close()

    asyncio.run(run())


def listed(cli: Cli, fmt: str = "json") -> dict[str, dict[str, Any]]:
    """``rejected`` rows by command id (the non-JSON payload has none: key ``None``)."""
    result = cli("rejected", "--format", fmt)
    assert result.exit_code == 0, result.output
    if fmt == "csv":
        rows: list[dict[str, Any]] = list(csv.DictReader(io.StringIO(result.stdout)))
        return {row["command_id"] or "None": row for row in rows}
    return {str(row["command_id"]): row for row in json.loads(result.stdout)}


def test_forget_reaches_rejected_payloads_and_the_log_still_verifies(
    settings: Settings, unique: str
) -> None:
    school = f"s{unique}"
    who = cast(school)
    app = build_audit_log(settings)
    record_school(app, school)
    app.close()
    about_student = f"Сообщение ученика {unique}"
    about_other = f"Сообщение другого {unique}"
    naming = removal(who, who["other"], who["student"], about_student)
    not_naming = removal(who, who["other"], who["other"], about_other)
    garbage = f"Фамилия Имя {unique} {{not json".encode()
    ingest(
        settings,
        school,
        [json.dumps(c, ensure_ascii=False).encode() for c in (naming, not_naming)] + [garbage],
    )
    cli = Cli(settings)
    assert cli("seal").exit_code == 0
    before = listed(cli)
    assert before[naming["command_id"]]["payload_state"] == "readable"
    assert about_student in before[naming["command_id"]]["payload"]
    position = before[naming["command_id"]]["position"]

    forgot = cli(
        "forget",
        who["student"],
        "--requested-by",
        who["parent"],
        "--basis",
        "заявление родителя № 18",
        "--school",
        school,
        "--by",
        who["admin"],
        "--erasure-id",
        f"er-{unique}",
    )
    assert forgot.exit_code == 0, forgot.output
    assert (
        f"1 rejected command payload(s) naming them are unreadable now (positions {position})"
        in (forgot.stdout)
    )

    rows = listed(cli)
    assert rows[naming["command_id"]]["payload"] == ERASED
    assert rows[naming["command_id"]]["payload_state"] == "erased"
    assert rows[naming["command_id"]]["error_code"] == before[naming["command_id"]]["error_code"]
    assert rows[not_naming["command_id"]]["payload_state"] == "readable"
    assert about_other in rows[not_naming["command_id"]]["payload"]
    assert rows["None"]["payload_state"] == "readable"
    as_csv = listed(cli, "csv")
    assert as_csv[naming["command_id"]]["payload"] == ERASED
    assert as_csv[naming["command_id"]]["payload_state"] == "erased"
    table = cli("rejected", "--format", "table", "--wide", COLUMNS="1000")
    assert table.exit_code == 0, table.output
    assert ERASED in table.stdout
    assert about_student not in table.stdout
    assert about_other in table.stdout

    act = json.loads((settings.data_dir / "erasures" / f"er-{unique}.json").read_text())
    extract = {entry["position"]: entry for entry in act["log_extract"]}
    assert extract[position]["event_type"] == "RejectedCommand.Recorded"
    assert "named_persons" in extract[position]["subject_appears_as"]
    assert about_student not in json.dumps(act, ensure_ascii=False)

    verified = cli("verify")
    assert verified.exit_code == 0, verified.output

    # The payload that names nobody is erased on its own, by the school's administrator.
    garbage_position = str(rows["None"]["position"])
    erased = cli(
        "forget-rejected", garbage_position, "--basis", "holds a name", "--by", who["admin"]
    )
    assert erased.exit_code == 0, erased.output
    assert "key destroyed now" in erased.stdout
    assert listed(cli)["None"]["payload_state"] == "erased"
    assert listed(cli)[not_naming["command_id"]]["payload_state"] == "readable"
    assert cli("seal").exit_code == 0
    verified = cli("verify")
    assert verified.exit_code == 0, verified.output


def test_forget_rejected_names_a_position_that_holds_no_rejection(
    settings: Settings, unique: str
) -> None:
    app = build_audit_log(settings)
    record_school(app, f"s{unique}", 5)
    app.close()
    result = Cli(settings)("forget-rejected", "1", "--basis", "a note", "--by", "someone")
    one_error_line(result, "unknown-rejection", "position 1")
