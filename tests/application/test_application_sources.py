"""Only registered sources write, each only for its own school and the actors it may assert.

Every attack of issue 9 against the application layer, on SQLite and PostgreSQL: each is
refused with its own code and records nothing; an accepted command's events name their
source.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sferum_app_builder import ADMIN, CLASS_TEACHER, DIRECTOR, STUDENT, TEACHER, SchoolBuilder

from sferum_audit.application.authentication import (
    OPERATOR_SOURCE,
    Signature,
    key_id,
    public_key_text,
    sign,
    vouched_command,
)
from sferum_audit.application.local_sources import operator_key
from sferum_audit.application.service import AuditLog, CommandResult
from sferum_audit.application.settings import Settings


class Signer:
    """A source's key and id, and how a publisher sends a command with it."""

    def __init__(self, source_id: str, key: Ed25519PrivateKey | None = None) -> None:
        self.source_id = source_id
        self.key = key or Ed25519PrivateKey.generate()

    @property
    def public_key(self) -> str:
        return public_key_text(self.key.public_key())

    def send(
        self,
        app: AuditLog,
        data: dict[str, Any],
        *,
        signed_at: datetime | None = None,
        received_at: datetime | None = None,
    ) -> CommandResult:
        body = json.dumps(data).encode()
        now = datetime.now(UTC)
        signature = sign(self.source_id, self.key, body, signed_at or now)
        return app.handle(vouched_command(body, signature, received_at or now))


def refused(app: AuditLog, send: Any) -> str:
    """Runs ``send``; it must be refused and record nothing. Returns the error code."""
    before = app.recorder.max_notification_id()
    result: CommandResult = send()
    assert result.status == "rejected", result
    assert app.recorder.max_notification_id() == before
    assert result.error_code is not None
    return result.error_code


def removal(school: SchoolBuilder, actor: Any = CLASS_TEACHER) -> dict[str, Any]:
    return school.raw(
        "remove-content",
        actor,
        chat_id="class-5a",
        authority="2.5",
        ground="4.2.4",
        message_id="msg-1",
        author_id=STUDENT.id,
        reason="оскорбление",
    )


@pytest.fixture
def operator(settings: Settings) -> Signer:
    """The deployment operator's key the audit log under test trusts."""
    return Signer(OPERATOR_SOURCE, operator_key(settings))


@pytest.fixture
def integration(school: SchoolBuilder, operator: Signer) -> Signer:
    """The school's integration source, registered by the operator for the administration."""
    signer = Signer(f"elzhur/{school.school_id}")
    register = school.raw(
        "register-source",
        DIRECTOR,
        source_id=signer.source_id,
        kind="integration",
        public_key=signer.public_key,
    )
    assert operator.send(school.app, register).status == "recorded"
    return signer


def source_of_events(school: SchoolBuilder, result: CommandResult) -> set[str | None]:
    return {event.ctx.source_id for event in school.events_of(result)}


def test_a_command_signed_by_the_schools_integration_is_recorded_naming_its_source(
    school: SchoolBuilder, integration: Signer
) -> None:
    result = integration.send(school.app, removal(school))

    assert result.status == "recorded", result
    assert source_of_events(school, result) == {integration.source_id}


def test_an_unsigned_command_is_refused(school: SchoolBuilder) -> None:
    body = json.dumps(removal(school)).encode()

    code = refused(
        school.app, lambda: school.app.handle(vouched_command(body, None, datetime.now(UTC)))
    )

    assert code == "signature-missing"


def test_a_command_signed_by_an_unknown_source_is_refused(school: SchoolBuilder) -> None:
    stranger = Signer(f"elzhur/{school.school_id}")

    assert refused(school.app, lambda: stranger.send(school.app, removal(school))) == (
        "source-unknown"
    )


def test_a_revoked_source_writes_nothing_more(
    school: SchoolBuilder, integration: Signer, operator: Signer
) -> None:
    revoke = school.raw("revoke-source", ADMIN, source_id=integration.source_id, reason="ключ утёк")
    assert operator.send(school.app, revoke).status == "recorded"

    code = refused(school.app, lambda: integration.send(school.app, removal(school)))

    assert code == "source-revoked"


def test_a_signature_older_than_the_replay_window_is_refused(
    school: SchoolBuilder, integration: Signer
) -> None:
    now = datetime.now(UTC)
    late = now - timedelta(minutes=6)

    code = refused(
        school.app,
        lambda: integration.send(school.app, removal(school), signed_at=late, received_at=now),
    )

    assert code == "signature-expired"


def test_a_signature_inside_the_window_is_accepted_even_if_processed_later(
    school: SchoolBuilder, integration: Signer
) -> None:
    """The window is measured to when the message reached the service (JetStream's time),
    so a backlog does not expire."""
    received = datetime.now(UTC) - timedelta(hours=2)

    result = integration.send(school.app, removal(school), signed_at=received, received_at=received)

    assert result.status == "recorded", result


def test_a_signature_over_other_bytes_is_refused(
    school: SchoolBuilder, integration: Signer
) -> None:
    signed = json.dumps(removal(school)).encode()
    forged = json.dumps(removal(school, actor=ADMIN)).encode()
    signature = sign(integration.source_id, integration.key, signed, datetime.now(UTC))

    code = refused(
        school.app,
        lambda: school.app.handle(vouched_command(forged, signature, datetime.now(UTC))),
    )

    assert code == "signature-invalid"


def test_a_source_cannot_write_for_another_school(
    app: AuditLog, school: SchoolBuilder, integration: Signer, unique: str
) -> None:
    other = SchoolBuilder(app, unique + "-other")
    other.ok("register-school", DIRECTOR, name="Школа", order_ref="2/1", first_administrator_id="a")

    code = refused(app, lambda: integration.send(app, removal(other)))

    assert code == "source-wrong-school"


def test_a_persons_own_key_vouches_only_for_that_person(
    school: SchoolBuilder, integration: Signer
) -> None:
    own = Signer(f"person/{CLASS_TEACHER.id}")
    register = school.raw(
        "register-source",
        ADMIN,
        source_id=own.source_id,
        kind="person",
        person_id=CLASS_TEACHER.id,
        public_key=own.public_key,
    )
    assert integration.send(school.app, register).status == "recorded"

    code = refused(school.app, lambda: own.send(school.app, removal(school, actor=ADMIN)))
    recorded = own.send(school.app, removal(school))

    assert code == "actor-not-vouched"
    assert recorded.status == "recorded"
    assert source_of_events(school, recorded) == {own.source_id}


def test_registering_a_school_needs_the_operators_signature(
    app: AuditLog, integration: Signer, operator: Signer, unique: str
) -> None:
    new = SchoolBuilder(app, unique + "-new")
    data = new.raw(
        "register-school", DIRECTOR, name="Школа", order_ref="1/1", first_administrator_id="x"
    )
    impostor = Signer(OPERATOR_SOURCE)

    by_source = refused(app, lambda: integration.send(app, data))
    by_impostor = refused(app, lambda: impostor.send(app, data))
    by_operator = operator.send(app, data)

    assert (by_source, by_impostor) == ("operator-signature-required", "signature-invalid")
    assert by_operator.status == "recorded"
    assert source_of_events(new, by_operator) == {f"operator:{key_id(operator.public_key)}"}


def test_the_operators_key_vouches_for_nothing_but_schools_and_sources(
    school: SchoolBuilder, operator: Signer
) -> None:
    code = refused(school.app, lambda: operator.send(school.app, removal(school)))

    assert code == "operator-not-allowed"


def test_after_a_rotation_only_the_new_key_signs(
    school: SchoolBuilder, integration: Signer
) -> None:
    new_key = Ed25519PrivateKey.generate()
    rotate = school.raw(
        "rotate-source",
        ADMIN,
        source_id=integration.source_id,
        public_key=public_key_text(new_key.public_key()),
    )
    assert integration.send(school.app, rotate).status == "recorded"

    old = refused(school.app, lambda: integration.send(school.app, removal(school)))
    rotated = Signer(integration.source_id, new_key).send(school.app, removal(school))

    assert old == "signature-invalid"
    assert rotated.status == "recorded"


def test_only_the_administration_or_an_administrator_manages_sources(
    school: SchoolBuilder, integration: Signer
) -> None:
    register = school.raw(
        "register-source",
        TEACHER,
        source_id="teachers-own",
        kind="integration",
        public_key=Signer("x").public_key,
    )

    result = integration.send(school.app, register)  # a rule's refusal: only its receipt

    assert (result.status, result.error_code) == ("rejected", "not-source-registrar")
    assert school.app.source("teachers-own") is None


def test_a_revocation_earlier_in_a_batch_stops_the_commands_after_it(
    school: SchoolBuilder, integration: Signer, operator: Signer
) -> None:
    def vouched(signer: Signer, data: dict[str, Any]) -> Any:
        body = json.dumps(data).encode()
        now = datetime.now(UTC)
        return vouched_command(body, sign(signer.source_id, signer.key, body, now), now)

    before = vouched(integration, removal(school))
    revoke = vouched(
        operator, school.raw("revoke-source", ADMIN, source_id=integration.source_id, reason="r")
    )
    after = vouched(integration, removal(school))

    results = school.app.handle_batch([before, revoke, after])

    assert [r.status for r in results] == ["recorded", "recorded", "rejected"]
    assert results[2].error_code == "source-revoked"


def test_partial_or_malformed_signature_values_are_refused(
    school: SchoolBuilder, integration: Signer
) -> None:
    body = json.dumps(removal(school)).encode()
    now = datetime.now(UTC)
    cases = [
        Signature(integration.source_id, "", "AAAA"),
        Signature(integration.source_id, "yesterday", "AAAA"),
        Signature(integration.source_id, str(int(now.timestamp())), "not base64!"),
        Signature("", str(int(now.timestamp())), "AAAA"),
    ]

    codes = {
        refused(school.app, lambda s=s: school.app.handle(vouched_command(body, s, now)))
        for s in cases
    }

    assert codes == {"signature-invalid"}


def test_contexts_without_a_source_keep_the_stored_form_from_before_sources() -> None:
    """Events stored before sources existed read back with no source, and trusted
    in-process commands store exactly the bytes they stored before."""
    from sferum_audit.application.store import CommandContextAsDict
    from sferum_audit.domain.context import CommandContext

    old_stored = {
        "actor_id": "adm",
        "actor_role": "administrator",
        "occurred_at": datetime(2024, 12, 2, tzinfo=UTC),
        "command_id": "c-1",
        "correlation_id": "c-1",
        "causation_id": None,
    }
    transcoding = CommandContextAsDict()

    decoded = transcoding.decode(dict(old_stored))

    assert decoded.source_id is None
    assert transcoding.encode(decoded) == old_stored
    signed = CommandContext(**old_stored, source_id="elzhur/s")
    assert transcoding.encode(signed) == old_stored | {"source_id": "elzhur/s"}


def test_a_forged_command_leaves_no_receipt_so_its_id_stays_free_for_the_genuine_one(
    school: SchoolBuilder, integration: Signer
) -> None:
    genuine = removal(school)
    squatter = Signer(integration.source_id)  # a stranger's key under the real source's id

    forged = refused(school.app, lambda: squatter.send(school.app, dict(genuine, reason="x")))
    recorded = integration.send(school.app, genuine)

    assert forged == "signature-invalid"
    assert recorded.status == "recorded", recorded
