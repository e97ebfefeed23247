"""A school on the platform: its administrators, classes, class teachers and roster (2.2, 2.3).

Public methods are the commands: they check the rules and then trigger an event. The
``@event`` methods only change state, so replaying an old log never re-judges it.

The school keeps the history of authority (when each administrator's appointment, each
class teacher's assignment and each person's place on the roster began and ended, by the
acts' ``occurred_at``), so every act is judged by what held when it occurred.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Self
from uuid import UUID

from eventsourcing.domain import event

from sferum_audit.domain.base import AuditedAggregate, stable_id
from sferum_audit.domain.context import CommandContext, DatedBeforeFact, check_not_before
from sferum_audit.domain.errors import ActorNotPermitted, DomainError
from sferum_audit.domain.history import Term, held_at, last_moment, open_term
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


class NotTeachingStaff(ActorNotPermitted):
    """Administrators are appointed from the teaching staff who joined the platform (2.2,
    2.3): on the school's staff roster, with a registered teacher profile."""

    code = "not-teaching-staff"


class AlreadyOnRoster(DomainError):
    code = "already-on-roster"


class ClassTeacherNotAssigned(DomainError):
    code = "class-teacher-not-assigned"


@dataclass
class SchoolClass:
    """A class of the school ("5А"), when it was created, the class teacher (2.5) assigned
    to it now, and every class teacher's terms."""

    class_id: str
    name: str
    class_teacher_id: str | None = None
    created_at: datetime | None = None
    teacher_terms: dict[str, list[Term]] = field(default_factory=dict)


@dataclass
class RosterEntry:
    """A person the school has admitted: a student (in a class) or a member of staff;
    ``since`` is when they were admitted or last moved to another class."""

    role: str
    class_id: str | None = None
    since: datetime | None = None


@dataclass
class SchoolState:
    administrators: set[str] = field(default_factory=set)
    classes: dict[str, SchoolClass] = field(default_factory=dict)
    roster: dict[str, RosterEntry] = field(default_factory=dict)
    chat_ids: list[str] = field(default_factory=list)
    admin_terms: dict[str, list[Term]] = field(default_factory=dict)
    staff_terms: dict[str, list[Term]] = field(default_factory=dict)
    class_terms: dict[str, list[tuple[str, Term]]] = field(default_factory=dict)


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
        its first platform administrator.

        The roster is empty until the school is registered, so the first administrator is
        taken on the order's word (2.2 appoints from the teaching staff); every later one is
        checked against the roster and the profiles (``appoint_administrator``)."""
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
        self.registered_at = ctx.occurred_at
        self.state = SchoolState(
            administrators={first_administrator_id},
            admin_terms={first_administrator_id: [Term(ctx.occurred_at)]},
        )

    # -- queries and guards ----------------------------------------------------------------

    def is_administrator(self, person_id: str, at: datetime | None = None) -> bool:
        """Whether the person is a platform administrator at ``at`` (``None``: now)."""
        if at is None:
            return person_id in self.state.administrators
        return held_at(self.state.admin_terms.get(person_id), at)

    def check_existed_at(self, at: datetime) -> None:
        """Refuses an act dated before the school was registered."""
        check_not_before(at, self.registered_at, f"school {self.school_id} was registered")

    def check_administrator(self, person_id: str, at: datetime | None = None) -> None:
        if self.is_administrator(person_id, at):
            return
        terms = self.state.admin_terms.get(person_id)
        if at is not None and terms and at < terms[0].start:
            raise DatedBeforeFact(
                f"the act is dated {at.isoformat()}, before {person_id} was appointed "
                f"platform administrator ({terms[0].start.isoformat()})"
            )
        when = "" if at is None else f" at {at.isoformat()}"
        raise NotAdministrator(
            f"{person_id} is not a platform administrator of school {self.school_id}{when} (2.3)"
        )

    def check_acting_administrator(self, ctx: CommandContext) -> None:
        """The actor is an administrator when the act occurred and sends this command as
        one, so the act is recorded under 2.3 and not as a teacher's."""
        self.check_administrator(ctx.actor_id, ctx.occurred_at)
        if ctx.actor_role != "administrator":
            raise NotAdministrator(
                f"this is a platform administrator's act (2.3); {ctx.actor_id} sent it "
                f"as {ctx.actor_role}"
            )

    def check_class(self, class_id: str, at: datetime | None = None) -> SchoolClass:
        """The class; refused if unknown, or if ``at`` is before it was created."""
        try:
            school_class = self.state.classes[class_id]
        except KeyError:
            raise UnknownClass(f"school {self.school_id} has no class {class_id!r}") from None
        if at is not None:
            check_not_before(at, school_class.created_at, f"class {class_id!r} was created")
        return school_class

    def check_on_roster(self, person_id: str) -> RosterEntry:
        try:
            return self.state.roster[person_id]
        except KeyError:
            raise NotOnRoster(f"{person_id} is not on the roster of {self.school_id}") from None

    def classes_taught_by(self, teacher_id: str, at: datetime | None = None) -> frozenset[str]:
        """The classes whose class teacher (2.5) this person is at ``at`` (``None``: now)."""
        if at is None:
            return frozenset(
                c.class_id for c in self.state.classes.values() if c.class_teacher_id == teacher_id
            )
        return frozenset(
            c.class_id
            for c in self.state.classes.values()
            if held_at(c.teacher_terms.get(teacher_id), at)
        )

    def is_staff(self, person_id: str, at: datetime | None = None) -> bool:
        """Whether the person is on the staff roster at ``at`` (``None``: now)."""
        return held_at(self.state.staff_terms.get(person_id), at)

    def class_of(self, student_id: str, at: datetime | None = None) -> str | None:
        """The class the student is enrolled in at ``at`` (``None``: now), if any."""
        if at is None:
            entry = self.state.roster.get(student_id)
            return entry.class_id if entry is not None and entry.role == "student" else None
        for class_id, term in self.state.class_terms.get(student_id, ()):
            if term.holds_at(at):
                return class_id
        return None

    @property
    def chat_ids(self) -> tuple[str, ...]:
        """Every chat of the school, in the order they were opened."""
        return tuple(self.state.chat_ids)

    # -- commands --------------------------------------------------------------------------

    def check_teaching_staff(self, person_id: str, at: datetime, has_teacher_profile: bool) -> None:
        """Administrators are appointed «из числа (присоединившихся на платформу)
        педагогических работников» (2.2, 2.3): the person is on the staff roster at ``at``
        and has a teacher profile registered and active then (``has_teacher_profile``)."""
        if not self.is_staff(person_id, at):
            raise NotTeachingStaff(
                f"{person_id} is not on the staff roster of {self.school_id} at "
                f"{at.isoformat()}; administrators are appointed from the teaching staff (2.2)"
            )
        if not has_teacher_profile:
            raise NotTeachingStaff(
                f"{person_id} has no teacher profile on the platform at {at.isoformat()}; "
                "administrators are appointed from teaching staff who joined the platform (2.3)"
            )

    def appoint_administrator(
        self, ctx: CommandContext, person_id: str, order_ref: str, has_teacher_profile: bool
    ) -> None:
        self.check_acting_administrator(ctx)
        require_text(order_ref, "order reference", 300)
        if person_id in self.state.administrators:
            raise AlreadyAdministrator(f"{person_id} is already a platform administrator")
        terms = self.state.admin_terms.get(person_id)
        check_not_before(ctx.occurred_at, last_moment(terms), f"{person_id}'s previous term ended")
        self.check_teaching_staff(person_id, ctx.occurred_at, has_teacher_profile)
        self._administrator_appointed(ctx, person_id, order_ref)

    @event("AdministratorAppointed")
    def _administrator_appointed(self, ctx: CommandContext, person_id: str, order_ref: str) -> None:
        self.state.administrators.add(person_id)
        self.state.admin_terms.setdefault(person_id, []).append(Term(ctx.occurred_at))

    def remove_administrator(self, ctx: CommandContext, person_id: str, reason: str) -> None:
        self.check_acting_administrator(ctx)
        require_text(reason, "reason")
        if person_id not in self.state.administrators:
            raise NotAdministrator(f"{person_id} is not a platform administrator")
        term = open_term(self.state.admin_terms.get(person_id))
        check_not_before(
            ctx.occurred_at, term.start if term else None, f"{person_id} was appointed"
        )
        if len(self.state.administrators) == 1:
            raise LastAdministrator("the school's last platform administrator cannot be removed")
        self._administrator_removed(ctx, person_id, reason)

    @event("AdministratorRemoved")
    def _administrator_removed(self, ctx: CommandContext, person_id: str, reason: str) -> None:
        self.state.administrators.discard(person_id)
        self._end_admin_term(person_id, ctx.occurred_at)

    def _end_admin_term(self, person_id: str, at: datetime) -> None:
        term = open_term(self.state.admin_terms.get(person_id))
        if term is not None:
            term.end = at

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
        self.state.classes[class_id] = SchoolClass(class_id, name, created_at=ctx.occurred_at)

    def _check_term_can_change(self, school_class: SchoolClass, at: datetime) -> None:
        """A class teacher's term ends no earlier than it began."""
        teacher = school_class.class_teacher_id
        if teacher is not None:
            term = open_term(school_class.teacher_terms.get(teacher))
            check_not_before(
                at,
                term.start if term else None,
                f"{teacher} was assigned class teacher of {school_class.class_id!r}",
            )

    def assign_class_teacher(self, ctx: CommandContext, class_id: str, teacher_id: str) -> None:
        self.check_acting_administrator(ctx)
        school_class = self.check_class(class_id, ctx.occurred_at)
        self._check_term_can_change(school_class, ctx.occurred_at)
        previous = last_moment(school_class.teacher_terms.get(teacher_id))
        check_not_before(ctx.occurred_at, previous, f"{teacher_id}'s previous term ended")
        self._class_teacher_assigned(ctx, class_id, teacher_id)

    @event("ClassTeacherAssigned")
    def _class_teacher_assigned(self, ctx: CommandContext, class_id: str, teacher_id: str) -> None:
        school_class = self.state.classes[class_id]
        if school_class.class_teacher_id == teacher_id:
            return  # assigned again: the term goes on
        self._end_teacher_term(school_class, ctx.occurred_at)
        school_class.class_teacher_id = teacher_id
        school_class.teacher_terms.setdefault(teacher_id, []).append(Term(ctx.occurred_at))

    def release_class_teacher(self, ctx: CommandContext, class_id: str) -> str:
        """Ends the class teacher's term; returns who was released."""
        self.check_acting_administrator(ctx)
        school_class = self.check_class(class_id, ctx.occurred_at)
        teacher = school_class.class_teacher_id
        if teacher is None:
            raise ClassTeacherNotAssigned(f"class {class_id!r} has no class teacher")
        self._check_term_can_change(school_class, ctx.occurred_at)
        self._class_teacher_released(ctx, class_id)
        return teacher

    @event("ClassTeacherReleased")
    def _class_teacher_released(self, ctx: CommandContext, class_id: str) -> None:
        school_class = self.state.classes[class_id]
        self._end_teacher_term(school_class, ctx.occurred_at)
        school_class.class_teacher_id = None

    @staticmethod
    def _end_teacher_term(school_class: SchoolClass, at: datetime) -> None:
        teacher = school_class.class_teacher_id
        if teacher is not None:
            term = open_term(school_class.teacher_terms.get(teacher))
            if term is not None:
                term.end = at

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
            self.check_class(class_id, ctx.occurred_at)
        elif class_id is not None:
            raise UnknownClass("staff are taken on by the school, not into a class")
        left = self._left_at(person_id)
        check_not_before(ctx.occurred_at, left, f"{person_id} left the school")
        self._person_admitted(ctx, person_id, roster_role, class_id)

    def _left_at(self, person_id: str) -> datetime | None:
        """When the person last left the roster, if they had been on it."""
        ends = [t.end for t in self.state.staff_terms.get(person_id, ()) if t.end]
        ends += [t.end for _, t in self.state.class_terms.get(person_id, ()) if t.end]
        return max(ends, default=None)

    @event("PersonAdmitted")
    def _person_admitted(
        self, ctx: CommandContext, person_id: str, roster_role: str, class_id: str | None
    ) -> None:
        at = ctx.occurred_at
        self.state.roster[person_id] = RosterEntry(roster_role, class_id, since=at)
        if roster_role == "student" and class_id is not None:
            self.state.class_terms.setdefault(person_id, []).append((class_id, Term(at)))
        else:
            self.state.staff_terms.setdefault(person_id, []).append(Term(at))

    def transfer_student(self, ctx: CommandContext, person_id: str, to_class_id: str) -> str:
        """Movement (2.3): moves a student to another class; returns the class they left."""
        self.check_acting_administrator(ctx)
        entry = self.check_on_roster(person_id)
        self.check_class(to_class_id, ctx.occurred_at)
        if entry.role != "student" or entry.class_id is None:
            raise NotOnRoster(f"{person_id} is not a student of this school")
        if entry.class_id == to_class_id:
            raise ClassAlreadyExists(f"{person_id} is already in class {to_class_id!r}")
        check_not_before(
            ctx.occurred_at, entry.since, f"{person_id} joined class {entry.class_id!r}"
        )
        from_class_id = entry.class_id
        self._student_transferred(ctx, person_id, from_class_id, to_class_id)
        return from_class_id

    @event("StudentTransferred")
    def _student_transferred(
        self, ctx: CommandContext, person_id: str, from_class_id: str, to_class_id: str
    ) -> None:
        at = ctx.occurred_at
        entry = self.state.roster[person_id]
        entry.class_id, entry.since = to_class_id, at
        terms = self.state.class_terms.setdefault(person_id, [])
        if terms and terms[-1][1].end is None:
            terms[-1][1].end = at
        terms.append((to_class_id, Term(at)))

    def record_departure(self, ctx: CommandContext, person_id: str, reason: str) -> None:
        """Movement (2.3): the person left the school; the caller ends their memberships."""
        self.check_acting_administrator(ctx)
        require_text(reason, "reason")
        entry = self.check_on_roster(person_id)
        if self.state.administrators == {person_id}:
            raise LastAdministrator("the school's last platform administrator cannot leave")
        at = ctx.occurred_at
        check_not_before(at, entry.since, f"{person_id}'s last change on the roster")
        admin_term = open_term(self.state.admin_terms.get(person_id))
        check_not_before(at, admin_term.start if admin_term else None, f"{person_id}'s appointment")
        for class_id in self.classes_taught_by(person_id):
            self._check_term_can_change(self.state.classes[class_id], at)
        self._person_left(ctx, person_id, reason)

    @event("PersonLeft")
    def _person_left(self, ctx: CommandContext, person_id: str, reason: str) -> None:
        at = ctx.occurred_at
        del self.state.roster[person_id]
        self.state.administrators.discard(person_id)
        self._end_admin_term(person_id, at)
        staff_term = open_term(self.state.staff_terms.get(person_id))
        if staff_term is not None:
            staff_term.end = at
        class_terms = self.state.class_terms.get(person_id)
        if class_terms and class_terms[-1][1].end is None:
            class_terms[-1][1].end = at
        for school_class in self.state.classes.values():
            if school_class.class_teacher_id == person_id:
                self._end_teacher_term(school_class, at)
                school_class.class_teacher_id = None
