"""The regulation lives in the repository (docs/regulation.md) and in the CLI
(``sferum-audit regulation``); nothing a user reads points outside the repository."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cli_helpers import Cli, assert_one_line_error

from sferum_audit.cli.main import COMMANDS
from sferum_audit.cli.regulation import CODES
from sferum_audit.domain.regulation import GROUNDS, MODERATION_AUTHORITIES

ROOT = Path(__file__).resolve().parents[2]
ROLE_CODES = {"2.2", "2.7", "2.8"}  # the roles that moderate nothing


def test_every_code_the_domain_checks_is_explained_in_the_cli_and_the_document() -> None:
    document = (ROOT / "docs" / "regulation.md").read_text(encoding="utf-8")
    codes = {c.code for c in CODES}

    assert codes == set(MODERATION_AUTHORITIES) | set(GROUNDS) | ROLE_CODES
    for code in codes:
        assert f"`{code}`" in document, code
    text = " ".join(document.split())
    for entry in CODES:  # every quoted piece of the order's words is in the document too
        pieces = re.split(r"\s*(?:…|;)\s*", entry.wording)
        missing = [p for p in pieces if len(p) > 12 and p not in text]
        assert missing == [], entry.code


def test_the_command_prints_what_each_code_allows_and_the_orders_words(sqlite_cli: Cli) -> None:
    listing = json.loads(sqlite_cli("regulation", "-f", "json").stdout)
    one = sqlite_cli("regulation", "2.5", COLUMNS="100")
    grounds = json.loads(sqlite_cli("regulation", "--kind", "ground", "-f", "json").stdout)

    assert [r["code"] for r in listing] == [c.code for c in CODES]
    assert "приказ от 25.11.2024 № 1065/1-о" in one.stdout
    assert "предупреждает о мерах" in one.stdout
    assert "warn-about-liability" in one.stdout
    assert {r["code"] for r in grounds} == set(GROUNDS)
    assert_one_line_error(sqlite_cli("regulation", "9.9"), "'9.9'", "4.2.4", exit_code=2)


def user_facing_texts(cli: Cli) -> dict[str, str]:
    texts = {
        str(path.relative_to(ROOT)): path.read_text(encoding="utf-8")
        for path in [ROOT / "README.md", ROOT / "CHANGELOG.md", *(ROOT / "docs").glob("*")]
    }
    for name in COMMANDS:
        texts[f"{name} --help"] = cli(name, "--help", COLUMNS="200").stdout
    for group, subs in (("moderate", ("remove-content", "warn")), ("incident", ("contain",))):
        for sub in subs:
            texts[f"{group} {sub} --help"] = cli(group, sub, "--help", COLUMNS="200").stdout
    return texts


@pytest.mark.parametrize("pattern", [r"\.\./shared", r"REGULATION\.md", r"/work/shared"])
def test_nothing_a_user_reads_points_outside_the_repository(sqlite_cli: Cli, pattern: str) -> None:
    offending = [
        name for name, text in user_facing_texts(sqlite_cli).items() if re.search(pattern, text)
    ]

    assert offending == []
