"""A command source: who may register it, and what it may vouch for."""

from __future__ import annotations

import base64

import pytest
from domain_factories import SCHOOL, ctx

from sferum_audit.domain.errors import InvalidValue
from sferum_audit.domain.source import (
    ActorNotVouched,
    NotSourceRegistrar,
    Source,
    SourceAlreadyRevoked,
    SourceRevoked,
    SourceWrongSchool,
)

KEY = base64.b64encode(bytes(range(32))).decode()
OTHER_KEY = base64.b64encode(bytes(range(1, 33))).decode()


def source(kind: str = "integration", person_id: str | None = None) -> Source:
    return Source.register(
        ctx("director", "school-administration"),
        school_id=SCHOOL,
        source_id="elzhur/school-58",
        kind=kind,
        person_id=person_id,
        public_key=KEY,
        registrar_is_administrator=False,
    )


def test_the_administration_or_an_administrator_of_the_school_registers_a_source() -> None:
    by_admin = Source.register(
        ctx("adm", "administrator"),
        school_id=SCHOOL,
        source_id="s",
        kind="integration",
        person_id=None,
        public_key=KEY,
        registrar_is_administrator=True,
    )

    assert source().public_key == KEY
    assert by_admin.school_id == SCHOOL


@pytest.mark.parametrize(
    ("role", "is_administrator"),
    [("administrator", False), ("teacher", False), ("class-teacher", True), ("system", False)],
)
def test_nobody_else_registers_a_source(role: str, is_administrator: bool) -> None:
    with pytest.raises(NotSourceRegistrar):
        Source.register(
            ctx("someone", role),
            school_id=SCHOOL,
            source_id="s",
            kind="integration",
            person_id=None,
            public_key=KEY,
            registrar_is_administrator=is_administrator,
        )


@pytest.mark.parametrize(
    "key",
    ["not base64!", base64.b64encode(b"short").decode(), base64.b64encode(b"x" * 33).decode()],
)
def test_a_key_that_is_not_32_bytes_of_base64_is_refused(key: str) -> None:
    with pytest.raises(InvalidValue):
        Source.register(
            ctx("director", "school-administration"),
            school_id=SCHOOL,
            source_id="s",
            kind="integration",
            person_id=None,
            public_key=key,
            registrar_is_administrator=False,
        )


def test_a_persons_source_names_the_person_and_an_integration_none() -> None:
    with pytest.raises(InvalidValue):
        source(kind="person")
    with pytest.raises(InvalidValue):
        source(kind="integration", person_id="t-1")


def test_an_integration_vouches_for_any_actor_of_its_school_only() -> None:
    integration = source()

    integration.check_may_assert(SCHOOL, "anyone")
    with pytest.raises(SourceWrongSchool):
        integration.check_may_assert("school-99", "anyone")


def test_a_persons_source_vouches_only_for_that_person() -> None:
    own = source(kind="person", person_id="t-1")

    own.check_may_assert(SCHOOL, "t-1")
    with pytest.raises(ActorNotVouched):
        own.check_may_assert(SCHOOL, "t-2")


def test_rotation_replaces_the_key_and_revocation_ends_the_source() -> None:
    s = source()
    s.rotate(ctx("director", "school-administration"), OTHER_KEY, False)
    s.revoke(ctx("adm", "administrator"), "leaked", True)

    assert s.public_key == OTHER_KEY
    with pytest.raises(SourceRevoked):
        s.check_active()
    with pytest.raises(SourceAlreadyRevoked):
        s.revoke(ctx("director", "school-administration"), "again", False)
    with pytest.raises(SourceRevoked):
        s.rotate(ctx("director", "school-administration"), KEY, False)
    assert [type(e).__name__ for e in s.collect_events()] == ["Registered", "Rotated", "Revoked"]
