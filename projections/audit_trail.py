"""The audit trail: one row per moderation action (content removed or blocked, member
blocked or unblocked, liability warned), with who, under which authority (2.3/2.4/2.5), on
which ground (4.2.x, law, third-party rights), where, to whom, why, when it happened and
when it was recorded, the command, the source whose signature vouched for it (``source_id``),
and the event's position in the global log.

Moderation events name their chat only by its id, so the view keeps the readable keys of
every chat (``audit_chats``) and a bounded in-memory map of them: a chat's keys never
change, so the map is never stale, only incomplete.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Final

import sqlalchemy as sa

from sferum_audit.domain.chat import Chat
from sferum_audit.domain.erasure import Erasure
from sferum_audit.projections.buffer import AppendBuffer, TableBuffer
from sferum_audit.projections.database import ViewsDatabase, quote
from sferum_audit.projections.tables import AUDIT_TRAIL, TableSet
from sferum_audit.projections.view import ERASED_TEXT, Handler, View, iso, topic

CONTENT_REMOVED: Final = "content-removed"
CONTENT_BLOCKED: Final = "content-blocked"
MEMBER_BLOCKED: Final = "member-blocked"
MEMBER_UNBLOCKED: Final = "member-unblocked"
LIABILITY_WARNED: Final = "liability-warned"
ACTIONS: Final = (
    CONTENT_REMOVED,
    CONTENT_BLOCKED,
    MEMBER_BLOCKED,
    MEMBER_UNBLOCKED,
    LIABILITY_WARNED,
)

ChatKeys = tuple[str, str, str, str | None]  # school_id, chat_id, kind, class_id
UNKNOWN_CHAT: Final[ChatKeys] = ("?", "?", "?", None)


class AuditTrailView(View):
    """Every moderation action, in log order, with its authority and ground."""

    name = AUDIT_TRAIL
    append_only = frozenset({"audit_trail"})
    chat_cache_size: int = 10_000

    audit_trail: AppendBuffer
    audit_chats: TableBuffer

    def __init__(self) -> None:
        super().__init__()
        self._chats: OrderedDict[str, ChatKeys] = OrderedDict()
        self._reader: tuple[ViewsDatabase, sa.Connection, TableSet] | None = None

    def routes(self) -> dict[str, Handler]:
        return {
            topic(Chat, "Created"): self.chat_created,
            topic(Chat, "ContentRemoved"): self.content_removed,
            topic(Chat, "ContentBlocked"): self.content_blocked,
            topic(Chat, "MemberBlocked"): self.member_blocked,
            topic(Chat, "MemberUnblocked"): self.member_unblocked,
            topic(Chat, "LiabilityWarned"): self.liability_warned,
            topic(Erasure, "Recorded"): self.erased,
        }

    def begin_page(self, db: ViewsDatabase, conn: sa.Connection, tables: TableSet) -> None:
        """Where to look up a chat the in-memory map has forgotten (or never saw)."""
        self._reader = (db, conn, tables)

    # -- chats --------------------------------------------------------------------------------

    def chat_created(self, e: Any, position: int) -> None:
        chat = e.originator_id.hex
        keys: ChatKeys = (e.school_id, e.chat_id, e.kind, e.class_id)
        self.audit_chats.insert(
            chat,
            {
                "chat_uuid": chat,
                "school_id": e.school_id,
                "chat_id": e.chat_id,
                "kind": e.kind,
                "class_id": e.class_id,
            },
        )
        self._remember(chat, keys)

    def _remember(self, chat: str, keys: ChatKeys) -> None:
        self._chats[chat] = keys
        if len(self._chats) > self.chat_cache_size:
            self._chats.popitem(last=False)

    def _chat(self, chat: str) -> ChatKeys:
        keys = self._chats.get(chat)
        if keys is not None:
            return keys
        if self._reader is None:
            return UNKNOWN_CHAT
        db, conn, tables = self._reader
        name = quote(tables.name("audit_chats"))
        row = conn.exec_driver_sql(
            f"SELECT school_id, chat_id, kind, class_id FROM {name} "  # noqa: S608
            f"WHERE chat_uuid={db.placeholder}",
            (chat,),
        ).first()
        if row is None:
            return UNKNOWN_CHAT
        keys = (row[0], row[1], row[2], row[3])
        self._remember(chat, keys)
        return keys

    # -- moderation ---------------------------------------------------------------------------

    def _row(
        self,
        e: Any,
        position: int,
        action: str,
        ground: str | None,
        target: str,
        message_id: str | None,
        excerpt: str | None,
    ) -> None:
        school_id, chat_id, kind, class_id = self._chat(e.originator_id.hex)
        ctx = e.ctx
        self.audit_trail.rows.append(
            (
                position,
                school_id,
                class_id,
                chat_id,
                kind,
                action,
                ctx.actor_id,
                ctx.actor_role,
                e.authority,
                ground,
                target,
                message_id,
                e.reason,
                excerpt,
                iso(ctx.occurred_at),
                iso(e.timestamp),
                ctx.command_id,
                ctx.correlation_id,
                f"{e.originator_id}:{e.originator_version}",
                # the signed source; events stored before sources have none in their context
                getattr(ctx, "source_id", None),
            )
        )

    def content_removed(self, e: Any, position: int) -> None:
        self._row(e, position, CONTENT_REMOVED, e.ground, e.author_id, e.message_id, e.excerpt)

    def content_blocked(self, e: Any, position: int) -> None:
        self._row(e, position, CONTENT_BLOCKED, e.ground, e.author_id, e.message_id, e.excerpt)

    def member_blocked(self, e: Any, position: int) -> None:
        self._row(e, position, MEMBER_BLOCKED, e.ground, e.member_id, None, None)

    def member_unblocked(self, e: Any, position: int) -> None:
        self._row(e, position, MEMBER_UNBLOCKED, None, e.member_id, None, None)

    def liability_warned(self, e: Any, position: int) -> None:
        self._row(e, position, LIABILITY_WARNED, e.ground, e.member_id, None, None)

    def erased(self, e: Any, position: int) -> None:
        """Reasons and excerpts about the erased person read as erased from now on, as they
        would in a rebuild once the person's key is destroyed."""
        self.raw(
            "UPDATE {audit_trail} SET "
            "reason=CASE WHEN reason IS NULL THEN NULL ELSE {ph} END, "
            "excerpt=CASE WHEN excerpt IS NULL THEN NULL ELSE {ph} END "
            "WHERE target_id={ph}",
            ERASED_TEXT,
            ERASED_TEXT,
            e.subject_id,
        )
