"""Filtered reads of the views for the CLI (and anything else that lists them).

Everything that depends on "now" (ages, staleness, overdue incidents, time to
acknowledge an open incident) is computed here, from the ``now`` the caller passes.

Filter values are checked before any query runs: a value that cannot match anything
(an authority the order does not have, a ground of no section, a status no invitation
ever has, a school or chat the views do not know) raises ``InvalidFilter``, which names
the option and the values that are valid, instead of answering with an empty list.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import sqlalchemy as sa

from sferum_audit.domain.access_incident import CLOSED, REPORTED, STATE_ORDER
from sferum_audit.domain.invitation import ANNULLED, EXPIRED, ISSUED, REDEEMED
from sferum_audit.domain.regulation import GROUNDS, MODERATION_AUTHORITIES
from sferum_audit.projections.audit_trail import ACTIONS
from sferum_audit.projections.database import ViewsDatabase
from sferum_audit.projections.tables import AUDIT_TRAIL, specs_of
from sferum_audit.projections.view import iso

# The audit trail's fields in the order people read them; the view's other columns
# follow (``audit_columns``), so a column added to the view is listed and exported too.
AUDIT_COLUMNS: Final = (
    "position", "occurred_at", "recorded_at", "school_id", "class_id", "chat_id", "action",
    "moderator_id", "moderator_role", "authority", "ground", "target_id", "message_id",
    "reason", "command_id", "source_id",
)  # fmt: skip
INVITATION_STATUSES: Final = (ISSUED, REDEEMED, ANNULLED, EXPIRED)
INCIDENT_STATES: Final = STATE_ORDER


def audit_columns() -> tuple[str, ...]:
    """Every column of the audit trail view: ``AUDIT_COLUMNS`` first, then the rest."""
    (spec,) = (s for s in specs_of(AUDIT_TRAIL) if s.name == "audit_trail")
    rest = tuple(c for c in spec.column_names if c not in AUDIT_COLUMNS)
    return (*AUDIT_COLUMNS, *rest)


AUDIT_NAMES: Final = ("moderator_name", "target_name")  # joined from the profiles


class InvalidFilter(ValueError):
    """A filter value that cannot match: names the option and the valid values."""

    def __init__(self, option: str, value: str, valid: list[str] | tuple[str, ...]) -> None:
        self.option = option
        self.value = value
        self.valid = tuple(valid)
        shown = ", ".join(self.valid) if self.valid else "none recorded yet"
        super().__init__(f"unknown {option} value {value!r}; valid: {shown}")


def check_choice(option: str, value: str | None, valid: Iterable[str]) -> None:
    """Raises ``InvalidFilter`` unless ``value`` is ``None`` or one of ``valid``."""
    choices = sorted(valid)
    if value is not None and value not in choices:
        raise InvalidFilter(option, value, choices)


def known_schools(db: ViewsDatabase) -> list[str]:
    s = db.live.table("cs_schools")
    with db.reading() as conn:
        return [r[0] for r in conn.execute(sa.select(s.c.school_id).order_by(s.c.school_id))]


def check_school(db: ViewsDatabase, school: str | None) -> None:
    """``--school`` must name a school the views know."""
    if school is not None:
        check_choice("--school", school, known_schools(db))


def check_chat(db: ViewsDatabase, chat: str, school: str | None, option: str = "CHAT") -> None:
    """A chat id must name a chat the views know (in ``school``, when given)."""
    c = db.live.table("cs_chats")
    statement = sa.select(c.c.chat_id).distinct().order_by(c.c.chat_id)
    if school is not None:
        statement = statement.where(c.c.school_id == school)
    with db.reading() as conn:
        check_choice(option, chat, [r[0] for r in conn.execute(statement)])


@dataclass(frozen=True)
class AuditFilter:
    """The filters of ``sferum-audit audit``; ``None`` means "any"."""

    moderator: str | None = None
    chat: str | None = None
    target: str | None = None
    authority: str | None = None
    ground: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    school: str | None = None

    def check(self) -> None:
        """Raises ``InvalidFilter`` for a value no audit row can have."""
        check_choice("--authority", self.authority, MODERATION_AUTHORITIES)
        check_choice("--ground", self.ground, GROUNDS)
        check_choice("--action", self.action, ACTIONS)

    def describe(self) -> str:
        """The filters in force, as the options that set them."""
        given = {k: v for k, v in vars(self).items() if v is not None}
        return " ".join(
            f"--{k} {iso(v) if isinstance(v, datetime) else v}" for k, v in given.items()
        )


def _hours(start: str | None, end: str | None) -> float | None:
    if start is None or end is None:
        return None
    delta = datetime.fromisoformat(end) - datetime.fromisoformat(start)
    return round(delta.total_seconds() / 3600, 2)


def audit_statement(db: ViewsDatabase, flt: AuditFilter) -> sa.Select[Any]:
    """The audit rows that pass ``flt``, with the moderator's and the target's display
    names (their ids where no profile has one)."""
    t = db.live.table("audit_trail")
    profiles = db.live.table("cs_profiles")
    who, whom = profiles.alias("who"), profiles.alias("whom")
    statement = (
        sa.select(
            *(t.c[c] for c in audit_columns()),
            sa.func.coalesce(who.c.display_name, t.c.moderator_id).label("moderator_name"),
            sa.func.coalesce(whom.c.display_name, t.c.target_id).label("target_name"),
        )
        .select_from(t)
        .join(who, who.c.profile_id == t.c.moderator_id, isouter=True)
        .join(whom, whom.c.profile_id == t.c.target_id, isouter=True)
    )
    for column, value in (
        ("moderator_id", flt.moderator),
        ("chat_id", flt.chat),
        ("target_id", flt.target),
        ("authority", flt.authority),
        ("ground", flt.ground),
        ("action", flt.action),
        ("school_id", flt.school),
    ):
        if value is not None:
            statement = statement.where(t.c[column] == value)
    if flt.since is not None:
        statement = statement.where(t.c.occurred_at >= iso(flt.since))
    if flt.until is not None:
        statement = statement.where(t.c.occurred_at <= iso(flt.until))
    return statement


def audit_rows(
    db: ViewsDatabase,
    flt: AuditFilter,
    *,
    limit: int | None = None,
    newest_first: bool = False,
) -> list[dict[str, Any]]:
    """The audit trail rows that pass ``flt``, in log order (or newest first)."""
    flt.check()
    t = db.live.table("audit_trail")
    statement = audit_statement(db, flt)
    statement = statement.order_by(t.c.position.desc() if newest_first else t.c.position)
    if limit is not None:
        statement = statement.limit(limit)
    with db.reading() as conn:
        return [dict(row._mapping) for row in conn.execute(statement)]


# -- current state --------------------------------------------------------------------------


def chats(db: ViewsDatabase, school: str | None = None) -> list[dict[str, Any]]:
    """Every chat with kind, owner, moderators, member counts by role and blocked members."""
    live = db.live
    c, m, mo, b = (
        live.table("cs_chats"),
        live.table("cs_members"),
        live.table("cs_moderators"),
        live.table("cs_blocked"),
    )
    statement = sa.select(c).order_by(c.c.school_id, c.c.position)
    if school is not None:
        statement = statement.where(c.c.school_id == school)
    with db.reading() as conn:
        rows = [dict(r._mapping) for r in conn.execute(statement)]
        counts: dict[str, dict[str, int]] = defaultdict(dict)
        for chat_uuid, role, n in conn.execute(
            sa.select(m.c.chat_uuid, m.c.role, sa.func.count()).group_by(m.c.chat_uuid, m.c.role)
        ):
            counts[chat_uuid][role] = n
        moderators: dict[str, list[str]] = defaultdict(list)
        for chat_uuid, profile in conn.execute(
            sa.select(mo.c.chat_uuid, mo.c.profile_id).order_by(mo.c.profile_id)
        ):
            moderators[chat_uuid].append(profile)
        blocked: dict[str, list[str]] = defaultdict(list)
        for chat_uuid, profile in conn.execute(
            sa.select(b.c.chat_uuid, b.c.profile_id).order_by(b.c.profile_id)
        ):
            blocked[chat_uuid].append(profile)
    for row in rows:
        key = row["chat_uuid"]
        row["members"] = sum(counts[key].values())
        row["members_by_role"] = dict(sorted(counts[key].items()))
        row["moderators"] = moderators.get(key, [])
        row["blocked"] = blocked.get(key, [])
        row["archived"] = bool(row["archived"])
    return rows


def members(db: ViewsDatabase, chat_id: str, school: str | None = None) -> list[dict[str, Any]]:
    """Members of the chat (every school's chat of that id unless ``school``), then its
    blocked members, with their roles and profile names."""
    live = db.live
    c, m, b, p = (
        live.table("cs_chats"),
        live.table("cs_members"),
        live.table("cs_blocked"),
        live.table("cs_profiles"),
    )
    where = [c.c.chat_id == chat_id]
    if school is not None:
        where.append(c.c.school_id == school)
    joined = (
        sa.select(
            c.c.school_id,
            c.c.chat_id,
            m.c.profile_id,
            p.c.display_name,
            m.c.role,
            m.c.via,
            m.c.invitation_id,
            m.c.joined_at,
            m.c.added_by,
        )
        .join_from(m, c, m.c.chat_uuid == c.c.chat_uuid)
        .join(p, p.c.profile_id == m.c.profile_id, isouter=True)
        .where(*where)
        .order_by(c.c.school_id, m.c.role, m.c.profile_id)
    )
    blocked = (
        sa.select(
            c.c.school_id,
            c.c.chat_id,
            b.c.profile_id,
            p.c.display_name,
            b.c.blocked_at,
            b.c.blocked_by,
            b.c.authority,
            b.c.ground,
        )
        .join_from(b, c, b.c.chat_uuid == c.c.chat_uuid)
        .join(p, p.c.profile_id == b.c.profile_id, isouter=True)
        .where(*where)
        .order_by(c.c.school_id, b.c.profile_id)
    )
    with db.reading() as conn:
        rows = [{**r._mapping, "status": "member"} for r in conn.execute(joined)]
        for r in conn.execute(blocked):
            row = dict(r._mapping)
            rows.append(
                {
                    **row,
                    "status": "blocked",
                    "joined_at": None,
                    "role": None,
                    "via": None,
                    "note": f"blocked by {row['blocked_by']} under {row['authority']} "
                    f"on {row['ground']}",
                }
            )
    return rows


def links(
    db: ViewsDatabase, profile: str | None = None, school: str | None = None
) -> list[dict[str, Any]]:
    """The history of ElZhur account links: every link and unlink, in log order."""
    live = db.live
    lk, p = live.table("cs_links"), live.table("cs_profiles")
    statement = (
        sa.select(
            lk.c.position,
            p.c.school_id,
            p.c.profile_id,
            p.c.role.label("profile_role"),
            lk.c.action,
            lk.c.elzhur_account_id,
            lk.c.reason,
            lk.c.actor_id,
            lk.c.actor_role,
            lk.c.occurred_at,
            lk.c.recorded_at,
        )
        .join_from(lk, p, lk.c.profile_uuid == p.c.profile_uuid)
        .order_by(lk.c.position)
    )
    if profile is not None:
        statement = statement.where(p.c.profile_id == profile)
    if school is not None:
        statement = statement.where(p.c.school_id == school)
    with db.reading() as conn:
        return [dict(r._mapping) for r in conn.execute(statement)]


def profiles(db: ViewsDatabase, school: str | None = None) -> list[dict[str, Any]]:
    p = db.live.table("cs_profiles")
    statement = sa.select(p).order_by(p.c.school_id, p.c.profile_id)
    if school is not None:
        statement = statement.where(p.c.school_id == school)
    with db.reading() as conn:
        return [dict(r._mapping) for r in conn.execute(statement)]


def classes(db: ViewsDatabase, school: str | None = None) -> list[dict[str, Any]]:
    """Classes with their class teachers (2.5), and each school's administrators (2.3)."""
    live = db.live
    s, k, a = live.table("cs_schools"), live.table("cs_classes"), live.table("cs_administrators")
    rows_stmt = (
        sa.select(s.c.school_id, k.c.class_id, k.c.name, k.c.class_teacher_id,
                  k.c.teacher_assigned_at)
        .join_from(k, s, k.c.school_uuid == s.c.school_uuid)
        .order_by(s.c.school_id, k.c.class_id)
    )  # fmt: skip
    admins_stmt = (
        sa.select(s.c.school_id, a.c.person_id)
        .join_from(a, s, a.c.school_uuid == s.c.school_uuid)
        .order_by(s.c.school_id, a.c.person_id)
    )
    if school is not None:
        rows_stmt = rows_stmt.where(s.c.school_id == school)
        admins_stmt = admins_stmt.where(s.c.school_id == school)
    with db.reading() as conn:
        admins: dict[str, list[str]] = defaultdict(list)
        for school_id, person in conn.execute(admins_stmt):
            admins[school_id].append(person)
        rows = [dict(r._mapping) for r in conn.execute(rows_stmt)]
    for row in rows:
        row["administrators"] = admins.get(row["school_id"], [])
    return rows


# -- invitations ----------------------------------------------------------------------------


def invitations(
    db: ViewsDatabase,
    now: datetime,
    *,
    stale_days: float | None = None,
    status: str | None = None,
    school: str | None = None,
) -> list[dict[str, Any]]:
    """Every invitation link with its age at ``now``; with ``stale_days``, only the links
    still unused after that many days (the ones 2.3 says to annul)."""
    check_choice("--status", status, INVITATION_STATUSES)
    i = db.live.table("inv_invitations")
    statement = sa.select(i).order_by(i.c.school_id, i.c.issued_at, i.c.invitation_id)
    if status is not None:
        statement = statement.where(i.c.status == status)
    if school is not None:
        statement = statement.where(i.c.school_id == school)
    if stale_days is not None:
        cutoff = iso(now - timedelta(days=stale_days))
        statement = statement.where(i.c.status == ISSUED, i.c.issued_at <= cutoff)
    now_text = iso(now)
    with db.reading() as conn:
        rows = [dict(r._mapping) for r in conn.execute(statement)]
    for row in rows:
        age = _hours(row["issued_at"], now_text)
        row["age_days"] = None if age is None else round(age / 24, 2)
        row["past_expiry"] = row["status"] == ISSUED and row["expires_at"] <= now_text
    return rows


# -- incidents ------------------------------------------------------------------------------


def incidents(
    db: ViewsDatabase,
    now: datetime,
    *,
    open_only: bool = False,
    overdue_after: timedelta | None = None,
    school: str | None = None,
) -> list[dict[str, Any]]:
    """Access incidents with times to acknowledge and resolve, containment steps and the
    provenance of the affected account. ``overdue_after``: only those still unacknowledged
    that long after they were reported."""
    live = db.live
    t, steps = live.table("incidents"), live.table("incident_steps")
    statement = sa.select(t).order_by(t.c.school_id, t.c.reported_at, t.c.incident_id)
    if school is not None:
        statement = statement.where(t.c.school_id == school)
    if open_only:
        statement = statement.where(t.c.state.not_in(sorted(CLOSED)))
    if overdue_after is not None:
        statement = statement.where(
            t.c.state == REPORTED, t.c.reported_at <= iso(now - overdue_after)
        )
    now_text = iso(now)
    with db.reading() as conn:
        rows = [dict(r._mapping) for r in conn.execute(statement)]
        keys = [row["incident_uuid"] for row in rows]
        taken: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for chunk in _chunks(keys):
            for r in conn.execute(
                sa.select(steps).where(steps.c.incident_uuid.in_(chunk)).order_by(steps.c.position)
            ):
                taken[r.incident_uuid].append(
                    {"step": r.step, "at": r.occurred_at, "by": r.actor_id, "note": r.note}
                )
        provenance = account_provenance(db, conn, sorted({r["affected_profile_id"] for r in rows}))
    for row in rows:
        row["containment_steps"] = taken.get(row["incident_uuid"], [])
        row["first_contained_at"] = min((s["at"] for s in row["containment_steps"]), default=None)
        row["hours_to_acknowledge"] = _hours(row["reported_at"], row["acknowledged_at"])
        row["hours_to_resolve"] = _hours(row["reported_at"], row["closed_at"])
        row["hours_open"] = (
            _hours(row["reported_at"], now_text) if row["state"] not in CLOSED else None
        )
        row["provenance"] = provenance.get(row["affected_profile_id"], _empty_provenance())
    return rows


def _empty_provenance() -> dict[str, list[dict[str, Any]]]:
    return {"links": [], "invitations_redeemed": []}


def account_provenance(
    db: ViewsDatabase, conn: sa.Connection, profile_ids: list[str]
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """For each profile: its ElZhur link history and the invitations it redeemed, with who
    issued them (from the current-state and invitations views)."""
    live = db.live
    lk, p, inv = live.table("cs_links"), live.table("cs_profiles"), live.table("inv_invitations")
    found: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for chunk in _chunks(profile_ids):
        for r in conn.execute(
            sa.select(p.c.profile_id, lk)
            .join_from(lk, p, lk.c.profile_uuid == p.c.profile_uuid)
            .where(p.c.profile_id.in_(chunk))
            .order_by(lk.c.position)
        ):
            found.setdefault(r.profile_id, _empty_provenance())["links"].append(
                {
                    "action": r.action,
                    "elzhur_account_id": r.elzhur_account_id,
                    "at": r.occurred_at,
                    "by": r.actor_id,
                    "position": r.position,
                }
            )
        for r in conn.execute(
            sa.select(inv).where(inv.c.redeemed_by.in_(chunk)).order_by(inv.c.last_position)
        ):
            found.setdefault(r.redeemed_by, _empty_provenance())["invitations_redeemed"].append(
                {
                    "invitation_id": r.invitation_id,
                    "chat_id": r.chat_id,
                    "role": r.role,
                    "issuer_id": r.issuer_id,
                    "issuer_role": r.issuer_role,
                    "issued_at": r.issued_at,
                    "redeemed_at": r.status_at,
                }
            )
    return found


def _chunks(items: list[str], size: int = 500) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def now_utc() -> datetime:
    return datetime.now(UTC)
