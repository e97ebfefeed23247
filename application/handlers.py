"""One handler per command type: load the aggregates, call the domain, add what it created.

Handlers hold no rules of their own beyond wiring aggregates together; the rules live in
``sferum_audit.domain``. Each handler checks everything it can before the first change.
Every fact is looked up as it held at the command's ``occurred_at`` (``ctx.occurred_at``):
an act is judged by the authority its actor had when it occurred.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from sferum_audit.application import commands as c
from sferum_audit.application.unit_of_work import UnitOfWork
from sferum_audit.domain.access_incident import AccessIncident
from sferum_audit.domain.authority import (
    ActorStanding,
    RoleNotHeld,
    authorities_over,
    check_actor_role,
)
from sferum_audit.domain.chat import Candidate, Chat, MembershipNotAllowed
from sferum_audit.domain.context import CommandContext, DatedBeforeFact, check_not_before
from sferum_audit.domain.elzhur_account import ElzhurAccount
from sferum_audit.domain.erasure import Erasure, ErasureParties
from sferum_audit.domain.errors import ActorNotPermitted, DomainError, InvalidValue
from sferum_audit.domain.invitation import Invitation
from sferum_audit.domain.profile import Profile
from sferum_audit.domain.regulation import (
    CLASS_CHAT,
    INVITATION_ROLES,
    PARENTS_CHAT,
    SCHOOL_CHANNEL,
    STAFF_ROOM,
)
from sferum_audit.domain.school import School
from sferum_audit.domain.source import Source

# Who creates their own profile (2.7, 2.8); staff profiles come from an administrator.
SELF_REGISTERED_ROLES = frozenset({"student", "parent"})

Handler = Callable[[UnitOfWork, Any, CommandContext], None]
HANDLERS: dict[str, Handler] = {}
C = TypeVar("C", bound=c.CommandBase)


def handles(
    command_type: str,
) -> Callable[[Callable[[UnitOfWork, C, CommandContext], None]], Handler]:
    def register(func: Callable[[UnitOfWork, C, CommandContext], None]) -> Handler:
        HANDLERS[command_type] = func
        return func

    return register


# -- shared lookups ----------------------------------------------------------------------------


def class_chat_id(class_id: str) -> str:
    return f"class-{class_id}"


def parents_chat_id(class_id: str) -> str:
    return f"parents-{class_id}"


def all_chat_ids(school: School) -> list[str]:
    """Every chat of the school: the two per school, the two per class, and the opened ones."""
    ids = [SCHOOL_CHANNEL, STAFF_ROOM]
    for class_id in school.state.classes:
        ids += [class_chat_id(class_id), parents_chat_id(class_id)]
    return ids + list(school.chat_ids)


def school_of(uow: UnitOfWork, cmd: c.CommandBase) -> School:
    """The command's school; refused if the act is dated before the school was registered."""
    school = uow.get(School, School.create_id(cmd.school_id), "school", cmd.school_id)
    school.check_existed_at(cmd.occurred_at)
    return school


def profile_in(uow: UnitOfWork, school: School, profile_id: str) -> Profile:
    profile = uow.find(Profile, Profile.create_id(profile_id))
    if profile is None or profile.school_id != school.school_id:
        raise InvalidValue(f"profile {profile_id!r} is not registered at school {school.school_id}")
    return profile


def active_profile_in(uow: UnitOfWork, school: School, profile_id: str, at: datetime) -> Profile:
    """The profile, registered by ``at`` and of someone at the school then."""
    profile = profile_in(uow, school, profile_id)
    check_not_before(at, profile.registered_at, f"profile {profile_id!r} was registered")
    if not profile.active_at(at):
        raise InvalidValue(f"{profile_id} has left the school")
    return profile


def standing_of(
    uow: UnitOfWork, school: School, person_id: str, at: datetime | None
) -> tuple[ActorStanding, Profile | None]:
    """What the person was at the school at ``at`` (``None``: now): administrator,
    teacher, class teacher."""
    profile = uow.find(Profile, Profile.create_id(person_id))
    if profile is not None and profile.school_id != school.school_id:
        profile = None
    active = profile is not None and profile.active_at(at)
    standing = ActorStanding(
        person_id=person_id,
        is_administrator=school.is_administrator(person_id, at),
        is_teacher=active and profile is not None and profile.role == "teacher",
        classes_taught=school.classes_taught_by(person_id, at),
    )
    return standing, profile


def verified_actor(
    uow: UnitOfWork, cmd: c.CommandBase
) -> tuple[School, ActorStanding, Profile | None]:
    """The school, and the actor's standing there when the act occurred, once their
    claimed role is confirmed."""
    school = school_of(uow, cmd)
    at = cmd.occurred_at
    standing, profile = standing_of(uow, school, cmd.actor.id, at)
    try:
        check_actor_role(
            cmd.actor.role,
            standing,
            profile.role if profile else None,
            profile is not None and profile.active_at(at),
        )
    except RoleNotHeld:
        now, _ = standing_of(uow, school, cmd.actor.id, None)
        if profile is not None:
            check_actor_role(cmd.actor.role, now, profile.role, profile.active_at())
        elif cmd.actor.role != "administrator" or not now.is_administrator:
            raise
        raise DatedBeforeFact(
            f"{cmd.actor.id} holds the role {cmd.actor.role} now but did not when the act "
            f"occurred ({at.isoformat()}); acts are judged by what held when they occurred"
        ) from None
    return school, standing, profile


def is_admin_at(school: School, cmd: c.CommandBase) -> bool:
    """The actor acts as a platform administrator, and was one when the act occurred."""
    return cmd.actor.role == "administrator" and school.is_administrator(
        cmd.actor.id, cmd.occurred_at
    )


def candidate_of(school: School, profile: Profile, at: datetime | None) -> Candidate:
    """Whether a person may be in a class's chats depends on these facts at ``at``
    (``None``: now)."""
    children: set[str] = set()
    if profile.role == "parent":
        children = {c for kid in profile.children if (c := school.class_of(kid, at))}
    return Candidate(
        person_id=profile.profile_id,
        role=profile.role,
        student_class=school.class_of(profile.profile_id, at)
        if profile.role == "student"
        else None,
        children_classes=frozenset(children),
        classes_taught=school.classes_taught_by(profile.profile_id, at),
    )


def chat_of(uow: UnitOfWork, school: School, chat_id: str) -> Chat:
    return uow.get(Chat, Chat.create_id(school.school_id, chat_id), "chat", chat_id)


def invitation_of(uow: UnitOfWork, cmd: c.CommandBase, invitation_id: str) -> Invitation:
    key = Invitation.create_id(cmd.school_id, invitation_id)
    return uow.get(Invitation, key, "invitation", invitation_id)


def incident_of(uow: UnitOfWork, cmd: c.CommandBase, incident_id: str) -> AccessIncident:
    key = AccessIncident.create_id(cmd.school_id, incident_id)
    return uow.get(AccessIncident, key, "access incident", incident_id)


def is_security_staff(standing: ActorStanding, actor_role: str) -> bool:
    return actor_role == "security-officer" or (
        actor_role == "administrator" and standing.is_administrator
    )


# -- school ------------------------------------------------------------------------------------


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


# -- profiles and account links -----------------------------------------------------------------


@handles("register-profile")
def register_profile(uow: UnitOfWork, cmd: c.RegisterProfile, ctx: CommandContext) -> None:
    school = school_of(uow, cmd)
    uow.check_absent(Profile, Profile.create_id(cmd.profile_id), "profile", cmd.profile_id)
    self_registration = (
        cmd.actor.id == cmd.profile_id
        and cmd.actor.role == cmd.role
        and cmd.role in SELF_REGISTERED_ROLES
    )
    by_administrator = is_admin_at(school, cmd)
    if not (self_registration or by_administrator):
        raise ActorNotPermitted(
            "students and parents register their own profiles (2.7, 2.8); teachers' and "
            "security officers' profiles are registered by a platform administrator (2.3)"
        )
    uow.add(
        Profile.register(
            ctx, cmd.profile_id, cmd.school_id, cmd.role, cmd.display_name, list(cmd.children)
        )
    )


@handles("link-account")
def link_account(uow: UnitOfWork, cmd: c.LinkAccount, ctx: CommandContext) -> None:
    school, _, _ = verified_actor(uow, cmd)
    profile = active_profile_in(uow, school, cmd.profile_id, ctx.occurred_at)
    account = uow.find(ElzhurAccount, ElzhurAccount.create_id(cmd.elzhur_account_id))
    if account is not None:
        account.check_free_for(cmd.profile_id, ctx.occurred_at)
    profile.link_account(ctx, cmd.elzhur_account_id, is_admin_at(school, cmd))
    if account is None:
        uow.add(
            ElzhurAccount(
                ctx=ctx, elzhur_account_id=cmd.elzhur_account_id, profile_id=cmd.profile_id
            )
        )
    else:
        account.claim(ctx, cmd.profile_id)


@handles("unlink-account")
def unlink_account(uow: UnitOfWork, cmd: c.UnlinkAccount, ctx: CommandContext) -> None:
    school, _, _ = verified_actor(uow, cmd)
    profile = profile_in(uow, school, cmd.profile_id)
    is_admin = is_admin_at(school, cmd)
    profile.check_holder_or_administrator(ctx, is_admin)
    account_id = profile.elzhur_account_id
    account = uow.find(ElzhurAccount, ElzhurAccount.create_id(account_id)) if account_id else None
    profile.unlink_account(ctx, cmd.reason, is_admin)
    if account is not None:
        account.release(ctx)


# -- chats -----------------------------------------------------------------------------------


@handles("create-chat")
def create_chat(uow: UnitOfWork, cmd: c.CreateChat, ctx: CommandContext) -> None:
    school, standing, _ = verified_actor(uow, cmd)
    uow.check_absent(Chat, Chat.create_id(cmd.school_id, cmd.chat_id), "chat", cmd.chat_id)
    if cmd.chat_id in all_chat_ids(school):
        raise InvalidValue(f"chat id {cmd.chat_id!r} is taken")
    if cmd.class_id is not None:
        school.check_class(cmd.class_id, ctx.occurred_at)
    chat = Chat.create(
        ctx,
        standing,
        cmd.school_id,
        cmd.chat_id,
        cmd.kind,
        cmd.title,
        cmd.class_id,
        cmd.subject,
        cmd.purpose,
    )
    school.open_chat(ctx, cmd.chat_id)
    uow.add(chat)


@handles("appoint-chat-moderator")
def appoint_chat_moderator(
    uow: UnitOfWork, cmd: c.AppointChatModerator, ctx: CommandContext
) -> None:
    school, standing, _ = verified_actor(uow, cmd)
    chat = chat_of(uow, school, cmd.chat_id)
    at = ctx.occurred_at
    moderator = active_profile_in(uow, school, cmd.profile_id, at)
    if moderator.role != "teacher" and not school.is_administrator(cmd.profile_id, at):
        raise ActorNotPermitted("students and parents moderate nothing; moderators are teachers")
    chat.appoint_moderator(ctx, standing, cmd.profile_id)


@handles("remove-chat-moderator")
def remove_chat_moderator(uow: UnitOfWork, cmd: c.RemoveChatModerator, ctx: CommandContext) -> None:
    school, standing, _ = verified_actor(uow, cmd)
    chat_of(uow, school, cmd.chat_id).remove_moderator(ctx, standing, cmd.profile_id)


@handles("archive-chat")
def archive_chat(uow: UnitOfWork, cmd: c.ArchiveChat, ctx: CommandContext) -> None:
    school, standing, _ = verified_actor(uow, cmd)
    chat_of(uow, school, cmd.chat_id).archive(ctx, standing, cmd.reason)


@handles("add-member")
def add_member(uow: UnitOfWork, cmd: c.AddMember, ctx: CommandContext) -> None:
    school, standing, _ = verified_actor(uow, cmd)
    chat = chat_of(uow, school, cmd.chat_id)
    chat.check_controlled_by(ctx, standing)
    member = active_profile_in(uow, school, cmd.profile_id, ctx.occurred_at)
    if cmd.via == "account-link" and member.elzhur_account_id is None:
        raise InvalidValue(f"{cmd.profile_id} has no linked ElZhur account to join by")
    if member.role not in INVITATION_ROLES:
        raise MembershipNotAllowed(
            f"{cmd.profile_id} has a {member.role} profile, which joins no chat: members are "
            "students, parents and teachers"
        )
    candidate = candidate_of(school, member, ctx.occurred_at)
    chat.check_may_join(candidate)
    chat.check_may_still_join(candidate_of(school, member, None), member.active_at())
    chat.join(ctx, candidate, member.role, cmd.via)


@handles("leave-chat")
def leave_chat(uow: UnitOfWork, cmd: c.LeaveChat, ctx: CommandContext) -> None:
    school, _, _ = verified_actor(uow, cmd)
    chat_of(uow, school, cmd.chat_id).leave(ctx)


@handles("remove-member")
def remove_member(uow: UnitOfWork, cmd: c.RemoveMember, ctx: CommandContext) -> None:
    school, standing, _ = verified_actor(uow, cmd)
    chat = chat_of(uow, school, cmd.chat_id)
    chat.check_controlled_by(ctx, standing)
    chat.remove_member(ctx, cmd.profile_id, cmd.reason)


# -- invitations -----------------------------------------------------------------------------


@handles("issue-invitation")
def issue_invitation(uow: UnitOfWork, cmd: c.IssueInvitation, ctx: CommandContext) -> None:
    school, standing, _ = verified_actor(uow, cmd)
    key = Invitation.create_id(cmd.school_id, cmd.invitation_id)
    uow.check_absent(Invitation, key, "invitation", cmd.invitation_id)
    chat = chat_of(uow, school, cmd.chat_id)
    chat.check_open()

    chat.check_existed_at(ctx.occurred_at)
    granted = authorities_over(chat.control_at(ctx.occurred_at), standing)
    uow.add(
        Invitation.issue(
            ctx,
            granted,
            standing,
            cmd.school_id,
            cmd.invitation_id,
            cmd.chat_id,
            cmd.role,
            cmd.expires_at,
            chat.kind,
        )
    )


@handles("redeem-invitation")
def redeem_invitation(uow: UnitOfWork, cmd: c.RedeemInvitation, ctx: CommandContext) -> None:
    school, _, _ = verified_actor(uow, cmd)
    invitation = invitation_of(uow, cmd, cmd.invitation_id)
    at = ctx.occurred_at
    profile = active_profile_in(uow, school, cmd.actor.id, at)
    chat = chat_of(uow, school, invitation.chat_id)
    invitation.check_redeemable(at)
    is_admin = school.is_administrator(cmd.actor.id, at)
    invitation.check_role_fits(cmd.actor.id, profile.role, is_admin)
    candidate = candidate_of(school, profile, at)
    chat.check_existed_at(at)
    chat.check_can_join(cmd.actor.id)
    chat.check_may_join(candidate)
    chat.check_may_still_join(candidate_of(school, profile, None), profile.active_at())
    invitation.redeem(ctx, cmd.actor.id, profile.role, is_admin)
    chat.join(ctx, candidate, invitation.role, "invitation", cmd.invitation_id)


@handles("annul-invitation")
def annul_invitation(uow: UnitOfWork, cmd: c.AnnulInvitation, ctx: CommandContext) -> None:
    school = school_of(uow, cmd)
    invitation = invitation_of(uow, cmd, cmd.invitation_id)
    invitation.annul(ctx, school.is_administrator(cmd.actor.id, ctx.occurred_at), cmd.reason)


@handles("expire-invitation")
def expire_invitation(uow: UnitOfWork, cmd: c.ExpireInvitation, ctx: CommandContext) -> None:
    school = school_of(uow, cmd)
    invitation = invitation_of(uow, cmd, cmd.invitation_id)
    invitation.expire(ctx, school.is_administrator(cmd.actor.id, ctx.occurred_at))


# -- moderation ------------------------------------------------------------------------------


def moderated_chat(uow: UnitOfWork, cmd: c.CommandBase, chat_id: str) -> tuple[Chat, ActorStanding]:
    """The chat and the moderator's standing. The actor's role is not pre-checked here: the
    chat explains a refusal in the regulation's own terms (who controls it, under what)."""
    school = school_of(uow, cmd)
    at = cmd.occurred_at
    standing, _ = standing_of(uow, school, cmd.actor.id, at)
    chat = chat_of(uow, school, chat_id)
    if cmd.actor.role not in {"student", "parent"} and at >= chat.created_at:
        then = authorities_over(chat.control_at(at), standing)
        now = authorities_over(chat.control, standing_of(uow, school, cmd.actor.id, None)[0])
        if not then and now:
            raise DatedBeforeFact(
                f"{cmd.actor.id} controls chat {chat_id} now ({', '.join(sorted(now))}) but "
                f"did not when the act occurred ({at.isoformat()}); acts are judged by what "
                "held when they occurred"
            )
    return chat, standing


@handles("remove-content")
@handles("block-content")
def act_on_content(uow: UnitOfWork, cmd: c.ContentAction, ctx: CommandContext) -> None:
    """Removing and blocking a message follow the same rules; only the event differs."""
    chat, standing = moderated_chat(uow, cmd, cmd.chat_id)
    act = chat.remove_content if isinstance(cmd, c.RemoveContent) else chat.block_content
    act(
        ctx,
        standing,
        cmd.authority,
        cmd.ground,
        cmd.message_id,
        cmd.author_id,
        cmd.reason,
        cmd.excerpt,
    )


@handles("block-member")
def block_member(uow: UnitOfWork, cmd: c.BlockMember, ctx: CommandContext) -> None:
    chat, standing = moderated_chat(uow, cmd, cmd.chat_id)
    chat.block_member(ctx, standing, cmd.authority, cmd.ground, cmd.member_id, cmd.reason)


@handles("unblock-member")
def unblock_member(uow: UnitOfWork, cmd: c.UnblockMember, ctx: CommandContext) -> None:
    chat, standing = moderated_chat(uow, cmd, cmd.chat_id)
    chat.unblock_member(ctx, standing, cmd.authority, cmd.member_id, cmd.reason)


@handles("warn-about-liability")
def warn_about_liability(uow: UnitOfWork, cmd: c.WarnAboutLiability, ctx: CommandContext) -> None:
    chat, standing = moderated_chat(uow, cmd, cmd.chat_id)
    chat.warn_about_liability(ctx, standing, cmd.authority, cmd.ground, cmd.member_id, cmd.reason)


# -- unauthorised access (4.2.2) ---------------------------------------------------------------


@handles("report-unauthorised-access")
def report_unauthorised_access(
    uow: UnitOfWork, cmd: c.ReportUnauthorisedAccess, ctx: CommandContext
) -> None:
    school, _, _ = verified_actor(uow, cmd)
    key = AccessIncident.create_id(cmd.school_id, cmd.incident_id)
    uow.check_absent(AccessIncident, key, "access incident", cmd.incident_id)
    profile_in(uow, school, cmd.affected_profile_id)
    reporter = uow.find(Profile, Profile.create_id(cmd.actor.id))
    is_parent = reporter is not None and reporter.is_parent_of(cmd.affected_profile_id)
    uow.add(
        AccessIncident.report(
            ctx,
            cmd.school_id,
            cmd.incident_id,
            cmd.affected_profile_id,
            is_parent,
            cmd.elzhur_account_id,
            cmd.noticed_at,
            cmd.how_noticed,
            cmd.description,
            {str(party): at for party, at in cmd.told.items()},
        )
    )


@handles("record-notification")
def record_notification(uow: UnitOfWork, cmd: c.RecordNotification, ctx: CommandContext) -> None:
    verified_actor(uow, cmd)
    incident_of(uow, cmd, cmd.incident_id).record_notification(ctx, cmd.party, cmd.told_at)


def security_actor(uow: UnitOfWork, cmd: c.CommandBase) -> bool:
    school = school_of(uow, cmd)
    standing, profile = standing_of(uow, school, cmd.actor.id, cmd.occurred_at)
    if cmd.actor.role == "security-officer":
        return (
            profile is not None
            and profile.role == "security-officer"
            and profile.active_at(cmd.occurred_at)
        )
    return is_security_staff(standing, cmd.actor.role)


@handles("acknowledge-incident")
def acknowledge_incident(uow: UnitOfWork, cmd: c.AcknowledgeIncident, ctx: CommandContext) -> None:
    incident_of(uow, cmd, cmd.incident_id).acknowledge(ctx, security_actor(uow, cmd))


@handles("take-containment-step")
def take_containment_step(uow: UnitOfWork, cmd: c.TakeContainmentStep, ctx: CommandContext) -> None:
    incident = incident_of(uow, cmd, cmd.incident_id)
    incident.take_containment_step(ctx, security_actor(uow, cmd), cmd.step, cmd.note)


@handles("resolve-incident")
def resolve_incident(uow: UnitOfWork, cmd: c.ResolveIncident, ctx: CommandContext) -> None:
    incident_of(uow, cmd, cmd.incident_id).resolve(ctx, security_actor(uow, cmd), cmd.findings)


@handles("dismiss-incident")
def dismiss_incident(uow: UnitOfWork, cmd: c.DismissIncident, ctx: CommandContext) -> None:
    incident_of(uow, cmd, cmd.incident_id).dismiss(ctx, security_actor(uow, cmd), cmd.findings)


# -- erasure of personal data ----------------------------------------------------------------


@handles("erase-personal-data")
def erase_personal_data(uow: UnitOfWork, cmd: c.ErasePersonalData, ctx: CommandContext) -> None:
    """Records the erasure; ``application.erasure`` destroys the key and the rest once it
    is saved. Reads who the subject and the requester are; the rules are the domain's."""
    school = school_of(uow, cmd)
    uow.check_absent(
        Erasure, Erasure.create_id(cmd.school_id, cmd.erasure_id), "erasure", cmd.erasure_id
    )
    subject_schools = set()
    subject = uow.find(Profile, Profile.create_id(cmd.subject_id))
    if subject is not None:
        subject_schools.add(subject.school_id)
    if cmd.subject_id in school.state.roster:
        subject_schools.add(school.school_id)
    requester = uow.find(Profile, Profile.create_id(cmd.requested_by))
    parties = ErasureParties(
        subject_schools=frozenset(subject_schools),
        requester_is_parent=requester is not None and requester.is_parent_of(cmd.subject_id),
        actor_is_administrator=school.is_administrator(cmd.actor.id, ctx.occurred_at),
    )
    uow.add(
        Erasure.record(
            ctx,
            school_id=cmd.school_id,
            erasure_id=cmd.erasure_id,
            subject_id=cmd.subject_id,
            requested_by=cmd.requested_by,
            basis=cmd.basis,
            parties=parties,
        )
    )


# -- command sources --------------------------------------------------------------------------


def source_of(uow: UnitOfWork, cmd: c.RotateSource | c.RevokeSource) -> Source:
    source = uow.get(Source, Source.create_id(cmd.source_id), "source", cmd.source_id)
    source.check_school(cmd.school_id)
    return source


@handles("register-source")
def register_source(uow: UnitOfWork, cmd: c.RegisterSource, ctx: CommandContext) -> None:
    """A school not registered yet may have its first source provisioned ahead (by the
    school administration; only the operator's key can vouch for that, since no source of
    the school exists)."""
    school = uow.find(School, School.create_id(cmd.school_id))
    uow.check_absent(Source, Source.create_id(cmd.source_id), "source", cmd.source_id)
    uow.add(
        Source.register(
            ctx,
            school_id=cmd.school_id,
            source_id=cmd.source_id,
            kind=cmd.kind,
            person_id=cmd.person_id,
            public_key=cmd.public_key,
            registrar_is_administrator=school is not None and school.is_administrator(cmd.actor.id),
        )
    )


@handles("rotate-source")
def rotate_source(uow: UnitOfWork, cmd: c.RotateSource, ctx: CommandContext) -> None:
    school = school_of(uow, cmd)
    source_of(uow, cmd).rotate(ctx, cmd.public_key, school.is_administrator(cmd.actor.id))


@handles("revoke-source")
def revoke_source(uow: UnitOfWork, cmd: c.RevokeSource, ctx: CommandContext) -> None:
    school = school_of(uow, cmd)
    source_of(uow, cmd).revoke(ctx, cmd.reason, school.is_administrator(cmd.actor.id))
