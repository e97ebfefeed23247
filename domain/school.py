"""A school on the platform: its administrators, classes, class teachers and roster (2.2, 2.3).

Public methods are the commands: they check the rules and then trigger an event. The
``@event`` methods only change state, so replaying an old log never re-judges it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Self
from uuid import UUID

from eventsourcing.domain import event

from sferum_audit.domain.base import AuditedAggregate, stable_id
from sferum_audit.domain.context import CommandContext
from sferum_audit.domain.errors import ActorNotPermitted, DomainError
from sferum_audit.domain.regulation import require_one_of, require_text

ROSTER_ROLES = frozenset({"student", "staff"})


class NotAdministrator(ActorNotPermitted):
    """Only a platform administrator (2.3) of this school may do this."""

    code = "not-administrator"


class NotSchoolAdministration(ActorNotPermitted):
    """Only the school administration (2.2) registers the school."""

    code = "not-school-administration"


class UnknownClass(DomainError):
    code = "unknown-class"


class ClassAlreadyExists(DomainError):
    code = "class-already-exists"


class AlreadyAdministrator(DomainError):
    code = "already-administrator"


class LastAdministrator(DomainError):
    """A school keeps at least one platform administrator (2.2 appoints one)."""

    code = "last-administrator"


class NotOnRoster(DomainError):
    code = "not-on-roster"


class AlreadyOnRoster(DomainError):
    code = "already-on-roster"


class ClassTeacherNotAssigned(DomainError):
    code = "class-teacher-not-assigned"


@dataclass
class SchoolClass:
    """A class of the school ("5А") and the class teacher (2.5) assigned to it, if any."""

    class_id: str
    name: str
    class_teacher_id: str | None = None


@dataclass
class RosterEntry:
    """A person the school has admitted: a student (in a class) or a member of staff."""

    role: str
    class_id: str | None = None


@dataclass
class SchoolState:
    administrators: set[str] = field(default_factory=set)
    classes: dict[str, SchoolClass] = field(default_factory=dict)
    roster: dict[str, RosterEntry] = field(default_factory=dict)
    chat_ids: list[str] = field(default_factory=list)


class School(AuditedAggregate):
    """The school as its platform administrators (2.3) manage it."""

    @staticmethod
    def create_id(school_id: str) -> UUID:
        return stable_id("school", school_id)

    @classmethod
    def register(
        cls,
        ctx: CommandContext,
        school_id: str,
        name: str,
        order_ref: str,
        first_administrator_id: str,
    ) -> Self:
        """The school administration (2.2) registers the school by an order that appoints
        its first platform administrator."""
        if ctx.actor_role != "school-administration":
            raise NotSchoolAdministration(
                "a school is registered by the school administration (2.2), "
                f"not by a {ctx.actor_role}"
            )
        require_text(school_id, "school id", 100)
        require_text(name, "school name", 300)
        require_text(order_ref, "order reference", 300)
        require_text(first_administrator_id, "first administrator id", 100)
        return cls(
            ctx=ctx,
            school_id=school_id,
            name=name,
            order_ref=order_ref,
            first_administrator_id=first_administrator_id,
        )

    @event("Registered")
    def __init__(
        self,
        ctx: CommandContext,
        school_id: str,
        name: str,
        order_ref: str,
        first_administrator_id: str,
    ) -> None:
        self.school_id = school_id
        self.name = name
        self.order_ref = order_ref
        self.state = SchoolState(administrators={first_administrator_id})

    # -- queries and guards ----------------------------------------------------------------

    def is_administrator(self, person_id: str) -> bool:
        return person_id in self.state.administrators

    def check_administrator(self, person_id: str) -> None:
        if not self.is_administrator(person_id):
            raise NotAdministrator(
                f"{person_id} is not a platform administrator of school {self.school_id} (2.3)"
            )

    def check_acting_administrator(self, ctx: CommandContext) -> None:
        """The actor is an administrator and sends this command as one, so the act is
        recorded under 2.3 and not as a teacher's."""
        self.check_administrator(ctx.actor_id)
        if ctx.actor_role != "administrator":
            raise NotAdministrator(
                f"this is a platform administrator's act (2.3); {ctx.actor_id} sent it "
                f"as {ctx.actor_role}"
            )

    def check_class(self, class_id: str) -> SchoolClass:
        try:
            return self.state.classes[class_id]
        except KeyError:
            raise UnknownClass(f"school {self.school_id} has no class {class_id!r}") from None

    def check_on_roster(self, person_id: str) -> RosterEntry:
        try:
            return self.state.roster[person_id]
        except KeyError:
            raise NotOnRoster(f"{person_id} is not on the roster of {self.school_id}") from None

    def classes_taught_by(self, teacher_id: str) -> frozenset[str]:
        """The classes whose class teacher (2.5) this person is."""
        return frozenset(
            c.class_id for c in self.state.classes.values() if c.class_teacher_id == teacher_id
        )

    @property
    def chat_ids(self) -> tuple[str, ...]:
        """Every chat of the school, in the order they were opened."""
        return tuple(self.state.chat_ids)

    # -- commands --------------------------------------------------------------------------

    def appoint_administrator(self, ctx: CommandContext, person_id: str, order_ref: str) -> None:
        self.check_acting_administrator(ctx)
        require_text(order_ref, "order reference", 300)
        if person_id in self.state.administrators:
            raise AlreadyAdministrator(f"{person_id} is already a platform administrator")
        self._administrator_appointed(ctx, person_id, order_ref)

    @event("AdministratorAppointed")
    def _administrator_appointed(self, ctx: CommandContext, person_id: str, order_ref: str) -> None:
        self.state.administrators.add(person_id)

    def remove_administrator(self, ctx: CommandContext, person_id: str, reason: str) -> None:
        self.check_acting_administrator(ctx)
        require_text(reason, "reason")
        if person_id not in self.state.administrators:
            raise NotAdministrator(f"{person_id} is not a platform administrator")
        if len(self.state.administrators) == 1:
            raise LastAdministrator("the school's last platform administrator cannot be removed")
        self._administrator_removed(ctx, person_id, reason)

    @event("AdministratorRemoved")
    def _administrator_removed(self, ctx: CommandContext, person_id: str, reason: str) -> None:
        self.state.administrators.discard(person_id)

    def create_class(self, ctx: CommandContext, class_id: str, name: str) -> None:
        """A class; its class chat and parents' chat are opened with it by the caller."""
        self.check_acting_administrator(ctx)
        require_text(class_id, "class id", 100)
        require_text(name, "class name", 50)
        if class_id in self.state.classes:
            raise ClassAlreadyExists(f"class {class_id!r} already exists")
        self._class_created(ctx, class_id, name)

    @event("ClassCreated")
    def _class_created(self, ctx: CommandContext, class_id: str, name: str) -> None:
        self.state.classes[class_id] = SchoolClass(class_id, name)

    def assign_class_teacher(self, ctx: CommandContext, class_id: str, teacher_id: str) -> None:
        self.check_acting_administrator(ctx)
        self.check_class(class_id)
        self._class_teacher_assigned(ctx, class_id, teacher_id)

    @event("ClassTeacherAssigned")
    def _class_teacher_assigned(self, ctx: CommandContext, class_id: str, teacher_id: str) -> None:
        self.state.classes[class_id].class_teacher_id = teacher_id

    def release_class_teacher(self, ctx: CommandContext, class_id: str) -> None:
        self.check_acting_administrator(ctx)
        if self.check_class(class_id).class_teacher_id is None:
            raise ClassTeacherNotAssigned(f"class {class_id!r} has no class teacher")
        self._class_teacher_released(ctx, class_id)

    @event("ClassTeacherReleased")
    def _class_teacher_released(self, ctx: CommandContext, class_id: str) -> None:
        self.state.classes[class_id].class_teacher_id = None

    def open_chat(self, ctx: CommandContext, chat_id: str) -> None:
        """Notes a chat as the school's, so that 2.3 control and departures reach it."""
        self._chat_opened(ctx, chat_id)

    @event("ChatOpened")
    def _chat_opened(self, ctx: CommandContext, chat_id: str) -> None:
        self.state.chat_ids.append(chat_id)

    def admit(
        self, ctx: CommandContext, person_id: str, roster_role: str, class_id: str | None
    ) -> None:
        """Movement (2.3): a student enrolled into a class, or a member of staff taken on."""
        self.check_acting_administrator(ctx)
        require_one_of(roster_role, ROSTER_ROLES, "roster role")
        if person_id in self.state.roster:
            raise AlreadyOnRoster(f"{person_id} is already on the school's roster")
        if roster_role == "student":
            if class_id is None:
                raise UnknownClass("a student is enrolled into a class; class_id is missing")
            self.check_class(class_id)
        elif class_id is not None:
            raise UnknownClass("staff are taken on by the school, not into a class")
        self._person_admitted(ctx, person_id, roster_role, class_id)

    @event("PersonAdmitted")
    def _person_admitted(
        self, ctx: CommandContext, person_id: str, roster_role: str, class_id: str | None
    ) -> None:
        self.state.roster[person_id] = RosterEntry(roster_role, class_id)

    def transfer_student(self, ctx: CommandContext, person_id: str, to_class_id: str) -> str:
        """Movement (2.3): moves a student to another class; returns the class they left."""
        self.check_acting_administrator(ctx)
        entry = self.check_on_roster(person_id)
        self.check_class(to_class_id)
        if entry.role != "student" or entry.class_id is None:
            raise NotOnRoster(f"{person_id} is not a student of this school")
        if entry.class_id == to_class_id:
            raise ClassAlreadyExists(f"{person_id} is already in class {to_class_id!r}")
        from_class_id = entry.class_id
        self._student_transferred(ctx, person_id, from_class_id, to_class_id)
        return from_class_id

    @event("StudentTransferred")
    def _student_transferred(
        self, ctx: CommandContext, person_id: str, from_class_id: str, to_class_id: str
    ) -> None:
        self.state.roster[person_id].class_id = to_class_id

    def record_departure(self, ctx: CommandContext, person_id: str, reason: str) -> None:
        """Movement (2.3): the person left the school; the caller ends their memberships."""
        self.check_acting_administrator(ctx)
        require_text(reason, "reason")
        self.check_on_roster(person_id)
        if self.state.administrators == {person_id}:
            raise LastAdministrator("the school's last platform administrator cannot leave")
        self._person_left(ctx, person_id, reason)

    @event("PersonLeft")
    def _person_left(self, ctx: CommandContext, person_id: str, reason: str) -> None:
        del self.state.roster[person_id]
        self.state.administrators.discard(person_id)
        for school_class in self.state.classes.values():
            if school_class.class_teacher_id == person_id:
                school_class.class_teacher_id = None
