"""``sferum-audit web-account`` and ``web-token``: an administrator's tools on the server."""

from __future__ import annotations

from cli_environment import cli_environment
from typer.testing import CliRunner
from web_helpers import PASSWORD, School

from sferum_audit.application.settings import Settings
from sferum_audit.cli.main import app
from sferum_audit.web.accounts import Accounts


def run(settings: Settings, *args: str) -> tuple[int, str]:
    env = cli_environment(settings) | {"SFERUM_AUDIT_WEB_NEW_PASSWORD": PASSWORD}
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.output


def test_an_administrator_creates_lists_and_disables_a_staff_account(
    settings: Settings, school: School
) -> None:
    code, out = run(
        settings,
        *("web-account", "create", "t2", "--school", school.id),
        *("--person", school.person("t-2"), "--by", school.person("adm-1")),
    )
    assert code == 0, out
    code, out = run(settings, "web-account", "list", "--school", school.id)
    assert f"t2\t{school.id}\t{school.person('t-2')}\tactive" in out
    code, out = run(
        settings,
        *("web-account", "disable", "t2", "--by", school.person("adm-1"), "--reason", "уволен"),
    )
    assert code == 0, out
    accounts = Accounts(settings)
    try:
        found = accounts.find("t2")
    finally:
        accounts.close()
    assert found is not None
    assert found.disabled


def test_only_an_administrator_of_the_school_makes_accounts_and_only_for_staff(
    settings: Settings, school: School
) -> None:
    code, out = run(
        settings,
        *("web-account", "create", "x1", "--school", school.id),
        *("--person", school.person("t-3"), "--by", school.person("t-4")),
    )
    assert code == 2
    assert "not an administrator" in out
    code, out = run(
        settings,
        *("web-account", "create", "x2", "--school", school.id),
        *("--person", school.person("s-03"), "--by", school.person("adm-1")),
    )
    assert code == 2
    assert "no staff profile" in out


def test_an_administrator_issues_and_revokes_an_api_token(
    settings: Settings, school: School
) -> None:
    code, out = run(
        settings,
        *("web-token", "issue", "--school", school.id, "--role", "security-officer"),
        *("--by", school.person("adm-1"), "--label", "SIEM"),
    )
    assert code == 0, out
    assert "sfa_" in out
    token_id = out.split("sfa_", 1)[1].split("_", 1)[0]
    code, out = run(
        settings, "web-token", "revoke", token_id, "--by", school.person("adm-1"), "--reason", "r"
    )
    assert code == 0, out
    code, out = run(settings, "web-token", "list", "--school", school.id)
    assert f"{token_id}\t{school.id}\tsecurity-officer\tSIEM\trevoked" in out


def test_the_consoles_files_are_the_service_users_alone(sqlite_settings: Settings) -> None:
    accounts = Accounts(sqlite_settings)
    accounts.close()
    for name in ("web-console.sqlite", "web-console-events.sqlite"):
        mode = (sqlite_settings.data_dir / name).stat().st_mode & 0o777
        assert mode == 0o600, (name, oct(mode))
