"""ElZhur account links: one account belongs to at most one profile, a profile has one link."""

from __future__ import annotations

from sferum_app_builder import ADMIN, PARENT, STUDENT, STUDENT_6B, SchoolBuilder


def link(school: SchoolBuilder, who, account: str, actor=None):
    return school.send("link-account", actor or who, profile_id=who.id, elzhur_account_id=account)


def test_profile_links_an_account_and_the_account_names_its_holder(school: SchoolBuilder) -> None:
    result = link(school, STUDENT, "elz-100")
    assert result.status == "recorded"
    assert school.event_types(result) == ["Profile.AccountLinked", "ElzhurAccount.FirstClaimed"]
    assert school.profile(STUDENT.id).elzhur_account_id == "elz-100"
    assert school.account("elz-100").holder == STUDENT.id


def test_an_account_linked_to_one_profile_cannot_be_linked_to_a_second(
    school: SchoolBuilder,
) -> None:
    assert link(school, STUDENT, "elz-100").status == "recorded"
    code = school.refused(
        "link-account", STUDENT_6B, profile_id=STUDENT_6B.id, elzhur_account_id="elz-100"
    )
    assert code == "account-held-by-another-profile"
    code = school.refused(
        "link-account", ADMIN, profile_id=STUDENT_6B.id, elzhur_account_id="elz-100"
    )
    assert code == "account-held-by-another-profile"
    assert school.profile(STUDENT_6B.id).elzhur_account_id is None
    assert school.account("elz-100").holder == STUDENT.id


def test_after_unlink_the_account_can_be_linked_elsewhere(school: SchoolBuilder) -> None:
    link(school, STUDENT, "elz-100")
    result = school.ok("unlink-account", STUDENT, profile_id=STUDENT.id, reason="чужой аккаунт")
    assert school.event_types(result) == ["Profile.AccountUnlinked", "ElzhurAccount.Released"]
    assert school.account("elz-100").holder is None
    result = link(school, STUDENT_6B, "elz-100")
    assert result.status == "recorded"
    assert school.event_types(result) == ["Profile.AccountLinked", "ElzhurAccount.Claimed"]
    assert school.account("elz-100").holder == STUDENT_6B.id
    assert school.profile(STUDENT.id).elzhur_account_id is None


def test_a_profile_has_at_most_one_link(school: SchoolBuilder) -> None:
    link(school, STUDENT, "elz-100")
    code = school.refused(
        "link-account", STUDENT, profile_id=STUDENT.id, elzhur_account_id="elz-200"
    )
    assert code == "profile-already-linked"
    code = school.refused(
        "link-account", STUDENT, profile_id=STUDENT.id, elzhur_account_id="elz-100"
    )
    assert code == "profile-already-linked"
    assert school.profile(STUDENT.id).elzhur_account_id == "elz-100"


def test_a_refused_link_does_not_claim_the_new_account(school: SchoolBuilder) -> None:
    link(school, STUDENT, "elz-100")
    school.refused("link-account", STUDENT, profile_id=STUDENT.id, elzhur_account_id="elz-200")
    assert link(school, STUDENT_6B, "elz-200").status == "recorded"


def test_only_the_holder_or_an_administrator_links_or_unlinks_a_profile(
    school: SchoolBuilder,
) -> None:
    assert (
        school.refused("link-account", PARENT, profile_id=STUDENT.id, elzhur_account_id="elz-100")
        == "not-profile-holder"
    )
    assert link(school, STUDENT, "elz-100", actor=ADMIN).status == "recorded"
    assert (
        school.refused("unlink-account", STUDENT_6B, profile_id=STUDENT.id, reason="хочу")
        == "not-profile-holder"
    )
    school.ok("unlink-account", ADMIN, profile_id=STUDENT.id, reason="по заявлению")


def test_unlinking_a_profile_without_a_link_is_refused(school: SchoolBuilder) -> None:
    assert (
        school.refused("unlink-account", STUDENT, profile_id=STUDENT.id, reason="зачем-то")
        == "profile-not-linked"
    )


def test_linking_a_profile_of_another_school_is_refused(school: SchoolBuilder) -> None:
    assert (
        school.refused("link-account", ADMIN, profile_id="nobody", elzhur_account_id="elz-100")
        == "invalid-value"
    )
