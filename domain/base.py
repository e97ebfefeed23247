"""The aggregate base that makes every event carry its ``CommandContext``."""

from __future__ import annotations

from functools import lru_cache
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from sferum_audit.domain.context import CommandContext

# Aggregate ids are derived from the caller's readable keys ("school 58, chat 5A"), so the
# same key always names the same aggregate and a second "create" fails on the version.
ID_NAMESPACE = UUID("6f1d3c1e-5a43-4b5e-9a55-2f8f6c2d7a10")


def unique_stable_id(kind: str, *keys: str) -> UUID:
    """``stable_id`` for keys named once (a command id), kept out of ``stable_id``'s cache,
    where they would only push out the ids that recur."""
    return uuid5(ID_NAMESPACE, "/".join((kind, *keys)))


# The same few schools, chats and people are named by command after command; a bounded
# cache spares recomputing their UUIDv5 (a SHA-1) each time.
@lru_cache(maxsize=1 << 17)
def stable_id(kind: str, *keys: str) -> UUID:
    """The aggregate id of ``kind`` named by ``keys`` (a UUIDv5: pseudonymous, repeatable)."""
    return unique_stable_id(kind, *keys)


class AuditedAggregate(Aggregate):
    """An aggregate whose events all record who caused them, when, and by which command."""

    class Event(Aggregate.Event):
        ctx: CommandContext

    class Created(Event, Aggregate.Created):
        pass
