"""The write buffer gives the net effect of its writes, in bulk, on both databases."""

from __future__ import annotations

from typing import Any

from sferum_audit.projections.buffer import TableBuffer
from sferum_audit.projections.database import ViewsDatabase
from sferum_audit.projections.tables import SPEC_BY_NAME, TableSet


def member(chat: str, profile: str, role: str = "student") -> dict[str, Any]:
    return {
        "chat_uuid": chat,
        "profile_id": profile,
        "role": role,
        "via": "added",
        "invitation_id": None,
        "joined_at": "2024-12-02T08:00:00.000000+00:00",
        "added_by": "admin",
        "position": 1,
    }


def flush(views: ViewsDatabase, buffer: TableBuffer) -> None:
    with views.writing() as conn:
        buffer.flush(views, conn, views.live)


def rows(views: ViewsDatabase) -> dict[tuple[str, str], tuple[Any, ...]]:
    with views.reading() as conn:
        found = conn.exec_driver_sql(
            'SELECT chat_uuid, profile_id, role, via, "position" FROM cs_members'
        )
        return {(r[0], r[1]): tuple(r[2:]) for r in found}


def test_net_effect_of_inserts_updates_deletes(views: ViewsDatabase) -> None:
    with views.writing() as conn:
        TableSet().create(conn, ["current_state"], with_indexes=True)
    spec = SPEC_BY_NAME["cs_members"]
    first = TableBuffer(spec)
    for n in range(12):
        first.insert(("c1", f"p{n}"), member("c1", f"p{n}"))
    first.update(("c1", "p0"), {"role": "parent"})  # folds into the pending insert
    first.delete(("c1", "p1"))  # never reaches the database
    flush(views, first)
    stored = rows(views)
    assert len(stored) == 11
    assert stored[("c1", "p0")][0] == "parent"

    second = TableBuffer(spec)
    for n in range(2, 8):
        second.update(("c1", f"p{n}"), {"role": "teacher", "position": n})
    for n in range(8, 12):
        second.delete(("c1", f"p{n}"))
    second.delete(("c1", "p2"))  # updated, then deleted
    second.insert(("c1", "p2"), member("c1", "p2", "parent"))  # and joined again
    second.put(("c1", "p3"), member("c1", "p3", "administrator"))
    second.update(("c1", "p3"), {"via": "invitation"})
    second.update(("c1", "missing"), {"role": "teacher"})  # nothing to update
    flush(views, second)
    stored = rows(views)
    assert sorted(stored) == [("c1", f"p{n}") for n in (0, 2, 3, 4, 5, 6, 7)]
    assert stored[("c1", "p2")] == ("parent", "added", 1)
    assert stored[("c1", "p3")] == ("administrator", "invitation", 1)
    assert stored[("c1", "p4")] == ("teacher", "added", 4)
