"""Erasure with proof: record, prove, forget, verify, check the old proof, replay.

After ``forget`` every view shows the person's personal fields as erased while positions
and counts stay; ``verify``, proofs made before the erasure and ``replay --check`` still
pass; the destruction act and the log extract are written and hold no personal data.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from integrity_helpers import Cli, head, one_error_line

from sferum_audit.application.bootstrap import build_audit_log
from sferum_audit.application.commands import parse_command
from sferum_audit.application.sample_school import sample_school
from sferum_audit.application.settings import Settings
from sferum_audit.domain.personal_data import ERASED, PERSONAL_DATA_CATEGORIES
from sferum_audit.projections import queries
from sferum_audit.projections.database import ViewsDatabase


def cast(commands: list[dict[str, Any]]) -> dict[str, str]:
    """Who is who in the sample school: an administrator, a student with moderation
    against them, that student's parent and name."""
    removal = next(c for c in commands if c["type"] == "remove-content")
    student = removal["author_id"]
    parent = next(
        c["profile_id"]
        for c in commands
        if c["type"] == "register-profile" and student in c.get("children", [])
    )
    name = next(
        c["display_name"]
        for c in commands
        if c["type"] == "register-profile" and c["profile_id"] == student
    )
    return {
        "school": commands[0]["school_id"],
        "admin": commands[0]["first_administrator_id"],
        "student": student,
        "parent": parent,
        "name": name,
        "excerpt_hint": removal["reason"],
    }


def display_names(settings: Settings, school: str) -> dict[str, str]:
    db = ViewsDatabase.from_settings(settings)
    try:
        return {p["profile_id"]: p["display_name"] for p in queries.profiles(db, school)}
    finally:
        db.dispose()


def profile_position(settings: Settings, student: str) -> int:
    app = build_audit_log(settings)
    try:
        for notification in app.recorder.select_notifications(1, 10_000):
            if notification.topic.endswith(":Profile.Registered"):
                event: Any = app.mapper.to_domain_event(notification)
                if event.profile_id == student:
                    return notification.id
    finally:
        app.close()
    raise AssertionError(student)


def test_erasure_round_trip(settings: Settings, unique: str, tmp_path: Path) -> None:
    commands = sample_school(f"s{unique}")
    who = cast(commands)
    app = build_audit_log(settings)
    results = app.handle_batch([parse_command(c) for c in commands])
    assert all(r.accepted for r in results)
    app.close()
    cli = Cli(settings)

    # Record, seal, build the views, prove the event that holds the student's name.
    assert cli("seal").exit_code == 0
    assert cli("replay").exit_code == 0
    names = display_names(settings, who["school"])
    assert names[who["student"]] == who["name"]
    position = profile_position(settings, who["student"])
    old_proof = tmp_path / "before.json"
    assert cli("prove", str(position), "-o", str(old_proof)).exit_code == 0
    key = cli("public-key").stdout.strip()
    proof_text = old_proof.read_text()
    assert who["name"] not in proof_text, "the proof holds the sealed bytes only"

    # Forget, at the parent's request.
    app = build_audit_log(settings)
    before = head(app)
    app.close()
    forgot = cli(
        "forget",
        who["student"],
        "--requested-by",
        who["parent"],
        "--basis",
        "заявление родителя № 17 от 05.12.2024 (152-ФЗ, ст. 21)",
        "--school",
        who["school"],
        "--by",
        who["admin"],
        "--erasure-id",
        "er-17",
    )
    assert forgot.exit_code == 0, forgot.output
    assert f"erased personal data of {who['student']}" in forgot.stdout

    # The act and the extract.
    folder = settings.data_dir / "erasures"
    act = json.loads((folder / "er-17.json").read_text())
    text = (folder / "er-17.txt").read_text()
    assert act["subject_pseudonym"] == who["student"]
    assert act["requested_by"] == who["parent"]
    assert "parent" in act["requester_relation"]
    assert act["destroyed_by"]["id"] == who["admin"]
    assert act["categories"] == list(PERSONAL_DATA_CATEGORIES)
    assert act["operator"]["name"].startswith("МАОУ СОШ № 58")
    assert act["reason"].startswith("заявление родителя № 17")
    assert act["information_system"].startswith("sferum-audit")
    assert act["destroyed_at"]
    assert act["keep_until"]
    assert act["key_destroyed_now"] is True
    assert act["erasure_event"]["type"] == "Erasure.Recorded"
    extract = {entry["position"]: entry for entry in act["log_extract"]}
    assert position in extract
    assert extract[position]["erased_fields"] == ["display_name"]
    assert any(e["event_type"] == "Chat.ContentRemoved" for e in extract.values())
    later = [e for e in extract.values() if e["position"] > before]
    assert [e["event_type"] for e in later] == ["Erasure.Recorded"], "the erasure itself"
    assert later[0]["position"] == act["erasure_event"]["position"]
    for document in (json.dumps(act, ensure_ascii=False), text):
        assert who["name"] not in document
        assert who["excerpt_hint"] not in document
    assert "АКТ ОБ УНИЧТОЖЕНИИ ПЕРСОНАЛЬНЫХ ДАННЫХ № er-17" in text

    # The erasure is itself in the log, provably.
    erasure_proof = Path(act["integrity"]["inclusion_proof"])
    checked = cli("check-proof", str(erasure_proof), "--public-key", key)
    assert checked.exit_code == 0, checked.output
    assert "(Erasure.Recorded)" in checked.stdout

    # Views: the person is erased, everyone and everything else stays.
    after = display_names(settings, who["school"])
    assert after[who["student"]] == ERASED
    assert {k: v for k, v in after.items() if k != who["student"]} == {
        k: v for k, v in names.items() if k != who["student"]
    }

    # verify, the old proof and replay --check still pass.
    verified = cli("verify")
    assert verified.exit_code == 0, verified.output
    old = cli("check-proof", str(old_proof), "--public-key", key)
    assert old.exit_code == 0, old.output
    checked_views = cli("replay", "--check")
    assert checked_views.exit_code == 0, checked_views.output
    # Proving the same event again gives the same leaf: the stored bytes never changed.
    again = tmp_path / "after.json"
    assert cli("prove", str(position), "-o", str(again)).exit_code == 0
    assert json.loads(again.read_text())["leaf_hash"] == json.loads(proof_text)["leaf_hash"]


def test_forget_is_refused_unless_the_person_or_a_parent_asks(
    sqlite_settings: Settings, unique: str
) -> None:
    commands = sample_school(f"s{unique}")
    who = cast(commands)
    app = build_audit_log(sqlite_settings)
    app.handle_batch([parse_command(c) for c in commands])
    app.close()
    result = Cli(sqlite_settings)(
        "forget",
        who["student"],
        "--requested-by",
        who["admin"],
        "--basis",
        "просьба",
        "--school",
        who["school"],
        "--by",
        who["admin"],
    )
    one_error_line(result, "erasure-not-permitted")
    assert not (sqlite_settings.data_dir / "erasures").exists()


def test_forget_by_another_schools_administrator_is_refused_and_kept_in_rejected(
    sqlite_settings: Settings, unique: str
) -> None:
    home, other = sample_school(f"s{unique}"), sample_school(f"o{unique}")
    who = cast(home)
    app = build_audit_log(sqlite_settings)
    assert all(r.accepted for r in app.handle_batch([parse_command(c) for c in home + other]))
    app.close()
    cli = Cli(sqlite_settings)
    for school in (who["school"], other[0]["school_id"]):
        result = cli(
            "forget",
            who["student"],
            "--requested-by",
            who["student"],
            "--basis",
            "просьба",
            "--school",
            school,
            "--by",
            other[0]["first_administrator_id"],
        )
        one_error_line(result, "erasure-not-permitted", "kept in `rejected`")
    ghost = cli(
        "forget",
        "../../etc/x",
        "--requested-by",
        "../../etc/x",
        "--basis",
        "просьба",
        "--school",
        who["school"],
        "--by",
        who["admin"],
    )
    one_error_line(ghost, "unknown-data-subject")
    assert not (sqlite_settings.data_dir / "erasures").exists()
    rejected = cli("rejected", "--format", "json")
    assert rejected.exit_code == 0, rejected.output
    codes = [row["error_code"] for row in json.loads(rejected.stdout)]
    assert codes.count("erasure-not-permitted") == 2
    assert codes.count("unknown-data-subject") == 1
    app = build_audit_log(sqlite_settings)
    try:
        assert app.subject_keys.key_for_reading(who["student"]) is not None
    finally:
        app.close()


def test_the_subject_may_ask_and_a_rerun_finishes_the_same_erasure(
    sqlite_settings: Settings, unique: str
) -> None:
    commands = sample_school(f"s{unique}")
    who = cast(commands)
    app = build_audit_log(sqlite_settings)
    app.handle_batch([parse_command(c) for c in commands])
    app.close()
    cli = Cli(sqlite_settings)
    args = (
        "forget",
        who["student"],
        "--requested-by",
        who["student"],
        "--basis",
        "заявление",
        "--school",
        who["school"],
        "--by",
        who["admin"],
        "--erasure-id",
        "er-1",
        "--no-rebuild-views",
    )
    first = cli(*args)
    assert first.exit_code == 0, first.output
    act_file = sqlite_settings.data_dir / "erasures" / "er-1.json"
    written = act_file.read_bytes()
    second = cli(*args)
    assert second.exit_code == 0, second.output
    assert "duplicate" in second.stdout
    # The act is written once, by the run that destroyed the key; a rerun keeps it.
    assert act_file.read_bytes() == written
    act = json.loads(written)
    assert "the data subject" in act["requester_relation"]
    assert act["key_destroyed_now"] is True
    assert cli("verify").exit_code == 0


def test_the_act_is_written_even_when_the_evidence_is_broken(
    sqlite_settings: Settings, unique: str
) -> None:
    commands = sample_school(f"s{unique}")
    who = cast(commands)
    app = build_audit_log(sqlite_settings)
    app.handle_batch([parse_command(c) for c in commands])
    app.close()
    cli = Cli(sqlite_settings)
    assert cli("seal").exit_code == 0
    leaves = sqlite_settings.data_dir / "integrity" / "leaves.bin"
    leaves.write_bytes(leaves.read_bytes()[:64])  # the sealer can no longer continue
    result = cli(
        "forget",
        who["student"],
        "--requested-by",
        who["parent"],
        "--basis",
        "заявление",
        "--school",
        who["school"],
        "--by",
        who["admin"],
        "--erasure-id",
        "er/2",
        "--no-rebuild-views",
    )
    assert result.exit_code == 0, result.output
    assert "warning: the erasure is recorded but not proven" in result.stderr
    act = json.loads((sqlite_settings.data_dir / "erasures" / "er_2.json").read_text())
    assert "leaf file was cut short" in act["integrity"]["problem"]
    assert act["key_destroyed_now"] is True
