"""Chats: opening them, their moderators, their members."""

from __future__ import annotations

from sferum_audit.application import commands as c
from sferum_audit.application.handlers_base import (
    active_profile_in,
    all_chat_ids,
    candidate_of,
    chat_of,
    handles,
    verified_actor,
)
from sferum_audit.application.unit_of_work import UnitOfWork
from sferum_audit.domain.chat import Chat, MembershipNotAllowed
from sferum_audit.domain.context import CommandContext
from sferum_audit.domain.errors import ActorNotPermitted, InvalidValue
from sferum_audit.domain.regulation import (
    INVITATION_ROLES,
)


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
