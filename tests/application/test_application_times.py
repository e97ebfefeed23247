"""Times that cannot be true are refused: occurred_at as a number or a string without a
timezone, acts dated beyond the allowed clock skew, and lifecycle steps dated before the
step they follow."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sferum_app_builder import ADMIN, CLASS_TEACHER, STUDENT, SchoolBuilder

from sferum_audit.application.bootstrap import build_audit_log
from sferum_audit.application.commands import CommandRejected, command_json_schema, parse_command
from sferum_audit.application.settings import Settings


@pytest.mark.parametrize("moment", [12345, "12345", 0, -1e9, True, "2024-12-02T10:15:00", ""])
def test_occurred_at_that_is_not_an_iso_time_with_timezone_is_refused(
    school: SchoolBuilder, moment: object
) -> None:
    raw = school.raw("create-class", ADMIN, class_id="7v", name="7В") | {"occurred_at": moment}
    with pytest.raises(CommandRejected) as refused:
        parse_command(raw)
    assert "occurred_at" in refused.value.message
    assert "ISO 8601" in refused.value.message


def test_other_times_of_a_command_must_be_iso_strings_too(school: SchoolBuilder) -> None:
    raw = school.raw(
        "issue-invitation",
        ADMIN,
        invitation_id="i-1",
        chat_id="class-5a",
        role="student",
        expires_at="1700000000",
    )
    with pytest.raises(CommandRejected, match="expires_at"):
        parse_command(raw)


def test_the_published_schema_says_occurred_at_is_a_date_time_string_with_timezone() -> None:
    schema = command_json_schema()
    occurred_at = schema["$defs"]["CreateClass"]["properties"]["occurred_at"]
    assert (occurred_at["type"], occurred_at["format"]) == ("string", "date-time")
    assert "pattern" in occurred_at


def test_an_act_dated_beyond_the_clock_skew_is_refused(school: SchoolBuilder) -> None:
    ahead = datetime.now(UTC) + school.app.clock_skew + timedelta(minutes=1)
    raw = school.raw("create-class", ADMIN, class_id="7v", name="7В", at=ahead)
    result = school.app.handle(parse_command(raw))
    assert result.error_code == "occurred-at-in-future"


def test_an_act_dated_within_the_clock_skew_is_recorded(school: SchoolBuilder) -> None:
    school.app.clock_skew = timedelta(minutes=10)
    ahead = datetime.now(UTC) + timedelta(minutes=5)
    raw = school.raw("create-class", ADMIN, class_id="7v", name="7В", at=ahead)
    assert school.app.handle(parse_command(raw)).status == "recorded"


def test_the_clock_skew_is_a_setting(tmp_path: Path) -> None:
    app = build_audit_log(Settings(data_dir=tmp_path, clock_skew_seconds=30))
    try:
        assert app.clock_skew == timedelta(seconds=30)
    finally:
        app.close()
    assert Settings(data_dir=tmp_path).clock_skew_seconds == 300


def test_a_refused_student_in_the_future_still_leaves_the_school_usable(
    school: SchoolBuilder,
) -> None:
    ahead = datetime.now(UTC) + timedelta(days=365)
    raw = school.raw(
        "add-member", CLASS_TEACHER, chat_id="class-5a", profile_id=STUDENT.id, at=ahead
    )
    assert school.app.handle(parse_command(raw)).error_code == "occurred-at-in-future"
    school.ok("add-member", CLASS_TEACHER, chat_id="class-5a", profile_id=STUDENT.id)
