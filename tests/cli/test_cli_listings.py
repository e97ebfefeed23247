"""Listings a person can read at 80 and 120 columns; exports that keep every field; filter
values checked; data that cannot drive a terminal or a spreadsheet."""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any

import pytest
from cli_helpers import Cli, assert_one_line_error

from sferum_audit.application.service import AuditLog
from sferum_audit.cli.output import csv_cell, safe
from sferum_audit.cli.views import AUDIT, INCIDENTS

WIDTHS = ("80", "120")
LISTINGS = (
    ("audit",),
    ("incidents", "--all"),
    ("invitations",),
    ("chats",),
    ("members", "class-5a"),
    ("links",),
    ("classes",),
    ("stats",),
    ("events", "--limit", "40"),
    ("regulation",),
)


def table(cli: Cli, width: str, *args: str) -> str:
    result = cli(*args, COLUMNS=width)
    assert result.exit_code == 0, result.output
    return result.stdout


def exported(cli: Cli, *args: str) -> list[dict[str, Any]]:
    result = cli(*args, "--format", "json")
    assert result.exit_code == 0, result.output
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    return rows


# -- tables that fit -------------------------------------------------------------------------------


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("args", LISTINGS, ids=lambda a: a[0])
def test_every_listing_fits_the_terminal(
    sqlite_cli: Cli, sqlite_school: str, width: str, args: tuple[str, ...]
) -> None:
    out = table(sqlite_cli, width, *args)

    too_wide = [line for line in out.splitlines() if len(line.rstrip()) > int(width)]
    assert too_wide == [], too_wide


@pytest.mark.parametrize("width", WIDTHS)
def test_the_audit_trail_wraps_reasons_between_words_and_shows_local_minutes(
    sqlite_cli: Cli, sqlite_school: str, width: str
) -> None:
    rows = exported(sqlite_cli, "audit", "--school", sqlite_school)
    out = table(sqlite_cli, width, "audit", "--school", sqlite_school)

    words = set(out.split())
    for row in rows:
        for word in row["reason"].split():
            assert word in words, (word, out)  # never broken in the middle
    # 2024-12-03T16:40Z is 18:40 in Kaliningrad (UTC+2); no seconds, no microseconds
    assert "2024-12-03 18:40" in out
    assert ".000000" not in out
    assert "+00:00" not in out
    assert f"{len(rows)} rows; times in Europe/Kaliningrad" in " ".join(out.split())
    assert len(out.splitlines()) < 8 * len(rows)


def test_a_narrow_terminal_names_the_columns_it_leaves_out(
    sqlite_cli: Cli, sqlite_school: str
) -> None:
    narrow = " ".join(table(sqlite_cli, "80", "audit").split())
    wide = table(sqlite_cli, "120", "audit")

    assert "not shown here: chat_id" in narrow
    assert "whom" in wide.splitlines()[1]  # the header at 120 columns


def test_the_time_zone_is_a_setting(sqlite_cli: Cli, sqlite_school: str) -> None:
    result = sqlite_cli("audit", SFERUM_AUDIT_TIME_ZONE="Europe/Moscow", COLUMNS="120")
    unknown = sqlite_cli("audit", SFERUM_AUDIT_TIME_ZONE="Mars/Olympus")

    assert "2024-12-03 19:40" in result.stdout  # UTC+3
    assert "times in Europe/Moscow" in result.stdout
    assert_one_line_error(unknown, "SFERUM_AUDIT_TIME_ZONE", "Mars/Olympus")


def test_wide_incidents_show_nested_data_as_indented_lines(
    sqlite_cli: Cli, sqlite_school: str
) -> None:
    out = table(sqlite_cli, "100", "incidents", "--all", "--wide")

    assert "provenance:" in out
    assert re.search(r"^\s+links:$", out, re.MULTILINE), out
    assert re.search(r"^\s+- action: linked; elzhur_account_id: ", out, re.MULTILINE), out
    assert "{" not in out  # no JSON in a cell


def test_columns_chooses_the_table_and_is_checked(sqlite_cli: Cli, sqlite_school: str) -> None:
    chosen = table(sqlite_cli, "120", "audit", "--columns", "position,command_id")
    bad = sqlite_cli("audit", "--columns", "position,colour")

    assert chosen.splitlines()[1].split() == ["#", "command_id"]
    assert_one_line_error(bad, "'colour'", "valid: position, occurred_at", exit_code=2)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("incidents", "--overdue"), "Access incidents (4.2.2): no open incident is "
                                     "unacknowledged after 24 hours."),
        (("audit", "--action", "member-blocked", "--ground", "4.2.1"),
         "Audit trail: no moderation action matches --ground 4.2.1 --action member-blocked."),
        (("invitations", "--stale", "5000"), "Invitation links: no link unused after 5000 days."),
    ],
)  # fmt: skip
def test_nothing_matching_is_one_clear_line(
    sqlite_cli: Cli, sqlite_school: str, args: tuple[str, ...], says: str
) -> None:
    result = sqlite_cli(*args, *(("--now", "2024-12-02T00:00Z") if args[0] != "audit" else ()))

    assert result.exit_code == 0, result.output
    assert result.stdout == says + "\n"


# -- exports -----------------------------------------------------------------------------------


def test_exports_keep_every_field_whatever_the_table_shows(
    sqlite_cli: Cli, sqlite_school: str
) -> None:
    audit = exported(sqlite_cli, "audit")
    incidents = exported(sqlite_cli, "incidents", "--all")
    as_csv = list(csv.DictReader(io.StringIO(sqlite_cli("audit", "-f", "csv").stdout)))

    assert list(audit[0]) == list(AUDIT.columns)
    for field in ("excerpt", "correlation_id", "event_id", "recorded_at", "moderator_name"):
        assert field in audit[0]
    assert list(incidents[0])[: len(INCIDENTS.columns)] == list(INCIDENTS.columns)
    assert incidents[0]["provenance"]["links"]
    assert [r["position"] for r in as_csv] == [str(r["position"]) for r in audit]
    assert audit[0]["occurred_at"].endswith(".000000+00:00")  # exports keep the stored text


# -- filters -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (("audit", "--authority", "9.9"), ("--authority", "'9.9'", "valid: 2.3, 2.4, 2.5")),
        (("audit", "--ground", "bogus"), ("--ground", "4.2.1", "law", "third-party-rights")),
        (("audit", "--action", "deleted"), ("--action", "content-removed")),
        (("invitations", "--status", "bogus"), ("--status", "annulled, expired, issued")),
        (("audit", "--since", "2024-12-06T07:00"), ("--since", "has no timezone", "+02:00")),
        (("incidents", "--now", "tomorrow"), ("--now", "not an ISO 8601 time")),
        (("events", "--type", "Nonsense"), ("--type", "Chat.ContentRemoved")),
    ],
)
def test_a_filter_value_that_cannot_match_is_refused_with_the_valid_ones(
    sqlite_cli: Cli, sqlite_school: str, args: tuple[str, ...], fragments: tuple[str, ...]
) -> None:
    assert_one_line_error(sqlite_cli(*args), *fragments, exit_code=2)


def test_an_unknown_school_or_chat_lists_the_known_ones(
    sqlite_cli: Cli, sqlite_school: str
) -> None:
    school = sqlite_cli("audit", "--school", "nowhere")
    chat = sqlite_cli("members", "class-11z")

    assert_one_line_error(school, "--school", "'nowhere'", sqlite_school, exit_code=2)
    assert_one_line_error(chat, "CHAT", "'class-11z'", "class-5a", exit_code=2)


def test_a_bare_date_is_a_day_in_the_schools_time_zone(sqlite_cli: Cli, sqlite_school: str) -> None:
    every = exported(sqlite_cli, "audit")
    day = exported(sqlite_cli, "audit", "--since", "2024-12-04", "--until", "2024-12-04")

    expected = [
        r["position"] for r in every if "2024-12-03T22:00" <= r["occurred_at"] < "2024-12-04T22:00"
    ]
    assert [r["position"] for r in day] == expected
    assert expected


# -- hostile data ------------------------------------------------------------------------------


HOSTILE = {
    "formula": '=HYPERLINK("http://evil.example","click")',
    "command": "+cmd|' /C calc'!A0",
    "at": "@SUM(1+1)*cmd|' /C calc'!A0",
    "minus": "-2+3+cmd|' /C calc'!A0",
    "tab": "\t=1+1",
    "cr": "\r=1+1",
}


def remove(cli: Cli, school: str, message: str, reason: str) -> None:
    result = cli(
        "moderate", "remove-content", "--school", school, "--chat", "class-5a",
        "--moderator", f"{school}-t-1", "--authority", "2.5", "--ground", "4.2.4",
        "--message", message, "--author", f"{school}-s-01", "--reason", reason,
        "--at", "2024-12-07T10:00+02:00",
    )  # fmt: skip
    assert result.exit_code == 0, result.output


def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised(
    sqlite_cli: Cli, sqlite_school: str
) -> None:
    for name, reason in HOSTILE.items():
        remove(sqlite_cli, sqlite_school, f"msg-{name}", reason)

    rows = list(csv.DictReader(io.StringIO(sqlite_cli("audit", "-f", "csv").stdout)))
    as_json = exported(sqlite_cli, "audit")

    reasons = {r["message_id"]: r["reason"] for r in rows}
    for name, reason in HOSTILE.items():
        assert reasons[f"msg-{name}"] == "'" + reason
    assert {r["reason"] for r in as_json} >= set(HOSTILE.values())  # JSON keeps the data
    assert csv_cell(-1) == "-1"  # numbers are numbers, not formulas
    assert csv_cell("плохое слово") == "плохое слово"


def test_control_characters_in_data_are_shown_escaped_in_tables(
    sqlite_cli: Cli, sqlite_school: str
) -> None:
    forged = "\x1b[32mALL RECORDS VERIFIED OK\x1b[0m \x1b]8;;http://evil.example\x07link \u202eevil"
    remove(sqlite_cli, sqlite_school, "msg-escape", forged)

    out = table(sqlite_cli, "200", "audit", "--columns", "reason")

    for raw in ("\x1b", "\x07", "\u202e"):
        assert raw not in out
    assert "\\x1b[32mALL RECORDS VERIFIED OK\\x1b[0m" in out
    assert "\\u202eevil" in out
    assert safe("строка\nвторая") == "строка\\nвторая"


def test_help_texts_show_bracketed_words(sqlite_cli: Cli) -> None:
    for command in ("forget", "rejected", "forget-rejected"):
        result = sqlite_cli(command, "--help", COLUMNS="200")
        assert "[erased]" in result.stdout, command


def test_a_sealed_log_is_verified_from_a_store_opened_for_reading(
    sqlite_cli: Cli, sqlite_audit_log: AuditLog, sqlite_school: str
) -> None:
    assert sqlite_cli("seal").exit_code == 0

    result = sqlite_cli("verify")

    assert result.exit_code == 0, result.output


def test_seal_says_its_news_once(sqlite_cli: Cli, sqlite_school: str) -> None:
    result = sqlite_cli("seal", SFERUM_AUDIT_LOG_LEVEL="INFO")

    assert result.exit_code == 0, result.output
    assert "signed checkpoint at size" in result.stdout
    assert "checkpoint signed" not in result.stderr  # the service's log line, not for people
