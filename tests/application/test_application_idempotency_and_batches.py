"""Idempotency by command_id (also across a restart and inside a batch), and batches where
a refused command does not take the others down."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sferum_app_builder import (
    ADMIN,
    CLASS_TEACHER,
    PARENT,
    STUDENT,
    STUDENT_6B,
    T0,
    TEACHER,
    SchoolBuilder,
)

from sferum_audit.application import handlers
from sferum_audit.application.bootstrap import build_audit_log
from sferum_audit.application.commands import parse_command
from sferum_audit.application.settings import Settings
from sferum_audit.domain.chat import Candidate, Chat
from sferum_audit.domain.errors import DomainError


def removal(school: SchoolBuilder, message_id: str = "m1", **overrides):
    fields = {
        "chat_id": "class-5a",
        "authority": "2.5",
        "ground": "4.2.4",
        "message_id": message_id,
        "author_id": STUDENT.id,
        "reason": "оскорбление",
    }
    return school.raw("remove-content", CLASS_TEACHER, **(fields | overrides))


def test_same_command_twice_is_recorded_once_and_answered_with_the_same_events(
    school: SchoolBuilder,
) -> None:
    raw = school.raw("create-class", ADMIN, class_id="7v", name="7В")
    first = school.app.handle(parse_command(raw))
    top = school.app.recorder.max_notification_id()
    second = school.app.handle(parse_command(raw))
    assert (first.status, second.status) == ("recorded", "duplicate")
    assert second.events == first.events
    assert [e.type for e in first.events] == ["School.ClassCreated", "Chat.Created", "Chat.Created"]
    assert school.app.recorder.max_notification_id() == top
    assert second.as_dict()["events"] == first.as_dict()["events"]


def test_a_reused_command_id_with_different_content_is_refused(school: SchoolBuilder) -> None:
    original = removal(school, command_id="cmd-x")
    first = school.app.handle(parse_command(original))
    top = school.app.recorder.max_notification_id()
    reused = school.app.handle(parse_command(removal(school, "m999", command_id="cmd-x")))
    assert (reused.status, reused.error_code, reused.events) == (
        "rejected",
        "command-id-reused",
        (),
    )
    assert school.app.recorder.max_notification_id() == top
    again = school.app.handle(parse_command(original))
    assert (again.status, again.events) == ("duplicate", first.events)


def test_a_reused_command_id_inside_one_batch_is_refused(school: SchoolBuilder) -> None:
    results = school.app.handle_batch(
        [
            parse_command(removal(school, "m1", command_id="cmd-y")),
            parse_command(removal(school, "m2", command_id="cmd-y")),
        ]
    )
    assert [(r.status, r.error_code) for r in results] == [
        ("recorded", None),
        ("rejected", "command-id-reused"),
    ]


def test_duplicate_after_a_restart(settings: Settings, school: SchoolBuilder) -> None:
    raw = removal(school)
    first = school.app.handle(parse_command(raw))
    top = school.app.recorder.max_notification_id()
    restarted = build_audit_log(settings)
    try:
        again = restarted.handle(parse_command(raw))
        assert again.status == "duplicate"
        assert again.events == first.events
        assert restarted.recorder.max_notification_id() == top
    finally:
        restarted.close()


def test_duplicate_inside_one_batch(school: SchoolBuilder) -> None:
    raw = removal(school)
    other = removal(school, "m2")
    top = school.app.recorder.max_notification_id()
    results = school.app.handle_batch(
        [parse_command(raw), parse_command(other), parse_command(raw)]
    )
    assert [r.status for r in results] == ["recorded", "recorded", "duplicate"]
    assert results[2].events == results[0].events
    assert school.app.recorder.max_notification_id() == top + 4  # 2 events + 2 receipts
    again = school.app.handle(parse_command(raw))
    assert (again.status, again.events) == ("duplicate", results[0].events)


def test_duplicate_of_a_refused_command_inside_a_batch_is_refused_alike(
    school: SchoolBuilder,
) -> None:
    raw = removal(school, chat_id="class-6b")
    results = school.app.handle_batch([parse_command(raw), parse_command(raw)])
    assert [(r.status, r.error_code) for r in results] == [
        ("rejected", "chat-not-under-control"),
        ("rejected", "chat-not-under-control"),
    ]


def test_a_batch_mixing_an_earlier_recorded_command_with_new_ones(school: SchoolBuilder) -> None:
    earlier = removal(school, "m1")
    first = school.app.handle(parse_command(earlier))
    results = school.app.handle_batch(
        [parse_command(removal(school, "m2")), parse_command(earlier)]
    )
    assert [r.status for r in results] == ["recorded", "duplicate"]
    assert results[1].events == first.events
    assert results[0].events[0].position > first.events[0].position


def test_a_refused_command_id_keeps_its_refusal_after_the_rules_would_allow_it(
    school: SchoolBuilder,
) -> None:
    raw = school.raw(
        "remove-content",
        TEACHER("class-teacher"),
        chat_id="class-6b",
        authority="2.5",
        ground="law",
        message_id="m1",
        author_id=STUDENT_6B.id,
        reason="нарушение закона",
    )
    first = school.app.handle(parse_command(raw))
    assert (first.error_code, first.repeat) == ("chat-not-under-control", False)
    school.ok("release-class-teacher", ADMIN, class_id="6b")
    school.ok("assign-class-teacher", ADMIN, class_id="6b", teacher_id=TEACHER.id)
    top = school.app.recorder.max_notification_id()

    again = school.app.handle(parse_command(raw))

    assert (again.status, again.error_code, again.error_message) == (
        "rejected",
        first.error_code,
        first.error_message,
    )
    assert again.repeat
    assert again.as_dict() == first.as_dict()
    assert school.app.recorder.max_notification_id() == top


def test_a_different_command_under_a_refused_id_is_refused_as_a_reused_id(
    school: SchoolBuilder,
) -> None:
    raw = removal(school, chat_id="class-6b")
    assert school.app.handle(parse_command(raw)).error_code == "chat-not-under-control"
    other = parse_command(raw | {"chat_id": "class-5a"})
    top = school.app.recorder.max_notification_id()

    result = school.app.handle(other)

    assert (result.error_code, result.repeat) == ("command-id-reused", False)
    assert school.app.recorder.max_notification_id() == top


def test_a_refused_command_id_keeps_its_refusal_after_a_restart(
    school: SchoolBuilder, settings: Settings
) -> None:
    raw = removal(school, chat_id="class-6b")
    first = school.app.handle(parse_command(raw))
    fresh = build_audit_log(settings)
    try:
        again = fresh.handle(parse_command(raw))
    finally:
        fresh.close()
    assert (again.error_code, again.error_message, again.repeat) == (
        first.error_code,
        first.error_message,
        True,
    )


def test_a_refused_command_repeated_inside_its_batch_is_a_repeat(school: SchoolBuilder) -> None:
    command = parse_command(removal(school, chat_id="class-6b"))
    top = school.app.recorder.max_notification_id() or 0

    first, second = school.app.handle_batch([command, command])

    assert (first.error_code, first.repeat) == ("chat-not-under-control", False)
    assert (second.error_code, second.repeat) == ("chat-not-under-control", True)
    assert school.new_event_types(top) == ["CommandReceipt.Refused"]


def test_a_retried_refusal_never_reaches_the_audit_trail_of_views(school: SchoolBuilder) -> None:
    """A refused removal whose chat appears later stays refused: never both in the
    rejections and in the audit trail."""
    raw = removal(school, chat_id="later-chat")
    assert school.app.handle(parse_command(raw)).error_code == "unknown-chat"
    school.ok(
        "create-chat",
        CLASS_TEACHER,
        chat_id="later-chat",
        kind="free",
        title="Проект",
        purpose="project",
    )
    top = school.app.recorder.max_notification_id() or 0
    assert school.app.handle(parse_command(raw)).status == "rejected"
    assert school.new_event_types(top) == []


# -- batches -------------------------------------------------------------------------------------


def test_refused_command_in_the_middle_does_not_take_the_batch_down(school: SchoolBuilder) -> None:
    top = school.app.recorder.max_notification_id()
    commands = [
        school.command("create-class", ADMIN, class_id="7v", name="7В"),
        school.command("assign-class-teacher", ADMIN, class_id="7v", teacher_id=TEACHER.id),
        school.command("appoint-administrator", TEACHER, person_id=TEACHER.id, order_ref="сам"),
        school.command("transfer-student", ADMIN, person_id=STUDENT.id, to_class_id="7v"),
        school.command("add-member", ADMIN, chat_id="class-7v", profile_id=STUDENT.id),
        school.command(
            "warn-about-liability",
            TEACHER("class-teacher"),
            chat_id="class-7v",
            authority="2.5",
            ground="4.2.4",
            member_id=STUDENT.id,
            reason="грубость",
        ),
    ]
    results = school.app.handle_batch(commands)
    assert [(r.status, r.error_code) for r in results] == [
        ("recorded", None),
        ("recorded", None),
        ("rejected", "not-administrator"),
        ("recorded", None),
        ("recorded", None),
        ("recorded", None),
    ]
    recorded = [r for r in results if r.status == "recorded"]
    positions = [e.position for r in recorded for e in r.events]
    assert positions == sorted(positions)
    expected_types = [
        "School.ClassCreated",
        "Chat.Created",
        "Chat.Created",
        "School.ClassTeacherAssigned",
        "School.StudentTransferred",
        "Chat.MemberJoined",
        "Chat.LiabilityWarned",
    ]
    assert [e.type for r in recorded for e in r.events] == expected_types

    log = school.app.recorder.select_notifications(top + 1, 100)
    in_log = [n.topic.rsplit(":", 1)[1] for n in log]
    assert [t for t in in_log if not t.startswith("CommandReceipt.")] == expected_types
    assert in_log.count("CommandReceipt.Recorded") == 5
    assert in_log.count("CommandReceipt.Refused") == 1
    assert [n.id for n in log] == list(range(top + 1, top + 1 + len(log)))


def test_batch_of_only_refused_commands_records_only_their_refusals(
    school: SchoolBuilder,
) -> None:
    top = school.app.recorder.max_notification_id() or 0
    results = school.app.handle_batch(
        [
            school.command("create-class", TEACHER, class_id="7v", name="7В"),
            school.command("create-class", ADMIN, class_id="5a", name="5А"),
        ]
    )
    assert [r.error_code for r in results] == ["not-administrator", "class-already-exists"]
    assert school.new_event_types(top) == ["CommandReceipt.Refused"] * 2


def test_a_refused_command_that_had_changed_state_is_undone_and_the_rest_recorded(
    school: SchoolBuilder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The service's safety net: a handler that changes an aggregate and then refuses."""

    def half_done(uow, cmd, ctx) -> None:
        chat = handlers.chat_of(uow, handlers.school_of(uow, cmd), cmd.chat_id)
        chat.join(ctx, Candidate("intruder", "student", student_class="5a"), "student", "added")
        raise DomainError("changed its mind after changing state")

    monkeypatch.setitem(handlers.HANDLERS, "leave-chat", half_done)
    results = school.app.handle_batch(
        [
            school.command("add-member", ADMIN, chat_id="class-5a", profile_id=STUDENT.id),
            school.command("leave-chat", STUDENT, chat_id="class-5a"),
            school.command("add-member", ADMIN, chat_id="class-5a", profile_id=PARENT.id),
        ]
    )
    assert [(r.status, r.error_code) for r in results] == [
        ("recorded", None),
        ("rejected", "domain-error"),
        ("recorded", None),
    ]
    chat: Chat = school.chat("class-5a")
    assert chat.members == {STUDENT.id: "student", PARENT.id: "parent"}
    assert [e.version for r in (results[0], results[2]) for e in r.events] == [
        chat.version - 1,
        chat.version,
    ]


def test_commands_of_a_batch_see_each_others_effects(school: SchoolBuilder) -> None:
    results = school.app.handle_batch(
        [
            school.command(
                "issue-invitation",
                CLASS_TEACHER,
                invitation_id="inv-1",
                chat_id="class-5a",
                role="student",
                expires_at=T0 + timedelta(days=1),
            ),
            school.command("redeem-invitation", STUDENT, invitation_id="inv-1"),
            school.command("redeem-invitation", STUDENT_6B, invitation_id="inv-1"),
        ]
    )
    assert [(r.status, r.error_code) for r in results] == [
        ("recorded", None),
        ("recorded", None),
        ("rejected", "invitation-not-usable"),
    ]
    assert school.chat("class-5a").members == {STUDENT.id: "student"}


def test_each_result_names_the_position_where_its_event_is_stored(school: SchoolBuilder) -> None:
    commands = [
        school.command("create-class", ADMIN, class_id=f"9{n}", name=f"9-{n}") for n in range(30)
    ]
    results = school.app.handle_batch(commands)
    events = [e for r in results for e in r.events]
    assert len(events) >= 30
    first = min(e.position for e in events)
    stored = {
        n.id: (str(n.originator_id), n.originator_version, n.topic)
        for n in school.app.recorder.select_notifications(first, len(events) * 2)
    }
    for event in events:
        aggregate_id, version, topic = stored[event.position]
        assert (aggregate_id, version) == (event.aggregate_id, event.version)
        assert topic.endswith(event.type)
