"""Profiles and ElZhur account links: one account per profile, one profile per account."""

from __future__ import annotations

import pytest
from domain_factories import ctx

from sferum_audit.domain.elzhur_account import ElzhurAccount
from sferum_audit.domain.errors import DomainError
from sferum_audit.domain.profile import Profile


def profile(profile_id: str = "student-kolya", role: str = "student", children=()) -> Profile:
    return Profile.register(
        ctx(profile_id, role), profile_id, "school-58", role, "Коля", list(children)
    )


def test_profile_links_one_account_and_must_unlink_before_another() -> None:
    kolya = profile()
    kolya.link_account(ctx("student-kolya", "student"), "elz-1", False)
    with pytest.raises(DomainError) as refused:
        kolya.link_account(ctx("student-kolya", "student"), "elz-2", False)
    assert refused.value.code == "profile-already-linked"
    assert kolya.unlink_account(ctx("student-kolya", "student"), "сменил аккаунт", False) == "elz-1"
    kolya.link_account(ctx("student-kolya", "student"), "elz-2", False)
    assert kolya.elzhur_account_id == "elz-2"


def test_unlinking_a_profile_without_a_link_is_refused() -> None:
    with pytest.raises(DomainError) as refused:
        profile().unlink_account(ctx("student-kolya", "student"), "просто так", False)
    assert refused.value.code == "profile-not-linked"


def test_only_the_holder_or_an_administrator_links_a_profile() -> None:
    kolya = profile()
    with pytest.raises(DomainError) as refused:
        kolya.link_account(ctx("student-petya", "student"), "elz-1", False)
    assert refused.value.code == "not-profile-holder"
    kolya.link_account(ctx("adm", "administrator"), "elz-1", True)
    assert kolya.elzhur_account_id == "elz-1"


def test_account_held_by_one_profile_refuses_another_until_released() -> None:
    account = ElzhurAccount(ctx=ctx("a", "student"), elzhur_account_id="elz-1", profile_id="a")
    account.check_free_for("a", account.changed_at)
    with pytest.raises(DomainError) as refused:
        account.claim(ctx("b", "student"), "b")
    assert refused.value.code == "account-held-by-another-profile"
    assert account.holder == "a"
    account.release(ctx("a", "student"))
    account.claim(ctx("b", "student"), "b")
    assert account.holder == "b"


def test_only_a_parent_profile_names_children() -> None:
    with pytest.raises(DomainError) as refused:
        profile("t", "teacher", children=["student-kolya"])
    assert refused.value.code == "domain-error"
    olga = profile("parent-olga", "parent", children=["student-kolya", "student-kolya"])
    assert olga.children == ["student-kolya"]
    assert olga.is_parent_of("student-kolya")
    assert not olga.is_parent_of("student-petya")


@pytest.mark.parametrize("role", ["administrator", "director", ""])
def test_unknown_profile_role_is_refused(role: str) -> None:
    with pytest.raises(DomainError) as refused:
        Profile.register(ctx("x", "student"), "x", "school-58", role, "X", [])
    assert refused.value.code == "invalid-value"
