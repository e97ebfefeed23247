"""``sferum-audit incident ...``: a security officer works a 4.2.2 report from the command
line, from report to resolution, with the actor and time handled as in ``moderate``."""

from __future__ import annotations

import json
from typing import Any

from cli_helpers import Cli, assert_one_line_error


def incident(cli: Cli, incident_id: str) -> dict[str, Any]:
    rows = json.loads(cli("incidents", "--all", "-f", "json").stdout)
    found: dict[str, Any] = next(r for r in rows if r["incident_id"] == incident_id)
    return found


def test_a_report_is_worked_from_acknowledgement_to_resolution(
    cli: Cli, loaded_school: str
) -> None:
    school, officer, pupil = loaded_school, f"{loaded_school}-sec-1", f"{loaded_school}-s-03"
    steps = [
        ("report-access", "--school", school, "--reporter", pupil, "--incident", "inc-cli",
         "--noticed-at", "2024-12-09T08:00+02:00", "--how", "вход с чужого устройства",
         "--description", "Кто-то писал от моего имени", "--told-admin-at",
         "2024-12-09T08:05+02:00", "--at", "2024-12-09T08:10+02:00"),
        ("incident", "acknowledge", "inc-cli", "--school", school, "--by", officer,
         "--at", "2024-12-09T09:00+02:00"),
        ("incident", "contain", "inc-cli", "--school", school, "--by", officer,
         "--step", "password-reset", "--note", "Пароль сброшен", "--at",
         "2024-12-09T09:30+02:00"),
        ("incident", "notify", "inc-cli", "--school", school, "--by", pupil, "--as", "student",
         "--party", "platform-operator", "--told-at", "2024-12-09T09:40+02:00",
         "--at", "2024-12-09T09:45+02:00"),
        ("incident", "resolve", "inc-cli", "--school", school, "--by", officer,
         "--findings", "Пароль подсмотрели; сброшен", "--at", "2024-12-09T12:00+02:00"),
    ]  # fmt: skip
    for args in steps:
        result = cli(*args)
        assert result.exit_code == 0, (args, result.output)
        assert "recorded:" in result.stdout

    row = incident(cli, "inc-cli")
    assert row["state"] == "resolved"
    assert row["hours_to_acknowledge"] == 0.83
    assert row["hours_to_resolve"] == 3.83
    assert [s["step"] for s in row["containment_steps"]] == ["password-reset"]
    assert row["containment_steps"][0]["by"] == officer
    assert row["told_platform_operator_at"].startswith("2024-12-09T07:40")


def test_the_domain_decides_who_may_and_says_why(cli: Cli, loaded_school: str) -> None:
    pupil = f"{loaded_school}-s-01"

    by_a_pupil = cli("incident", "acknowledge", f"{loaded_school}-inc-2", "--school",
                     loaded_school, "--by", pupil, "--as", "security-officer")  # fmt: skip
    as_a_pupil = cli("incident", "acknowledge", "inc-x", "--school", loaded_school,
                     "--by", pupil, "--as", "student")  # fmt: skip
    bad_step = cli("incident", "contain", "inc-x", "--school", loaded_school, "--by", pupil,
                   "--step", "wipe-everything", "--note", "n")  # fmt: skip

    assert by_a_pupil.exit_code == 1
    assert by_a_pupil.stderr.startswith("refused: ")
    assert_one_line_error(as_a_pupil, "--as", "valid: security-officer, administrator", exit_code=2)
    assert_one_line_error(bad_step, "--step", "password-reset", exit_code=2)
