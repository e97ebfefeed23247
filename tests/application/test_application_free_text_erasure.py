"""Free text in other people's records that names an erased person is shredded, and only
that text: found by the names she registered with, in any case and word order."""

from __future__ import annotations

from typing import Any

from sferum_audit.application.commands import ErasePersonalData, parse_command
from sferum_audit.application.erasure import finish_erasure
from sferum_audit.application.sample_school import sample_school
from sferum_audit.application.service import AuditLog
from sferum_audit.domain.erasure import mentions, name_variants
from sferum_audit.domain.personal_data import ERASED


def test_name_variants_match_case_word_order_and_yo() -> None:
    variants = name_variants(["Секретова Алиса Петровна"])
    assert mentions("травля одноклассницы (СЕКРЕТОВА АЛИСА)", variants)
    assert mentions("алиса секретова опять", variants)
    assert mentions("Алиса  Секретова", variants)
    assert not mentions("Секретов Алексей", variants)
    assert mentions("Алёна Фёдорова", name_variants(["Федорова Алена"]))
    assert name_variants(["Ян"]) == ()  # too short to tell from ordinary words


async def test_erasing_a_pupil_shreds_only_the_free_text_that_names_her(
    app: AuditLog, unique: str
) -> None:
    commands = sample_school(f"f{unique}")
    removal = next(c for c in commands if c["type"] == "remove-content")
    pupil = removal["author_id"]
    name = next(
        c["display_name"]
        for c in commands
        if c["type"] == "register-profile" and c["profile_id"] == pupil
    )
    other = next(
        c["profile_id"]
        for c in commands
        if c["type"] == "register-profile" and c["role"] == "student" and c["profile_id"] != pupil
    )
    surname, given = name.split()[:2]
    naming = {
        **removal,
        "command_id": f"f{unique}-naming",
        "message_id": "m-naming",
        "author_id": other,
        "reason": f"травля одноклассницы ({given} {surname.upper()})",
    }
    not_naming = {
        **naming,
        "command_id": f"f{unique}-plain",
        "message_id": "m-plain",
        "reason": "оскорбление",
    }
    results = app.handle_batch([parse_command(c) for c in [*commands, naming, not_naming]])
    assert all(r.accepted for r in results)
    naming_at = results[-2].events[0].position
    plain_at = results[-1].events[0].position

    def reason_at(position: int) -> Any:
        stored = app.recorder.select_notifications(position, 1)[0]
        return app.mapper.to_domain_event(stored).reason  # type: ignore[attr-defined]

    assert reason_at(naming_at) == naming["reason"]
    raw_before = app.recorder.select_notifications(naming_at, 1)[0].state

    command = parse_command(
        {
            "command_id": f"f{unique}-erase",
            "type": "erase-personal-data",
            "school_id": removal["school_id"],
            "actor": {"id": commands[0]["first_administrator_id"], "role": "administrator"},
            "occurred_at": "2024-12-10T10:00:00+00:00",
            "erasure_id": "er-f",
            "subject_id": pupil,
            "requested_by": pupil,
            "basis": "заявление",
        }
    )
    assert isinstance(command, ErasePersonalData)
    result = app.handle(command)
    report = await finish_erasure(app, command, result, rebuild_views=False)

    assert [(r["position"], r["field"], r["shredded"]) for r in report.free_text] == [
        (naming_at, "reason", True)
    ]
    assert reason_at(naming_at) == ERASED
    assert reason_at(plain_at) == "оскорбление"  # the same author's other text stays
    # No stored byte changed: the proofs over the log hold.
    assert app.recorder.select_notifications(naming_at, 1)[0].state == raw_before
    assert report.act_path is not None
    assert report.act_path.exists()
    act_text = report.act_path.read_text(encoding="utf-8")
    assert f'"position": {naming_at}' in act_text
    assert name not in act_text
