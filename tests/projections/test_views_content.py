"""Each view, on SQLite and PostgreSQL, holds what the scripted history says it should."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sferum_audit.projections import queries
from sferum_audit.projections.database import ViewsDatabase
from sferum_audit.projections.statistics import school_totals, statistics

NOW = datetime(2024, 12, 20, tzinfo=UTC)


def test_current_state_chats_members_and_blocked(current: ViewsDatabase, school: str) -> None:
    chats = {c["chat_id"]: c for c in queries.chats(current, school)}
    assert set(chats) == {
        "school-channel", "staff-room", "class-5a", "parents-5a", "class-6b", "parents-6b",
        "olymp",
    }  # fmt: skip
    assert chats["class-5a"]["kind"] == "class"
    assert chats["olymp"]["owner_id"] == f"{school}-t1"
    assert chats["olymp"]["moderators"] == [f"{school}-t1"]
    assert chats["parents-5a"]["members_by_role"] == {"parent": 1}
    # s1 left class-5a by transfer, s2 was blocked then unblocked, the teacher left
    assert chats["class-5a"]["members"] == 0
    assert chats["class-5a"]["blocked"] == []
    members = queries.members(current, "parents-5a", school)
    assert [(m["profile_id"], m["role"], m["via"], m["invitation_id"]) for m in members] == [
        (f"{school}-p1", "parent", "invitation", "inv-2")
    ]
    assert members[0]["display_name"] == "Ольга"


def test_blocked_member_is_listed_until_unblocked(
    recorded_until: ViewsDatabase, school: str
) -> None:
    rows = queries.members(recorded_until, "class-5a", school)
    blocked = [r for r in rows if r["status"] == "blocked"]
    assert [r["profile_id"] for r in blocked] == [f"{school}-s2"]
    assert "2.3" in blocked[0]["note"]
    assert "4.2.5" in blocked[0]["note"]


def test_profiles_links_with_history_and_classes(current: ViewsDatabase, school: str) -> None:
    history = queries.links(current, f"{school}-s1")
    assert [(r["action"], r["elzhur_account_id"]) for r in history] == [
        ("linked", f"{school}-ej1"),
        ("unlinked", f"{school}-ej1"),
    ]
    assert history[1]["reason"] == "после инцидента"
    profiles = {p["profile_id"]: p for p in queries.profiles(current, school)}
    assert profiles[f"{school}-s1"]["elzhur_account_id"] is None
    assert profiles[f"{school}-t1"]["elzhur_account_id"] == f"{school}-ej-t1"
    assert profiles[f"{school}-p1"]["children"] == f'["{school}-s1","{school}-s2"]'
    classes = {c["class_id"]: c for c in queries.classes(current, school)}
    assert classes["5a"]["class_teacher_id"] == f"{school}-t1"
    assert classes["6b"]["class_teacher_id"] is None
    assert classes["5a"]["administrators"] == [f"{school}-admin"]


def test_invitations_with_status_and_staleness(current: ViewsDatabase, school: str) -> None:
    rows = {r["invitation_id"]: r for r in queries.invitations(current, NOW, school=school)}
    assert {k: r["status"] for k, r in rows.items()} == {
        "inv-1": "redeemed",
        "inv-2": "redeemed",
        "inv-3": "expired",
        "inv-4": "annulled",
    }
    assert rows["inv-1"]["issuer_id"] == f"{school}-t1"
    assert rows["inv-1"]["issuer_role"] == "class-teacher"
    assert rows["inv-1"]["redeemed_by"] == f"{school}-s2"
    assert rows["inv-4"]["annul_reason"] == "не использована"
    assert rows["inv-1"]["age_days"] > 17
    # nothing is left unused: no stale links
    assert queries.invitations(current, NOW, stale_days=1, school=school) == []


def test_stale_invitations_are_the_unused_ones(recorded_until: ViewsDatabase, school: str) -> None:
    issued_at = datetime(2024, 12, 2, 8, 16, tzinfo=UTC)
    stale = queries.invitations(
        recorded_until, issued_at + timedelta(days=3), stale_days=2, school=school
    )
    assert sorted(r["invitation_id"] for r in stale) == ["inv-3", "inv-4"]
    assert all(r["status"] == "issued" for r in stale)
    fresh = queries.invitations(
        recorded_until, issued_at + timedelta(days=1), stale_days=2, school=school
    )
    assert fresh == []


def test_audit_trail_one_row_per_moderation_action(current: ViewsDatabase, school: str) -> None:
    rows = queries.audit_rows(current, queries.AuditFilter(school=school))
    assert [(r["action"], r["authority"], r["ground"], r["target_id"]) for r in rows] == [
        ("content-removed", "2.5", "4.2.4", f"{school}-s2"),
        ("liability-warned", "2.5", "4.2.4", f"{school}-s2"),
        ("content-blocked", "2.3", "law", f"{school}-s1"),
        ("member-blocked", "2.3", "4.2.5", f"{school}-s2"),
        ("member-unblocked", "2.3", None, f"{school}-s2"),
    ]
    first = rows[0]
    assert first["chat_id"] == "class-5a"
    assert first["class_id"] == "5a"
    assert first["moderator_id"] == f"{school}-t1"
    assert first["moderator_role"] == "class-teacher"
    assert first["occurred_at"] == "2024-12-02T08:24:00.000000+00:00"
    assert first["recorded_at"] > first["occurred_at"]
    assert first["reason"] == "грубость"
    assert first["message_id"] == "m-1"
    assert first["command_id"] == f"{school}-c24"
    positions = [r["position"] for r in rows]
    assert positions == sorted(positions)
    assert positions[0] > 0


def test_incident_register_with_provenance(current: ViewsDatabase, school: str) -> None:
    rows = {r["incident_id"]: r for r in queries.incidents(current, NOW, school=school)}
    first = rows["inc-1"]
    assert first["state"] == "resolved"
    assert first["reporter_id"] == first["affected_profile_id"] == f"{school}-s1"
    assert first["told_school_administrator_at"] == "2024-12-02T08:27:00.000000+00:00"
    assert first["told_platform_operator_at"] == "2024-12-02T08:28:00.000000+00:00"
    assert first["hours_to_acknowledge"] == round(2 / 60, 2)
    assert first["hours_to_resolve"] == round((2 * 60 + 9) / 60, 2)
    assert [s["step"] for s in first["containment_steps"]] == [
        "sessions-revoked",
        "account-link-removed",
    ]
    assert first["first_contained_at"] == "2024-12-02T08:31:00.000000+00:00"
    links = first["provenance"]["links"]
    assert [(link["action"], link["elzhur_account_id"]) for link in links] == [
        ("linked", f"{school}-ej1"),
        ("unlinked", f"{school}-ej1"),
    ]
    second = rows["inc-2"]
    assert second["state"] == "reported"
    assert second["hours_open"] is not None
    redeemed = second["provenance"]["invitations_redeemed"]
    assert redeemed == []


def test_provenance_lists_redeemed_invitations_with_issuers(
    current: ViewsDatabase, school: str
) -> None:
    with current.reading() as conn:
        found = queries.account_provenance(current, conn, [f"{school}-s2", f"{school}-p1"])
    (s2,) = found[f"{school}-s2"]["invitations_redeemed"]
    assert (s2["invitation_id"], s2["issuer_id"], s2["issuer_role"]) == (
        "inv-1",
        f"{school}-t1",
        "class-teacher",
    )
    (p1,) = found[f"{school}-p1"]["invitations_redeemed"]
    assert (p1["invitation_id"], p1["issuer_id"], p1["chat_id"]) == (
        "inv-2",
        f"{school}-admin",
        "parents-5a",
    )


def test_open_and_overdue_incidents(current: ViewsDatabase, school: str) -> None:
    open_ = queries.incidents(current, NOW, open_only=True, school=school)
    assert [r["incident_id"] for r in open_] == ["inc-2"]
    reported = datetime(2024, 12, 2, 10, 38, tzinfo=UTC)
    overdue = queries.incidents(
        current, reported + timedelta(hours=25), overdue_after=timedelta(hours=24), school=school
    )
    assert [r["incident_id"] for r in overdue] == ["inc-2"]
    in_time = queries.incidents(
        current, reported + timedelta(hours=23), overdue_after=timedelta(hours=24), school=school
    )
    assert in_time == []


def test_statistics_per_school_and_class(current: ViewsDatabase, school: str) -> None:
    rows = statistics(current, school)
    table = {(r["class_id"], r["metric"], r["key"]): r["value"] for r in rows}
    assert table[("5a", "memberships", "parent")] == 1
    # each pupil once, in the class they are in now (s1 moved to 6b), however many chats
    assert table[("5a", "roster", "student")] == 1
    assert table[("6b", "roster", "student")] == 1
    assert table[("5a", "invitations", "redeemed")] == 2  # class-5a and parents-5a
    assert table[("5a", "invitations", "annulled")] == 1  # inv-4 in parents-5a
    assert table[("", "invitations", "expired")] == 1  # staff room
    assert table[("5a", "moderation-by-authority", "2.3")] == 3
    assert table[("5a", "moderation-by-authority", "2.5")] == 2
    assert table[("5a", "moderation-by-ground", "4.2.4")] == 2
    assert table[("", "incidents", "resolved")] == 1
    assert table[("", "incidents", "reported")] == 1
    assert table[("", "linked-accounts", "teacher")] == 1
    totals = {(r["metric"], r["key"]): r["value"] for r in school_totals(rows)}
    assert totals[("invitations", "redeemed")] == 2
