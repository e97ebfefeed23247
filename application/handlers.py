"""One handler per command type: load the aggregates, call the domain, add what it created.

Handlers hold no rules of their own beyond wiring aggregates together; the rules live in
``sferum_audit.domain``. Each handler checks everything it can before the first change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sferum_audit.application import commands as c
from sferum_audit.application.unit_of_work import UnitOfWork
from sferum_audit.domain.access_incident import AccessIncident
from sferum_audit.domain.authority import ActorStanding, authorities_over, check_actor_role
from sferum_audit.domain.chat import Chat
from sferum_audit.domain.context import CommandContext
from sferum_audit.domain.elzhur_account import ElzhurAccount
from sferum_audit.domain.erasure import Erasure
from sferum_audit.domain.errors import ActorNotPermitted, InvalidValue
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
    return uow.get(School, School.create_id(cmd.school_id), "school", cmd.school_id)


def profile_in(uow: UnitOfWork, school: School, profile_id: str) -> Profile:
    profile = uow.find(Profile, Profile.create_id(profile_id))
    if profile is None or profile.school_id != school.school_id:
        raise InvalidValue(f"profile {profile_id!r} is not registered at school {school.school_id}")
    return profile


def standing_of(
    uow: UnitOfWork, school: School, person_id: str
) -> tuple[ActorStanding, Profile | None]:
    profile = uow.find(Profile, Profile.create_id(person_id))
    if profile is not None and profile.school_id != school.school_id:
        profile = None
    active = profile is not None and not profile.left_school
    standing = ActorStanding(
        person_id=person_id,
        is_administrator=school.is_administrator(person_id),
        is_teacher=active and profile is not None and profile.role == "teacher",
        classes_taught=school.classes_taught_by(person_id),
    )
    return standing, profile


def verified_actor(
    uow: UnitOfWork, cmd: c.CommandBase
) -> tuple[School, ActorStanding, Profile | None]:
    """The school, and the actor's standing there once their claimed role is confirmed."""
    school = school_of(uow, cmd)
    standing, profile = standing_of(uow, school, cmd.actor.id)
    check_actor_role(
        cmd.actor.role,
        standing,
        profile.role if profile else None,
        profile is not None and not profile.left_school,
    )
    return school, standing, profile


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
    school.appoint_administrator(ctx, cmd.person_id, cmd.order_ref)


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
    if teacher.role != "teacher" or teacher.left_school:
        raise InvalidValue(f"{cmd.teacher_id} is not a teacher of school {cmd.school_id}")
    school.assign_class_teacher(ctx, cmd.class_id, cmd.teacher_id)


@handles("release-class-teacher")
def release_class_teacher(uow: UnitOfWork, cmd: c.ReleaseClassTeacher, ctx: CommandContext) -> None:
    school, _, _ = verified_actor(uow, cmd)
    school.release_class_teacher(ctx, cmd.class_id)


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
    old_chat = chat_of(uow, school, class_chat_id(from_class))
    if cmd.person_id in old_chat.members:
        old_chat.remove_member(ctx, cmd.person_id, f"transferred to class {cmd.to_class_id}")


@handles("record-departure")
def record_departure(uow: UnitOfWork, cmd: c.RecordDeparture, ctx: CommandContext) -> None:
    school, _, _ = verified_actor(uow, cmd)
    chats = [chat_of(uow, school, chat_id) for chat_id in all_chat_ids(school)]
    profile = uow.find(Profile, Profile.create_id(cmd.person_id))
    school.record_departure(ctx, cmd.person_id, cmd.reason)
    if profile is not None and profile.school_id == school.school_id:
        profile.mark_left_school(ctx)
    for chat in chats:
        if cmd.person_id in chat.members:
            chat.remove_member(ctx, cmd.person_id, "left the school")


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
    by_administrator = cmd.actor.role == "administrator" and school.is_administrator(cmd.actor.id)
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
    profile = profile_in(uow, school, cmd.profile_id)
    account = uow.find(ElzhurAccount, ElzhurAccount.create_id(cmd.elzhur_account_id))
    if account is not None:
        account.check_free_for(cmd.profile_id)
    is_admin = cmd.actor.role == "administrator" and school.is_administrator(cmd.actor.id)
    profile.link_account(ctx, cmd.elzhur_account_id, is_admin)
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
    is_admin = cmd.actor.role == "administrator" and school.is_administrator(cmd.actor.id)
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
        school.check_class(cmd.class_id)
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
    moderator = profile_in(uow, school, cmd.profile_id)
    if moderator.role != "teacher" and not school.is_administrator(cmd.profile_id):
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
    member = profile_in(uow, school, cmd.profile_id)
    if member.left_school:
        raise InvalidValue(f"{cmd.profile_id} has left the school")
    if cmd.via == "account-link" and member.elzhur_account_id is None:
        raise InvalidValue(f"{cmd.profile_id} has no linked ElZhur account to join by")
    if member.role not in INVITATION_ROLES:
        raise InvalidValue(f"a {member.role} profile does not join chats as a member")
    chat.join(ctx, cmd.profile_id, member.role, cmd.via)


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

    granted = authorities_over(chat.control, standing)
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
        )
    )


@handles("redeem-invitation")
def redeem_invitation(uow: UnitOfWork, cmd: c.RedeemInvitation, ctx: CommandContext) -> None:
    school, _, _ = verified_actor(uow, cmd)
    invitation = invitation_of(uow, cmd, cmd.invitation_id)
    profile = profile_in(uow, school, cmd.actor.id)
    if profile.left_school:
        raise InvalidValue(f"{cmd.actor.id} has left the school")
    chat = chat_of(uow, school, invitation.chat_id)
    invitation.check_redeemable(ctx.occurred_at)
    chat.check_can_join(cmd.actor.id)
    invitation.redeem(ctx, cmd.actor.id)
    chat.join(ctx, cmd.actor.id, invitation.role, "invitation", cmd.invitation_id)


@handles("annul-invitation")
def annul_invitation(uow: UnitOfWork, cmd: c.AnnulInvitation, ctx: CommandContext) -> None:
    school = school_of(uow, cmd)
    invitation = invitation_of(uow, cmd, cmd.invitation_id)
    invitation.annul(ctx, school.is_administrator(cmd.actor.id), cmd.reason)


@handles("expire-invitation")
def expire_invitation(uow: UnitOfWork, cmd: c.ExpireInvitation, ctx: CommandContext) -> None:
    school = school_of(uow, cmd)
    invitation = invitation_of(uow, cmd, cmd.invitation_id)
    invitation.expire(ctx, school.is_administrator(cmd.actor.id))


# -- moderation ------------------------------------------------------------------------------


def moderated_chat(uow: UnitOfWork, cmd: c.CommandBase, chat_id: str) -> tuple[Chat, ActorStanding]:
    """The chat and the moderator's standing. The actor's role is not pre-checked here: the
    chat explains a refusal in the regulation's own terms (who controls it, under what)."""
    school = school_of(uow, cmd)
    standing, _ = standing_of(uow, school, cmd.actor.id)
    return chat_of(uow, school, chat_id), standing


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
    standing, profile = standing_of(uow, school, cmd.actor.id)
    if cmd.actor.role == "security-officer":
        return (
            profile is not None and profile.role == "security-officer" and not profile.left_school
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
    """Records the erasure; the caller destroys the subject's key once it is saved."""
    school = school_of(uow, cmd)
    uow.check_absent(
        Erasure, Erasure.create_id(cmd.school_id, cmd.erasure_id), "erasure", cmd.erasure_id
    )
    requester = uow.find(Profile, Profile.create_id(cmd.requested_by))
    is_parent = requester is not None and requester.is_parent_of(cmd.subject_id)
    uow.add(
        Erasure.record(
            ctx,
            cmd.school_id,
            cmd.erasure_id,
            cmd.subject_id,
            cmd.requested_by,
            is_parent,
            cmd.basis,
            school.is_administrator(cmd.actor.id),
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
