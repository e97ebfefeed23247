"""``sferum-audit demo``: loads the sample school once and summarises it from the aggregates."""

from __future__ import annotations

import io
import re

from cli_helpers import Cli, max_position
from rich.console import Console

from sferum_audit.application.sample_school import sample_school
from sferum_audit.application.service import AuditLog
from sferum_audit.application.settings import Settings
from sferum_audit.cli.demo import Summary, describe_store

MODERATION = {"remove-content", "block-content", "block-member", "unblock-member",
              "warn-about-liability"}  # fmt: skip


def test_demo_loads_the_sample_school_and_summarises_it(
    cli: Cli, audit_log: AuditLog, unique: str
) -> None:
    school = f"demo-{unique}"

    result = cli("demo", "--school", school)

    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "loaded 251 sample commands: recorded 251" in out
    assert "rejected 0" in out
    assert f"МАОУ СОШ № 58 г. Калининграда ({school})" in out
    for heading in ("Classes and class teachers", "Chats", "Invitations by status",
                    "Moderation actions of the week", "Unauthorised-access reports"):  # fmt: skip
        assert heading in out
    for text in ("5А", "9В", "olympiad-physics", "excursion-7b", "third-party-rights", "law"):
        assert text in out
    assert "Account links to ElZhur: 36 of 41 profiles" in out
    for status, count in (("annulled", 2), ("expired", 1), ("issued", 2), ("redeemed", 31)):
        assert re.search(rf"^{status}\s+{count}\s*$", out, re.MULTILINE), status
    assert re.search(r"^stale \(unused over 3 days\)\s+2\s*$", out, re.MULTILINE)
    assert re.search(rf"^{school}-inc-1\s+resolved ", out, re.MULTILINE)
    assert re.search(rf"^{school}-inc-2\s+acknowledged ", out, re.MULTILINE)
    assert max_position(audit_log) > 251


def test_demo_twice_records_nothing_new_and_says_so(cli: Cli, audit_log: AuditLog) -> None:
    first = cli("demo")
    after_first = max_position(audit_log)

    second = cli("demo")

    assert first.exit_code == second.exit_code == 0, second.output
    assert "already loaded" not in first.stdout
    assert "already loaded: 251 duplicates, nothing new recorded" in second.stdout
    assert max_position(audit_log) == after_first

    def summary(out: str) -> str:  # from the school's name to the seal
        text = "МАОУ" + out.split("МАОУ", 1)[1].split("sealed positions")[0]
        # an open incident's age (hours, one decimal) is counted to now, which moves on
        return re.sub(r"\b\d+\.\d\b", "<hours>", text)

    assert summary(second.stdout) == summary(first.stdout)
    assert f"sealed positions 1..{after_first} (0 new)" in second.stdout


def test_the_demo_leaves_a_sealed_log_that_verify_accepts(sqlite_cli: Cli) -> None:
    demo = sqlite_cli("demo", "--direct")
    verify = sqlite_cli("verify")

    assert demo.exit_code == 0, demo.output
    assert "signed checkpoint at size" in demo.stdout
    assert verify.exit_code == 0, verify.output


def test_the_demo_at_80_columns_breaks_no_word_and_no_line(sqlite_cli: Cli) -> None:
    result = sqlite_cli("demo", "--direct", COLUMNS="80")

    assert result.exit_code == 0, result.output
    week = result.stdout.split("Moderation actions of the week")[1].split("Unauthorised")[0]
    printed = set(re.findall(r"\w+", week))
    reasons = [c["reason"] for c in sample_school("sch-58") if c["type"] in MODERATION]
    broken = {w for r in reasons for w in re.findall(r"\w+", r)} - printed
    assert reasons
    assert broken == set()
    assert [line for line in result.stdout.splitlines() if len(line.rstrip()) > 80] == []


def test_the_demo_explains_commands_events_receipts_and_positions(
    sqlite_cli: Cli, sqlite_audit_log: AuditLog
) -> None:
    result = sqlite_cli("demo", "--direct")

    head = max_position(sqlite_audit_log)
    text = " ".join(result.stdout.split())
    found = re.search(r"recorded 251 \((\d+) events\)", text)
    assert found is not None, text
    events = int(found.group(1))
    registration = "2 for registering the local CLI source"  # its event and its receipt
    assert f"{events} events + 251 receipts + {registration} = {events + 253} new" in text
    assert f"the log now ends at position {head}" in text
    assert events + 251 + 2 == head


def test_demo_shows_where_the_store_is_without_a_password(sqlite_cli: Cli) -> None:
    result = sqlite_cli("demo", "--school", "sch-store")

    assert f"Store: SQLite {sqlite_cli.settings.event_store_path}" in result.stdout


def test_a_postgresql_store_is_named_without_its_password() -> None:
    url = "postgresql://auditor:secret-password@db.example:5433/audit"

    described = describe_store(Settings(database_url=url, database_schema="school58"))

    assert described == "PostgreSQL db.example:5433/audit, schema school58"


def test_names_and_reasons_are_printed_verbatim_never_as_markup(
    sqlite_audit_log: AuditLog,
) -> None:
    out = io.StringIO()
    summary = Summary(sqlite_audit_log, "sch-none", [], Console(file=out, width=120))

    summary.table("People", ("name", "reason"), [("[erased]", "[bold]shouting[/bold]")])
    summary.show()

    text = out.getvalue()
    assert "[erased]" in text
    assert "[bold]shouting[/bold]" in text
    assert "school sch-none is not recorded" in text
