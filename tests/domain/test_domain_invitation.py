"""Invitation links: issued, then redeemed, annulled or expired, never back (2.3-2.5)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from domain_factories import ADMIN, CLASS_TEACHER_5A, SCHOOL, STUDENT, T0, TEACHER, ctx

from sferum_audit.domain.authority import ActorStanding
from sferum_audit.domain.errors import DomainError
from sferum_audit.domain.invitation import Invitation

EXPIRES = T0 + timedelta(days=7)


def issue(
    actor: ActorStanding = ADMIN,
    role: str = "administrator",
    chat_authorities: frozenset[str] = frozenset({"2.3"}),
    invited_role: str = "student",
    expires_at: datetime = EXPIRES,
) -> Invitation:
    return Invitation.issue(
        ctx(actor.person_id, role, at=T0),
        chat_authorities,
        actor,
        SCHOOL,
        "inv-1",
        "class-5a",
        invited_role,
        expires_at,
        "subject",
    )


def at(delta: timedelta, actor: str = "student-kolya", role: str = "student"):
    return ctx(actor, role, at=T0 + delta)


def test_issued_invitation_is_redeemed_once_by_the_joining_profile() -> None:
    invitation = issue()
    invitation.redeem(at(timedelta(hours=1)), "student-kolya", "student", False)
    assert (invitation.status, invitation.redeemed_by) == ("redeemed", "student-kolya")
    with pytest.raises(DomainError) as refused:
        invitation.redeem(
            at(timedelta(hours=2), "student-petya"), "student-petya", "student", False
        )
    assert refused.value.code == "invitation-not-usable"
    assert invitation.redeemed_by == "student-kolya"


def test_invitation_is_redeemed_by_the_profile_that_joins() -> None:
    invitation = issue()
    with pytest.raises(DomainError) as refused:
        invitation.redeem(at(timedelta(hours=1)), "student-petya", "student", False)
    assert refused.value.code == "actor-not-permitted"
    assert invitation.status == "issued"


@pytest.mark.parametrize("delta", [timedelta(days=7), timedelta(days=7, seconds=1)])
def test_redeeming_at_or_after_expires_at_is_refused(delta: timedelta) -> None:
    invitation = issue()
    with pytest.raises(DomainError) as refused:
        invitation.redeem(at(delta), "student-kolya", "student", False)
    assert refused.value.code == "invitation-expired"
    assert invitation.status == "issued"


def test_redeeming_just_before_expiry_is_accepted() -> None:
    invitation = issue()
    invitation.redeem(
        at(timedelta(days=7) - timedelta(seconds=1)), "student-kolya", "student", False
    )
    assert invitation.status == "redeemed"


def test_annulled_invitation_cannot_be_redeemed() -> None:
    invitation = issue()
    invitation.annul(at(timedelta(hours=1), "adm", "administrator"), True, "утечка ссылки")
    assert invitation.status == "annulled"
    with pytest.raises(DomainError) as refused:
        invitation.redeem(at(timedelta(hours=2)), "student-kolya", "student", False)
    assert refused.value.code == "invitation-not-usable"


def test_expired_invitation_cannot_be_redeemed_or_annulled() -> None:
    invitation = issue()
    invitation.expire(at(timedelta(days=8), "scheduler", "system"), False)
    assert invitation.status == "expired"
    with pytest.raises(DomainError) as refused:
        invitation.redeem(at(timedelta(days=1)), "student-kolya", "student", False)
    assert refused.value.code == "invitation-not-usable"
    with pytest.raises(DomainError) as refused:
        invitation.annul(at(timedelta(days=9), "adm", "administrator"), True, "безопасность")
    assert refused.value.code == "invitation-not-usable"


def test_redeemed_invitation_cannot_be_annulled_or_expired() -> None:
    invitation = issue()
    invitation.redeem(at(timedelta(hours=1)), "student-kolya", "student", False)
    with pytest.raises(DomainError) as refused:
        invitation.annul(at(timedelta(hours=2), "adm", "administrator"), True, "безопасность")
    assert refused.value.code == "invitation-not-usable"
    with pytest.raises(DomainError) as refused:
        invitation.expire(at(timedelta(days=8), "scheduler", "system"), False)
    assert refused.value.code == "invitation-not-usable"
    assert invitation.status == "redeemed"


def test_invitation_is_not_expired_before_its_time() -> None:
    invitation = issue()
    with pytest.raises(DomainError) as refused:
        invitation.expire(at(timedelta(days=6), "scheduler", "system"), False)
    assert refused.value.code == "invitation-not-yet-expired"


@pytest.mark.parametrize(
    ("actor", "role", "is_admin"),
    [
        ("teacher-ivanova", "teacher", False),
        ("adm", "teacher", True),
        ("x", "administrator", False),
    ],
    ids=["teacher", "admin-acting-as-teacher", "claims-admin"],
)
def test_only_a_platform_administrator_annuls_invitations(
    actor: str, role: str, is_admin: bool
) -> None:
    invitation = issue()
    with pytest.raises(DomainError) as refused:
        invitation.annul(at(timedelta(hours=1), actor, role), is_admin, "безопасность")
    assert refused.value.code == "actor-not-permitted"
    assert invitation.status == "issued"


@pytest.mark.parametrize(
    ("actor", "role", "is_admin"), [("t", "teacher", False), ("x", "administrator", False)]
)
def test_only_the_system_or_an_administrator_expires_invitations(actor, role, is_admin) -> None:
    invitation = issue()
    with pytest.raises(DomainError) as refused:
        invitation.expire(at(timedelta(days=8), actor, role), is_admin)
    assert refused.value.code == "actor-not-permitted"


@pytest.mark.parametrize("reason", ["", "  ", "x" * 1001])
def test_annulment_needs_a_reason(reason: str) -> None:
    invitation = issue()
    with pytest.raises(DomainError) as refused:
        invitation.annul(at(timedelta(hours=1), "adm", "administrator"), True, reason)
    assert refused.value.code == "invalid-value"


@pytest.mark.parametrize(
    ("actor", "role", "authorities"),
    [
        (TEACHER, "teacher", frozenset({"2.4"})),
        (CLASS_TEACHER_5A, "class-teacher", frozenset({"2.5"})),
    ],
)
def test_teachers_issue_invitations_to_chats_they_control(actor, role, authorities) -> None:
    invitation = issue(actor, role, authorities, invited_role="parent")
    assert (invitation.role, invitation.issuer_id, invitation.status) == (
        "parent",
        actor.person_id,
        "issued",
    )


@pytest.mark.parametrize(
    ("actor", "role", "authorities", "invited_role"),
    [
        (TEACHER, "teacher", frozenset(), "student"),
        (TEACHER, "teacher", frozenset({"2.4"}), "administrator"),
        (STUDENT, "student", frozenset(), "student"),
        (TEACHER, "administrator", frozenset({"2.4"}), "student"),
    ],
    ids=["not-under-control", "admin-role-by-teacher", "student", "non-admin-claiming-admin"],
)
def test_issuing_invitations_is_refused_to_others(actor, role, authorities, invited_role) -> None:
    with pytest.raises(DomainError) as refused:
        issue(actor, role, authorities, invited_role=invited_role)
    assert refused.value.code == "may-not-issue-invitation"


@pytest.mark.parametrize("expires_at", [T0, T0 - timedelta(minutes=1), datetime(2024, 12, 1)])
def test_invitation_expires_after_it_is_issued_and_timezone_aware(expires_at: datetime) -> None:
    with pytest.raises(DomainError) as refused:
        issue(expires_at=expires_at)
    assert refused.value.code == "invalid-value"
