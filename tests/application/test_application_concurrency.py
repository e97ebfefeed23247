"""Two AuditLog instances on one store: a write conflict is retried, and a command sent to
both is recorded once. The interleaving is forced deterministically: instance B's first save
is held back until instance A has written."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from eventsourcing.persistence import IntegrityError
from sferum_app_builder import ADMIN, CLASS_TEACHER, STUDENT, STUDENT_6B, SchoolBuilder

from sferum_audit.application.bootstrap import build_audit_log
from sferum_audit.application.commands import Command
from sferum_audit.application.receipts import CommandReceipt
from sferum_audit.application.service import AuditLog
from sferum_audit.application.settings import Settings
from sferum_audit.domain.chat import Chat


@pytest.fixture
def other(settings: Settings, school: SchoolBuilder) -> Iterator[AuditLog]:
    """A second service process on the same store."""
    app = build_audit_log(settings)
    try:
        yield app
    finally:
        app.close()


def before_save(
    monkeypatch: pytest.MonkeyPatch, app: AuditLog, interlude: Callable[[], None], times: int = 1
) -> list[int]:
    """Runs ``interlude`` just before each of ``app``'s first ``times`` saves; returns the
    list of save attempts (their number of items)."""
    attempts: list[int] = []
    real_save = app.save_events

    def save_events(events):  # type: ignore[no-untyped-def]
        attempts.append(len(events))
        if len(attempts) <= times:
            interlude()
        return real_save(events)

    monkeypatch.setattr(app, "save_events", save_events)
    return attempts


def removal(school: SchoolBuilder, message_id: str, command_id: str | None = None) -> Command:
    return school.command(
        "remove-content",
        CLASS_TEACHER,
        command_id=command_id,
        chat_id="class-5a",
        authority="2.5",
        ground="4.2.4",
        message_id=message_id,
        author_id=STUDENT.id,
        reason="оскорбление",
    )


def content_removed(school: SchoolBuilder) -> list[tuple[int, str, str]]:
    events = school.app.events.get(Chat.create_id(school.school_id, "class-5a"))
    return [
        (e.originator_version, e.message_id, e.ctx.command_id)
        for e in events
        if type(e).__name__ == "ContentRemoved"
    ]


def test_conflicting_writes_to_one_chat_are_both_recorded_after_a_retry(
    school: SchoolBuilder, other: AuditLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_a, in_b = removal(school, "m-a"), removal(school, "m-b")
    results = {}
    attempts = before_save(
        monkeypatch, other, lambda: results.setdefault("a", school.app.handle(in_a))
    )
    result_b = other.handle(in_b)
    result_a = results["a"]
    assert (result_a.status, result_b.status) == ("recorded", "recorded")
    assert len(attempts) == 2  # B's first save conflicted with A's write, the retry succeeded
    (event_a,) = result_a.events
    (event_b,) = result_b.events
    assert event_a.aggregate_id == event_b.aggregate_id
    assert event_b.version == event_a.version + 1
    assert event_b.position > event_a.position
    assert content_removed(school)[-2:] == [
        (event_a.version, "m-a", in_a.command_id),
        (event_b.version, "m-b", in_b.command_id),
    ]


def test_the_same_command_on_two_instances_is_recorded_once(
    school: SchoolBuilder, other: AuditLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    command = removal(school, "m-1", command_id="cmd-shared")
    results = {}
    before_save(monkeypatch, other, lambda: results.setdefault("a", school.app.handle(command)))
    top_before = school.app.recorder.max_notification_id()
    result_b = other.handle(command)
    result_a = results["a"]
    assert (result_a.status, result_b.status) == ("recorded", "duplicate")
    assert result_b.events == result_a.events
    assert school.app.recorder.max_notification_id() == top_before + 2  # one event, one receipt
    assert [m for _, m, _ in content_removed(school)] == ["m-1"]


def test_two_profiles_linking_one_account_at_once_only_one_gets_it(
    school: SchoolBuilder, other: AuditLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    kolya = school.command(
        "link-account", STUDENT, profile_id=STUDENT.id, elzhur_account_id="elz-shared"
    )
    petya = school.command(
        "link-account", STUDENT_6B, profile_id=STUDENT_6B.id, elzhur_account_id="elz-shared"
    )
    results = {}
    before_save(monkeypatch, other, lambda: results.setdefault("a", school.app.handle(kolya)))
    result_b = other.handle(petya)
    assert results["a"].status == "recorded"
    assert (result_b.status, result_b.error_code) == (
        "rejected",
        "account-held-by-another-profile",
    )
    assert school.account("elz-shared").holder == STUDENT.id
    assert school.profile(STUDENT_6B.id).elzhur_account_id is None


def test_an_instance_with_a_cache_behind_the_store_decides_on_the_latest_state(
    school: SchoolBuilder, other: AuditLog
) -> None:
    added = other.handle(
        school.command("add-member", ADMIN, chat_id="class-5a", profile_id=STUDENT.id)
    )
    assert added.status == "recorded"  # B now holds the chat (Kolya a member) in its cache
    school.ok(
        "block-member",
        CLASS_TEACHER,
        chat_id="class-5a",
        authority="2.5",
        ground="4.2.4",
        member_id=STUDENT.id,
        reason="оскорбления",
    )
    again = other.handle(
        school.command("add-member", ADMIN, chat_id="class-5a", profile_id=STUDENT.id)
    )
    assert (again.status, again.error_code) == ("rejected", "member-blocked")


def test_a_conflict_that_outlasts_the_retries_surfaces_and_records_nothing(
    school: SchoolBuilder, other: AuditLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    other.conflict_retries = 1
    messages = iter(["m-a1", "m-a2"])
    attempts = before_save(
        monkeypatch,
        other,
        lambda: school.ok(
            "remove-content",
            CLASS_TEACHER,
            chat_id="class-5a",
            authority="2.5",
            ground="4.2.4",
            message_id=next(messages),
            author_id=STUDENT.id,
            reason="оскорбление",
        ),
        times=2,
    )
    doomed = removal(school, "m-b")
    with pytest.raises(IntegrityError):
        other.handle(doomed)
    assert len(attempts) == 2
    assert [m for _, m, _ in content_removed(school)] == ["m-a1", "m-a2"]
    receipt_id = CommandReceipt.create_id(doomed.command_id)
    assert list(school.app.recorder.select_events(receipt_id)) == []
    assert school.app.handle(doomed).status == "recorded"  # no receipt was left behind
