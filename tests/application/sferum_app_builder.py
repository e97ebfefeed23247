"""Builds commands for one school in one test: unique ids, a moving clock, short helpers.

Commands go through ``parse_command`` (the same schema the CLI and NATS use) and
``AuditLog.handle``; ``ok`` and ``refused`` assert the outcome so tests read as the rules.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID

from sferum_audit.application.commands import Command, parse_command
from sferum_audit.application.service import AuditLog, CommandResult
from sferum_audit.domain.access_incident import AccessIncident
from sferum_audit.domain.base import AuditedAggregate
from sferum_audit.domain.chat import Chat
from sferum_audit.domain.elzhur_account import ElzhurAccount
from sferum_audit.domain.invitation import Invitation
from sferum_audit.domain.profile import Profile
from sferum_audit.domain.school import School

KALININGRAD = timezone(timedelta(hours=2))
T0 = datetime(2024, 11, 25, 9, 0, tzinfo=KALININGRAD)


@dataclass(frozen=True)
class As:
    """An actor: who sends the command and in which role."""

    id: str
    role: str

    def __call__(self, role: str) -> As:
        """The same person in another role."""
        return As(self.id, role)


DIRECTOR = As("director", "school-administration")
ADMIN = As("adm", "administrator")
TEACHER = As("teacher-ivanova", "teacher")  # teaches maths, no class
CLASS_TEACHER = As("ct-petrova", "class-teacher")  # class teacher of 5a
CLASS_TEACHER_6B = As("ct-sidorov", "class-teacher")  # class teacher of 6b
STUDENT = As("student-kolya", "student")  # 5a
STUDENT_6B = As("student-petya", "student")  # 6b
PARENT = As("parent-olga", "parent")  # Kolya's mother
OTHER_PARENT = As("parent-ivan", "parent")  # Petya's father
SECURITY = As("so-security", "security-officer")
SYSTEM = As("scheduler", "system")


class SchoolBuilder:
    """Commands for one school; every command gets a fresh id and a later ``occurred_at``."""

    def __init__(self, app: AuditLog, unique: str) -> None:
        self.app = app
        self.unique = unique
        self.school_id = f"school-58-{unique}"
        self._numbers = itertools.count(1)
        self.clock = T0

    # -- building and sending ----------------------------------------------------------------

    def raw(
        self,
        command_type: str,
        actor: As,
        *,
        command_id: str | None = None,
        at: datetime | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        number = next(self._numbers)
        if at is None:
            self.clock += timedelta(minutes=1)
            at = self.clock
        return {
            "command_id": command_id or f"{self.unique}-{number:04d}-{command_type}",
            "type": command_type,
            "school_id": self.school_id,
            "actor": {"id": actor.id, "role": actor.role},
            "occurred_at": at.isoformat(),
            **{k: v.isoformat() if isinstance(v, datetime) else v for k, v in fields.items()},
        }

    def command(self, command_type: str, actor: As, **fields: Any) -> Command:
        return parse_command(self.raw(command_type, actor, **fields))

    def send(self, command_type: str, actor: As, **fields: Any) -> CommandResult:
        return self.app.handle(self.command(command_type, actor, **fields))

    def ok(self, command_type: str, actor: As, **fields: Any) -> CommandResult:
        result = self.send(command_type, actor, **fields)
        assert result.status == "recorded", (command_type, actor, result.error_code, result)
        return result

    def refused(self, command_type: str, actor: As, **fields: Any) -> str:
        """Sends a command that must be refused; returns the error code, checks that only
        the receipt of the refusal was stored."""
        before = self.app.recorder.max_notification_id() or 0
        result = self.send(command_type, actor, **fields)
        assert result.status == "rejected", (command_type, actor, result)
        assert result.events == ()
        assert result.error_code is not None
        assert self.new_event_types(before) == ["CommandReceipt.Refused"], result
        return result.error_code

    def new_event_types(self, after: int) -> list[str]:
        """The types (``Aggregate.Event``) of the events stored after position ``after``."""
        return [
            n.topic.rsplit(":", 1)[-1]
            for n in self.app.recorder.select_notifications(after + 1, 1000)
        ]

    def batch_ok(self, commands: Iterable[Command]) -> list[CommandResult]:
        results = self.app.handle_batch(list(commands))
        bad = [r for r in results if r.status != "recorded"]
        assert not bad, bad
        return results

    # -- reading -------------------------------------------------------------------------------

    def school(self) -> School:
        return self.app.repository.get(School.create_id(self.school_id))

    def chat(self, chat_id: str) -> Chat:
        return self.app.repository.get(Chat.create_id(self.school_id, chat_id))

    def invitation(self, invitation_id: str) -> Invitation:
        return self.app.repository.get(Invitation.create_id(self.school_id, invitation_id))

    def incident(self, incident_id: str) -> AccessIncident:
        return self.app.repository.get(AccessIncident.create_id(self.school_id, incident_id))

    def profile(self, profile_id: str) -> Profile:
        return self.app.repository.get(Profile.create_id(profile_id))

    def account(self, elzhur_account_id: str) -> ElzhurAccount:
        return self.app.repository.get(ElzhurAccount.create_id(elzhur_account_id))

    def events_of(self, result: CommandResult) -> list[AuditedAggregate.Event]:
        """The stored domain events a result names, in the order it names them."""
        events = []
        for recorded in result.events:
            found = list(
                self.app.events.get(
                    UUID(recorded.aggregate_id), gt=recorded.version - 1, lte=recorded.version
                )
            )
            assert len(found) == 1
            events.append(found[0])
        return events

    def event_types(self, result: CommandResult) -> list[str]:
        return [e.type for e in result.events]

    # -- a ready school --------------------------------------------------------------------------

    def setup(self) -> SchoolBuilder:
        """School 58 with classes 5a (class teacher Petrova) and 6b (Sidorov), a maths teacher,
        two students and their parents, and a security officer; all in one batch."""
        adm = ADMIN
        profiles = [
            (TEACHER.id, "teacher", "Иванова", []),
            (CLASS_TEACHER.id, "teacher", "Петрова", []),
            (CLASS_TEACHER_6B.id, "teacher", "Сидоров", []),
            (STUDENT.id, "student", "Коля", []),
            (STUDENT_6B.id, "student", "Петя", []),
            (PARENT.id, "parent", "Ольга", [STUDENT.id]),
            (OTHER_PARENT.id, "parent", "Иван", [STUDENT_6B.id]),
            (SECURITY.id, "security-officer", "Служба безопасности", []),
        ]
        commands = [
            self.command(
                "register-school",
                DIRECTOR,
                name="МАОУ СОШ № 58",
                order_ref="1065/1",
                first_administrator_id=adm.id,
            ),
            self.command("create-class", adm, class_id="5a", name="5А"),
            self.command("create-class", adm, class_id="6b", name="6Б"),
            *(
                self.command(
                    "register-profile",
                    adm,
                    profile_id=pid,
                    role=role,
                    display_name=name,
                    children=children,
                )
                for pid, role, name, children in profiles
            ),
            self.command("assign-class-teacher", adm, class_id="5a", teacher_id=CLASS_TEACHER.id),
            self.command(
                "assign-class-teacher", adm, class_id="6b", teacher_id=CLASS_TEACHER_6B.id
            ),
            self.command(
                "admit-person", adm, person_id=STUDENT.id, roster_role="student", class_id="5a"
            ),
            self.command(
                "admit-person", adm, person_id=STUDENT_6B.id, roster_role="student", class_id="6b"
            ),
            *(
                self.command("admit-person", adm, person_id=pid, roster_role="staff")
                for pid in (TEACHER.id, CLASS_TEACHER.id, CLASS_TEACHER_6B.id)
            ),
        ]
        self.batch_ok(commands)
        return self

    def teaching_staff(self, person_id: str, name: str = "Новый педагог") -> str:
        """A teacher who joined the platform: a teacher profile and a place on the staff
        roster, so they may be appointed administrator (2.2, 2.3)."""
        self.ok("register-profile", ADMIN, profile_id=person_id, role="teacher", display_name=name)
        self.ok("admit-person", ADMIN, person_id=person_id, roster_role="staff")
        return person_id

    def add(self, chat_id: str, *profile_ids: str, actor: As = ADMIN) -> None:
        for profile_id in profile_ids:
            self.ok("add-member", actor, chat_id=chat_id, profile_id=profile_id)

    def teacher_chat(self, chat_id: str = "math-5a", owner: As = TEACHER) -> str:
        self.ok(
            "create-chat",
            owner,
            chat_id=chat_id,
            kind="subject",
            title="Математика 5А",
            class_id="5a",
            subject="математика",
        )
        return chat_id
