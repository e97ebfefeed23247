"""A small scripted school history for the view tests: every event family, known outcomes.

``scripted_history(school_id, start)`` returns command dicts in order; their
``occurred_at`` times step forward from ``start`` so the as-of tests can name a moment.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sferum_audit.application.commands import parse_command

START = datetime(2024, 12, 2, 8, 0, tzinfo=UTC)


class Script:
    """Builds command dicts with fresh ids and a clock that moves one minute per command."""

    def __init__(self, school_id: str, start: datetime = START) -> None:
        self.school_id = school_id
        self.clock = start
        self.commands: list[dict[str, Any]] = []

    def add(self, type_: str, actor: str, actor_role: str, /, **fields: Any) -> dict[str, Any]:
        self.clock += timedelta(minutes=1)
        command = {
            "command_id": f"{self.school_id}-c{len(self.commands) + 1}",
            "type": type_,
            "school_id": self.school_id,
            "actor": {"id": actor, "role": actor_role},
            "occurred_at": self.clock.isoformat(),
            **fields,
        }
        self.commands.append(command)
        return command


def scripted_history(school_id: str, start: datetime = START) -> list[dict[str, Any]]:
    """A school with a class, a teacher, students, a parent, invitations, moderation and
    one access incident, in the order a real week might bring them."""
    s = Script(school_id, start)
    admin, teacher, s1, s2, parent, officer = (
        f"{school_id}-admin",
        f"{school_id}-t1",
        f"{school_id}-s1",
        f"{school_id}-s2",
        f"{school_id}-p1",
        f"{school_id}-sec",
    )
    s.add(
        "register-school",
        "director",
        "school-administration",
        name=f"School {school_id}",
        order_ref="1065/1",
        first_administrator_id=admin,
    )
    s.add("create-class", admin, "administrator", class_id="5a", name="5А")
    s.add("create-class", admin, "administrator", class_id="6b", name="6Б")
    s.add(
        "register-profile",
        admin,
        "administrator",
        profile_id=teacher,
        role="teacher",
        display_name="Анна Петровна",
    )
    s.add("assign-class-teacher", admin, "administrator", class_id="5a", teacher_id=teacher)
    for student, name in ((s1, "Иван"), (s2, "Мария")):
        s.add(
            "register-profile",
            student,
            "student",
            profile_id=student,
            role="student",
            display_name=name,
        )
        s.add(
            "admit-person",
            admin,
            "administrator",
            person_id=student,
            roster_role="student",
            class_id="5a",
        )
    s.add(
        "register-profile",
        parent,
        "parent",
        profile_id=parent,
        role="parent",
        display_name="Ольга",
        children=[s1, s2],  # s2 stays in 5a after s1's transfer, so she stays in its chats
    )
    s.add(
        "register-profile",
        admin,
        "administrator",
        profile_id=officer,
        role="security-officer",
        display_name="Безопасность",
    )
    s.add("link-account", s1, "student", profile_id=s1, elzhur_account_id=f"{school_id}-ej1")
    s.add(
        "link-account",
        teacher,
        "teacher",
        profile_id=teacher,
        elzhur_account_id=f"{school_id}-ej-t1",
    )
    s.add(
        "add-member", admin, "administrator", chat_id="class-5a", profile_id=s1, via="account-link"
    )
    s.add("add-member", admin, "administrator", chat_id="class-5a", profile_id=teacher)
    expires = (s.clock + timedelta(days=7)).isoformat()
    s.add(
        "issue-invitation",
        teacher,
        "class-teacher",
        invitation_id="inv-1",
        chat_id="class-5a",
        role="student",
        expires_at=expires,
    )
    s.add(
        "issue-invitation",
        admin,
        "administrator",
        invitation_id="inv-2",
        chat_id="parents-5a",
        role="parent",
        expires_at=expires,
    )
    s.add(
        "issue-invitation",
        admin,
        "administrator",
        invitation_id="inv-3",
        chat_id="staff-room",
        role="teacher",
        expires_at=(s.clock + timedelta(hours=1)).isoformat(),
    )
    s.add(
        "issue-invitation",
        teacher,
        "class-teacher",
        invitation_id="inv-4",
        chat_id="parents-5a",
        role="parent",
        expires_at=expires,
    )
    s.add("redeem-invitation", s2, "student", invitation_id="inv-1")
    s.add("redeem-invitation", parent, "parent", invitation_id="inv-2")
    s.add(
        "create-chat",
        teacher,
        "teacher",
        chat_id="olymp",
        kind="free",
        title="Олимпиада",
        purpose="olympiad",
    )
    s.add("appoint-chat-moderator", admin, "administrator", chat_id="olymp", profile_id=teacher)
    s.add(
        "remove-content",
        teacher,
        "class-teacher",
        chat_id="class-5a",
        authority="2.5",
        ground="4.2.4",
        message_id="m-1",
        author_id=s2,
        reason="грубость",
        excerpt="...",
    )
    s.add(
        "warn-about-liability",
        teacher,
        "class-teacher",
        chat_id="class-5a",
        authority="2.5",
        ground="4.2.4",
        member_id=s2,
        reason="предупреждение",
    )
    s.add(
        "block-content",
        admin,
        "administrator",
        chat_id="class-5a",
        authority="2.3",
        ground="law",
        message_id="m-2",
        author_id=s1,
        reason="нарушение закона",
    )
    s.add(
        "block-member",
        admin,
        "administrator",
        chat_id="class-5a",
        authority="2.3",
        ground="4.2.5",
        member_id=s2,
        reason="повторное нарушение",
    )
    s.add(
        "report-unauthorised-access",
        s1,
        "student",
        incident_id="inc-1",
        affected_profile_id=s1,
        elzhur_account_id=f"{school_id}-ej1",
        noticed_at=s.clock.isoformat(),
        how_noticed="чужие сообщения",
        description="кто-то писал от моего имени",
        told={"school-administrator": s.clock.isoformat()},
    )
    s.add(
        "record-notification",
        s1,
        "student",
        incident_id="inc-1",
        party="platform-operator",
        told_at=s.clock.isoformat(),
    )
    s.add("acknowledge-incident", officer, "security-officer", incident_id="inc-1")
    s.add(
        "take-containment-step",
        officer,
        "security-officer",
        incident_id="inc-1",
        step="sessions-revoked",
        note="все сессии завершены",
    )
    s.add(
        "unblock-member",
        admin,
        "administrator",
        chat_id="class-5a",
        authority="2.3",
        member_id=s2,
        reason="извинился",
    )
    s.add(
        "annul-invitation", admin, "administrator", invitation_id="inv-4", reason="не использована"
    )
    s.clock += timedelta(hours=2)
    s.add("expire-invitation", "scheduler", "system", invitation_id="inv-3")
    s.add("unlink-account", s1, "student", profile_id=s1, reason="после инцидента")
    s.add(
        "take-containment-step",
        officer,
        "security-officer",
        incident_id="inc-1",
        step="account-link-removed",
        note="привязка снята",
    )
    s.add(
        "resolve-incident", officer, "security-officer", incident_id="inc-1", findings="пароль утёк"
    )
    s.add(
        "report-unauthorised-access",
        teacher,
        "teacher",
        incident_id="inc-2",
        affected_profile_id=teacher,
        noticed_at=s.clock.isoformat(),
        how_noticed="письмо",
        description="подозрительный вход",
    )
    s.add("transfer-student", admin, "administrator", person_id=s1, to_class_id="6b")
    s.add("leave-chat", teacher, "teacher", chat_id="class-5a")
    return s.commands


def record(app: Any, commands: list[dict[str, Any]]) -> None:
    """Records the commands in one batch; every one of them must be accepted."""
    results = app.handle_batch([parse_command(c) for c in commands])
    refused = [r.as_dict() for r in results if not r.accepted]
    assert not refused, refused
