"""Statistics for the school administration (2.3), per school and class.

Aggregated when read from the current-state, invitations, audit-trail and incident views,
so they can never disagree with them: people on the roster by role (``roster``: each
pupil counted once, in their class; staff under class ""), memberships by role (each
membership of one of the class's chats counted, so a pupil in the class chat and two
subject chats counts three; class "" holds the school-wide chats), linked ElZhur accounts
by profile role (class from the roster), invitations by status (class of the invitation's
chat), moderation actions by ground and by authority, and incidents by state.
"""

from __future__ import annotations

from typing import Any, Final

import sqlalchemy as sa

from sferum_audit.projections.database import ViewsDatabase

STAT_COLUMNS: Final = ("school_id", "class_id", "metric", "key", "value")


def statistics(db: ViewsDatabase, school: str | None = None) -> list[dict[str, Any]]:
    """One row per (school, class, metric, key) with a count, in a stable order."""
    live = db.live
    chats, members = live.table("cs_chats"), live.table("cs_members")
    profiles, roster, schools = (
        live.table("cs_profiles"),
        live.table("cs_roster"),
        live.table("cs_schools"),
    )
    inv, audit, inc = (
        live.table("inv_invitations"),
        live.table("audit_trail"),
        live.table("incidents"),
    )
    empty: sa.ColumnElement[str] = sa.literal_column("''")
    chat_class = sa.func.coalesce(chats.c.class_id, empty)
    queries: list[tuple[str, sa.Select[Any]]] = [
        (
            "roster",
            sa.select(
                schools.c.school_id,
                sa.func.coalesce(roster.c.class_id, empty),
                roster.c.roster_role,
                sa.func.count(),
            )
            .join_from(roster, schools, roster.c.school_uuid == schools.c.school_uuid)
            .group_by(
                schools.c.school_id,
                sa.func.coalesce(roster.c.class_id, empty),
                roster.c.roster_role,
            ),
        ),
        (
            "memberships",
            sa.select(chats.c.school_id, chat_class, members.c.role, sa.func.count())
            .join_from(members, chats, members.c.chat_uuid == chats.c.chat_uuid)
            .group_by(chats.c.school_id, chat_class, members.c.role),
        ),
        (
            "linked-accounts",
            sa.select(
                profiles.c.school_id,
                sa.func.coalesce(roster.c.class_id, empty),
                profiles.c.role,
                sa.func.count(),
            )
            .select_from(profiles)
            .join(schools, schools.c.school_id == profiles.c.school_id, isouter=True)
            .join(
                roster,
                sa.and_(
                    roster.c.school_uuid == schools.c.school_uuid,
                    roster.c.person_id == profiles.c.profile_id,
                ),
                isouter=True,
            )
            .where(profiles.c.elzhur_account_id.is_not(None))
            .group_by(
                profiles.c.school_id, sa.func.coalesce(roster.c.class_id, empty), profiles.c.role
            ),
        ),
        (
            "invitations",
            sa.select(inv.c.school_id, chat_class, inv.c.status, sa.func.count())
            .select_from(inv)
            .join(
                chats,
                sa.and_(chats.c.school_id == inv.c.school_id, chats.c.chat_id == inv.c.chat_id),
                isouter=True,
            )
            .group_by(inv.c.school_id, chat_class, inv.c.status),
        ),
        (
            "moderation-by-ground",
            sa.select(
                audit.c.school_id,
                sa.func.coalesce(audit.c.class_id, empty),
                sa.func.coalesce(audit.c.ground, sa.literal_column("'(none)'")),
                sa.func.count(),
            ).group_by(
                audit.c.school_id,
                sa.func.coalesce(audit.c.class_id, empty),
                sa.func.coalesce(audit.c.ground, sa.literal_column("'(none)'")),
            ),
        ),
        (
            "moderation-by-authority",
            sa.select(
                audit.c.school_id,
                sa.func.coalesce(audit.c.class_id, empty),
                audit.c.authority,
                sa.func.count(),
            ).group_by(
                audit.c.school_id, sa.func.coalesce(audit.c.class_id, empty), audit.c.authority
            ),
        ),
        (
            "incidents",
            sa.select(inc.c.school_id, empty, inc.c.state, sa.func.count()).group_by(
                inc.c.school_id, inc.c.state
            ),
        ),
    ]
    rows: list[dict[str, Any]] = []
    with db.reading() as conn:
        for metric, statement in queries:
            for school_id, class_id, key, value in conn.execute(statement):
                if school is not None and school_id != school:
                    continue
                rows.append(
                    {
                        "school_id": school_id,
                        "class_id": class_id,
                        "metric": metric,
                        "key": key,
                        "value": int(value),
                    }
                )
    rows.sort(key=lambda r: (r["school_id"], r["class_id"], r["metric"], r["key"]))
    return rows


def school_totals(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same counts summed over each school's classes (class shown as "*")."""
    totals: dict[tuple[str, str, str], int] = {}
    for row in rows:
        key = (row["school_id"], row["metric"], row["key"])
        totals[key] = totals.get(key, 0) + row["value"]
    return [
        {"school_id": s, "class_id": "*", "metric": m, "key": k, "value": v}
        for (s, m, k), v in sorted(totals.items())
    ]
