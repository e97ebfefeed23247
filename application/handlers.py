"""One handler per command type: load the aggregates, call the domain, add what it created.

Handlers hold no rules of their own beyond wiring aggregates together; the rules live in
``sferum_audit.domain``. Each handler checks everything it can before the first change.
Every fact is looked up as it held at the command's ``occurred_at`` (``ctx.occurred_at``):
an act is judged by the authority its actor had when it occurred.

The handlers live in one module per command family (``handlers_school``, ``handlers_profiles``,
``handlers_chats``, ``handlers_invitations``, ``handlers_moderation``, ``handlers_incidents``,
``handlers_erasure``, ``handlers_sources``); the registry and the shared lookups are in
``handlers_base``. Importing this module registers every handler in ``HANDLERS``.
"""

from __future__ import annotations

from sferum_audit.application import (  # noqa: F401 (imported to register their handlers)
    handlers_chats,
    handlers_erasure,
    handlers_incidents,
    handlers_invitations,
    handlers_moderation,
    handlers_profiles,
    handlers_school,
    handlers_sources,
)
from sferum_audit.application.handlers_base import (
    HANDLERS,
    Handler,
    all_chat_ids,
    chat_of,
    class_chat_id,
    handles,
    parents_chat_id,
    school_of,
)

__all__ = [
    "HANDLERS",
    "Handler",
    "all_chat_ids",
    "chat_of",
    "class_chat_id",
    "handles",
    "parents_chat_id",
    "school_of",
]
