"""The school's own acts: administrators, classes, class teachers, the roster.

A person leaving a class or the school leaves its chats here too.
"""

from __future__ import annotations

from sferum_audit.application import commands as c
from sferum_audit.application.handlers_base import (
    all_chat_ids,
    candidate_of,
    chat_of,
    class_chat_id,
    handles,
    parents_chat_id,
    profile_in,
    verified_actor,
)
from sferum_audit.application.unit_of_work import UnitOfWork
from sferum_audit.domain.chat import Chat
from sferum_audit.domain.context import CommandContext
from sferum_audit.domain.errors import DomainError, InvalidValue
from sferum_audit.domain.profile import Profile
from sferum_audit.domain.regulation import (
    CLASS_CHAT,
    PARENTS_CHAT,
    SCHOOL_CHANNEL,
    STAFF_ROOM,
)
from sferum_audit.domain.school import School


@handles("register-school")
def register_school(uow: UnitOfWork, cmd: c.RegisterSchool, ctx: CommandContext) -> None:
    uow.check_absent(School, School.create_id(cmd.school_id), "school", cmd.school_id)
    school = School.register(
        ctx, cmd.school_id, cmd.name, cmd.order_ref, cmd.first_administrator_id
    )
    uow.add(school)
    admin = cmd.first_administrator_id
    for chat_id, title in ((SCHOOL_CHANNEL, "Общешкольный канал"), (STAFF_ROOM, "Учительская")):
        uow.add(
            Chat.open(ctx, cmd.school_id, chat_id, chat_id, title, creator_id=admin, owner_id=admin)
        )


@handles("appoint-administrator")
def appoint_administrator(
    uow: UnitOfWork, cmd: c.AppointAdministrator, ctx: CommandContext
) -> None:
    school, _, _ = verified_actor(uow, cmd)
    school.appoint_administrator(
        ctx, cmd.person_id, cmd.order_ref, has_teacher_profile(uow, school, cmd.person_id, ctx)
    )


def has_teacher_profile(
    uow: UnitOfWork, school: School, person_id: str, ctx: CommandContext
) -> bool:
    """The person joined the platform as a teacher of this school by the act's time."""
    profile = uow.find(Profile, Profile.create_id(person_id))
    return (
        profile is not None
        and profile.school_id == school.school_id
        and profile.role == "teacher"
        and profile.active_at(ctx.occurred_at)
    )


@handles("remove-administrator")
def remove_administrator(uow: UnitOfWork, cmd: c.RemoveAdministrator, ctx: CommandContext) -> None:
    school, _, _ = verified_actor(uow, cmd)
    school.remove_administrator(ctx, cmd.person_id, cmd.reason)


@handles("create-class")
def create_class(uow: UnitOfWork, cmd: c.CreateClass, ctx: CommandContext) -> None:
    school, _, _ = verified_actor(uow, cmd)
    school.create_class(ctx, cmd.class_id, cmd.name)
    for chat_id, kind, title in (
        (class_chat_id(cmd.class_id), CLASS_CHAT, f"{cmd.name}"),
        (parents_chat_id(cmd.class_id), PARENTS_CHAT, f"{cmd.name}: родители"),
    ):
        uow.add(
            Chat.open(
                ctx,
                cmd.school_id,
                chat_id,
                kind,
                title,
                creator_id=ctx.actor_id,
                owner_id=None,
                class_id=cmd.class_id,
            )
        )


@handles("assign-class-teacher")
def assign_class_teacher(uow: UnitOfWork, cmd: c.AssignClassTeacher, ctx: CommandContext) -> None:
    school, _, _ = verified_actor(uow, cmd)
    teacher = profile_in(uow, school, cmd.teacher_id)
    if teacher.role != "teacher" or not teacher.active_at(ctx.occurred_at):
        raise InvalidValue(
            f"{cmd.teacher_id} is not a teacher of school {cmd.school_id} at "
            f"{ctx.occurred_at.isoformat()}"
        )
    released = school.state.classes.get(cmd.class_id)
    previous = released.class_teacher_id if released is not None else None
    school.assign_class_teacher(ctx, cmd.class_id, cmd.teacher_id)
    if previous is not None and previous != cmd.teacher_id:
        end_class_teacher_memberships(uow, school, ctx, cmd.class_id, previous)


def end_class_teacher_memberships(
    uow: UnitOfWork, school: School, ctx: CommandContext, class_id: str, teacher_id: str
) -> None:
    """A released class teacher leaves the class and parents' chats their term admitted
    them to (unless they are still a member's parent there)."""
    for chat_id in (class_chat_id(class_id), parents_chat_id(class_id)):
        chat = chat_of(uow, school, chat_id)
        if teacher_id in chat.members:
            profile = profile_in(uow, school, teacher_id)
            try:
                chat.check_may_join(candidate_of(school, profile, ctx.occurred_at))
            except DomainError:
                chat.end_membership(ctx, teacher_id, f"no longer class teacher of {class_id}")


@handles("release-class-teacher")
def release_class_teacher(uow: UnitOfWork, cmd: c.ReleaseClassTeacher, ctx: CommandContext) -> None:
    school, _, _ = verified_actor(uow, cmd)
    released = school.release_class_teacher(ctx, cmd.class_id)
    end_class_teacher_memberships(uow, school, ctx, cmd.class_id, released)


@handles("admit-person")
def admit_person(uow: UnitOfWork, cmd: c.AdmitPerson, ctx: CommandContext) -> None:
    school, _, _ = verified_actor(uow, cmd)
    profile = uow.find(Profile, Profile.create_id(cmd.person_id))
    school.admit(ctx, cmd.person_id, cmd.roster_role, cmd.class_id)
    if profile is not None and profile.school_id == school.school_id and profile.left_school:
        profile.mark_returned_to_school(ctx)


@handles("transfer-student")
def transfer_student(uow: UnitOfWork, cmd: c.TransferStudent, ctx: CommandContext) -> None:
    school, _, _ = verified_actor(uow, cmd)
    from_class = school.transfer_student(ctx, cmd.person_id, cmd.to_class_id)
    reason = f"transferred to class {cmd.to_class_id}"
    leave_class_chats(uow, school, ctx, from_class, cmd.person_id, reason)


def leave_class_chats(
    uow: UnitOfWork, school: School, ctx: CommandContext, class_id: str, child: str, reason: str
) -> None:
    """A student who left class ``class_id`` leaves its chats, and so do their parents,
    unless another of their children keeps them there."""
    for chat in chats_of_class(uow, school, class_id):
        for member_id, role in sorted(chat.members.items()):
            if member_id == child:
                chat.end_membership(ctx, member_id, reason)
            elif role == "parent" and parent_of(uow, member_id, child):
                profile = profile_in(uow, school, member_id)
                try:
                    chat.check_may_join(candidate_of(school, profile, ctx.occurred_at))
                except DomainError:
                    chat.end_membership(ctx, member_id, f"their child {child}: {reason}")


def chats_of_class(uow: UnitOfWork, school: School, class_id: str) -> list[Chat]:
    """The class and parents' chats of a class and every other chat bound to it."""
    chats = [chat_of(uow, school, class_chat_id(class_id))]
    chats.append(chat_of(uow, school, parents_chat_id(class_id)))
    for chat_id in school.chat_ids:
        chat = chat_of(uow, school, chat_id)
        if chat.class_id == class_id:
            chats.append(chat)
    return chats


def parent_of(uow: UnitOfWork, member_id: str, child: str) -> bool:
    profile = uow.find(Profile, Profile.create_id(member_id))
    return profile is not None and profile.is_parent_of(child)


@handles("record-departure")
def record_departure(uow: UnitOfWork, cmd: c.RecordDeparture, ctx: CommandContext) -> None:
    school, _, _ = verified_actor(uow, cmd)
    chats = [chat_of(uow, school, chat_id) for chat_id in all_chat_ids(school)]
    profile = uow.find(Profile, Profile.create_id(cmd.person_id))
    student_class = school.class_of(cmd.person_id)
    school.record_departure(ctx, cmd.person_id, cmd.reason)
    if profile is not None and profile.school_id == school.school_id:
        profile.mark_left_school(ctx)
    for chat in chats:
        if cmd.person_id in chat.members:
            chat.end_membership(ctx, cmd.person_id, "left the school")
    if student_class is not None:
        leave_class_chats(uow, school, ctx, student_class, cmd.person_id, "left the school")
