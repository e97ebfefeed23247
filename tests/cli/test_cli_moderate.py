"""Friendly commands: ``moderate ...`` and ``report-access`` build commands from flags."""

from __future__ import annotations

from typing import Any

from cli_helpers import Cli, assert_one_line_error, jsonl, max_position

from sferum_audit.application.service import AuditLog
from sferum_audit.cli.errors import EXIT_USAGE
from sferum_audit.domain.chat import Chat

AT = "2024-12-09T10:00:00+02:00"


def moderate(school: str, action: str, *args: str) -> list[str]:
    return ["moderate", action, "--school", school, "--at", AT, *args]


def chat_events(cli: Cli, school: str, chat: str, type_: str) -> list[dict[str, Any]]:
    aggregate = str(Chat.create_id(school, chat))
    args = ["events", "--aggregate", aggregate, "--type", type_, "--format", "jsonl"]
    return jsonl(cli(*args).stdout)


def test_remove_content_records_the_action_and_prints_its_position(
    cli: Cli, loaded_school: str
) -> None:
    school = loaded_school
    args = moderate(school, "remove-content", "--chat", "class-5a")
    args += ["--moderator", f"{school}-t-1", "--authority", "2.5", "--ground", "4.2.4"]
    args += ["--message", "m-77", "--author", f"{school}-s-02", "--reason", "Грубость"]
    args += ["--excerpt", "(грубое слово)", "--command-id", f"{school}-cli-1"]

    result = cli(*args)

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"recorded: remove-content, command {school}-cli-1")
    removals = chat_events(cli, school, "class-5a", "ContentRemoved")
    [row] = [r for r in removals if r["command_id"] == f"{school}-cli-1"]
    assert f"position {row['position']}: Chat.ContentRemoved" in result.stdout
    assert row["actor_role"] == "class-teacher"
    assert row["occurred_at"] == AT
    assert row["data"] == {
        "authority": "2.5",
        "ground": "4.2.4",
        "message_id": "m-77",
        "author_id": f"{school}-s-02",
        "reason": "Грубость",
        "excerpt": "(грубое слово)",
    }


def test_a_repeated_command_id_is_recorded_once(
    cli: Cli, audit_log: AuditLog, loaded_school: str
) -> None:
    school = loaded_school
    args = moderate(school, "block-content", "--chat", "math-9v")
    args += ["--moderator", f"{school}-t-4", "--authority", "2.4", "--ground", "law"]
    args += ["--message", "m-1", "--author", f"{school}-s-16", "--reason", "Реклама"]
    args += ["--command-id", "once"]
    first = cli(*args)
    before = max_position(audit_log)

    again = cli(*args)

    assert first.exit_code == again.exit_code == 0
    assert again.stdout.startswith("already recorded (same command id)")
    assert max_position(audit_log) == before


def test_a_moderator_outside_their_chats_is_refused_and_nothing_is_recorded(
    cli: Cli, audit_log: AuditLog, loaded_school: str
) -> None:
    school = loaded_school
    before = max_position(audit_log)
    args = moderate(school, "remove-content", "--chat", "class-7b")
    args += ["--moderator", f"{school}-t-1", "--authority", "2.5", "--ground", "4.2.4"]
    args += ["--message", "m-1", "--author", f"{school}-s-09", "--reason", "Грубость"]

    result = cli(*args)

    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"refused: chat-not-under-control: chat class-7b is not under the control of {school}-t-1"
    )
    assert max_position(audit_log) == before + 1  # the receipt of the refusal, nothing else


def test_block_then_unblock_a_member_lets_them_rejoin(cli: Cli, loaded_school: str) -> None:
    school = loaded_school
    member = ["--chat", "class-5a", "--moderator", f"{school}-t-1", "--authority", "2.5"]
    member += ["--member", f"{school}-s-03"]

    block = ["--ground", "4.2.4", "--reason", "Оскорбления"]
    blocked = cli(*moderate(school, "block-member", *member, *block))
    unblocked = cli(*moderate(school, "unblock-member", *member, "--reason", "Беседа"))

    assert blocked.exit_code == 0, blocked.output
    assert "Chat.MemberBlocked" in blocked.stdout
    assert unblocked.exit_code == 0, unblocked.output
    assert "Chat.MemberUnblocked" in unblocked.stdout


def test_warn_defaults_to_the_class_teachers_authority(cli: Cli, loaded_school: str) -> None:
    school = loaded_school
    args = moderate(school, "warn", "--chat", "class-9v", "--moderator", f"{school}-t-3")
    args += ["--member", f"{school}-s-16", "--ground", "4.2.5", "--reason", "Предупреждение"]

    result = cli(*args)

    assert result.exit_code == 0, result.output
    [row] = [
        r for r in chat_events(cli, school, "class-9v", "LiabilityWarned") if r["occurred_at"] == AT
    ]
    assert row["actor_role"] == "class-teacher"
    assert row["data"]["authority"] == "2.5"


def test_a_warning_by_a_subject_teacher_is_refused_readably(cli: Cli, loaded_school: str) -> None:
    school = loaded_school
    args = moderate(school, "warn", "--chat", "math-9v", "--moderator", f"{school}-t-4")
    args += ["--authority", "2.4", "--member", f"{school}-s-16", "--ground", "4.2.4"]

    result = cli(*args, "--reason", "Предупреждение")

    assert result.exit_code == 1
    assert result.stderr.startswith("refused: warning-needs-class-teacher:")


def test_an_unknown_ground_is_refused_with_the_accepted_ones(sqlite_cli: Cli) -> None:
    args = moderate("sch", "block-member", "--chat", "c", "--moderator", "t")
    args += ["--authority", "2.5", "--ground", "4.2.9", "--member", "s", "--reason", "r"]

    result = sqlite_cli(*args)

    assert result.exit_code == 1
    assert result.stderr.startswith("refused: invalid-command: block-member.ground:")
    assert "'third-party-rights'" in result.stderr


def test_a_time_without_timezone_is_a_usage_error(sqlite_cli: Cli) -> None:
    args = ["moderate", "warn", "--school", "s", "--chat", "c", "--moderator", "t"]
    args += ["--member", "m", "--ground", "4.2.4", "--reason", "r", "--at", "2024-12-09T10:00"]

    result = sqlite_cli(*args)

    assert_one_line_error(result, "--at", "no timezone", exit_code=EXIT_USAGE)


def test_a_student_reports_access_to_their_own_account(cli: Cli, loaded_school: str) -> None:
    school = loaded_school
    student = f"{school}-s-04"
    args = ["report-access", "--school", school, "--reporter", student, "--incident", "i-1"]
    args += ["--noticed-at", "2024-12-09T07:00+02:00", "--how", "уведомление о входе"]
    args += ["--description", "Чужой вход", "--told-admin-at", "2024-12-09T08:00+02:00"]

    result = cli(*args, "--at", AT)

    assert result.exit_code == 0, result.output
    assert "AccessIncident.Reported" in result.stdout
    assert result.stdout.rstrip().endswith("incident id: i-1")
    reports = cli("events", "--type", "AccessIncident.Reported", "--format", "jsonl").stdout
    row = jsonl(reports)[-1]
    assert row["actor_id"] == student
    assert row["actor_role"] == "student"
    assert row["data"]["told"] == {"school-administrator": "2024-12-09T08:00:00+02:00"}


def test_a_parent_reports_for_their_child_but_not_for_another(cli: Cli, loaded_school: str) -> None:
    school = loaded_school
    base = ["report-access", "--school", school, "--reporter", f"{school}-p-01", "--at", AT]
    base += ["--noticed-at", "2024-12-09T07:00+02:00", "--how", "сообщения", "--description", "?"]

    own_child = cli(*base, "--affected", f"{school}-s-01")
    other_child = cli(*base, "--affected", f"{school}-s-02")

    assert own_child.exit_code == 0, own_child.output
    assert other_child.exit_code == 1
    assert other_child.stderr.startswith("refused: not-account-holder-or-parent:")


def test_a_retried_friendly_command_without_at_answers_already_recorded(
    cli: Cli, audit_log: AuditLog, loaded_school: str
) -> None:
    school = loaded_school
    args = ["moderate", "remove-content", "--school", school, "--chat", "class-5a"]
    args += ["--moderator", f"{school}-t-1", "--authority", "2.5", "--ground", "4.2.4"]
    args += ["--message", "m-retry", "--author", f"{school}-s-02", "--reason", "Грубость"]
    args += ["--command-id", "my-cmd-1"]
    first = cli(*args)
    before = max_position(audit_log)

    again = cli(*args)

    assert first.exit_code == 0, first.output
    assert again.exit_code == 0, again.output
    assert again.stdout.startswith("already recorded (same command id)")
    assert max_position(audit_log) == before


def test_a_retried_access_report_without_incident_or_at_names_the_same_incident(
    cli: Cli, audit_log: AuditLog, loaded_school: str
) -> None:
    school = loaded_school
    args = ["report-access", "--school", school, "--reporter", f"{school}-s-05"]
    args += ["--noticed-at", "2024-12-09T07:00+02:00", "--how", "уведомление"]
    args += ["--description", "Чужой вход", "--command-id", "report-once"]
    first = cli(*args)
    before = max_position(audit_log)

    again = cli(*args)

    assert first.exit_code == 0, first.output
    assert again.stdout.startswith("already recorded (same command id)")
    assert again.stdout.splitlines()[-1] == first.stdout.splitlines()[-1]  # incident id
    assert max_position(audit_log) == before
