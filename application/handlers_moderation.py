"""Moderation acts on a chat's content and members."""

from __future__ import annotations

from sferum_audit.application import commands as c
from sferum_audit.application.handlers_base import (
    chat_of,
    handles,
    school_of,
    standing_of,
)
from sferum_audit.application.unit_of_work import UnitOfWork
from sferum_audit.domain.authority import (
    ActorStanding,
    authorities_over,
)
from sferum_audit.domain.chat import Chat
from sferum_audit.domain.context import CommandContext, DatedBeforeFact


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
