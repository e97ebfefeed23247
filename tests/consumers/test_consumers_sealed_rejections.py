"""Refused payloads are sealed under the keys of the people they name (and of the rejection
itself): forgetting any one of them makes the payload unreadable, while the reason for the
refusal stays readable. On SQLite and PostgreSQL, through the ingest's own processor.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from eventsourcing.persistence import Mapper
from faststream.nats.testing import build_message
from source_signing import provision_local_source, signed_headers

from sferum_audit.application.bootstrap import build_audit_log
from sferum_audit.application.commands import (
    PERSON_ID_FIELDS,
    PERSON_LIST_FIELDS,
    CommandBase,
    ContentAction,
    ErasePersonalData,
    parse_command,
)
from sferum_audit.application.erasure import (
    ErasureOutcome,
    UnknownRejection,
    erase,
    erase_rejected_payload,
    rejection_at,
)
from sferum_audit.application.rejections import (
    MAX_NAMED_PERSONS,
    PayloadNotErasable,
    RejectedCommand,
    named_persons,
    system_context,
)
from sferum_audit.application.service import AuditLog
from sferum_audit.application.settings import Settings
from sferum_audit.consumers.ingest import IngestProcessor
from sferum_audit.consumers.rejected import rejected_commands
from sferum_audit.consumers.settings import PipelineSettings
from sferum_audit.domain.erasure import ErasureNotPermitted
from sferum_audit.domain.personal_data import ERASED

OCCURRED = "2024-12-02T08:00:00+00:00"


class NoTransport:
    async def reply(self, subject: str, payload: bytes, headers: dict[str, str]) -> None:
        return None

    async def dead_letter(self, subject: str, payload: bytes, headers: dict[str, str]) -> None:
        raise AssertionError("no dead letters expected")


class School:
    """A school with an administrator and three pupils, recorded through the service."""

    def __init__(self, app: AuditLog, unique: str) -> None:
        self.app = app
        self.id = f"s-{unique}"
        self.admin = f"adm-{unique}"
        self.pupils = [f"p{i}-{unique}" for i in range(3)]
        self._counter = 0
        commands = [
            self.command(
                "register-school",
                f"dir-{unique}",
                "school-administration",
                name="School",
                order_ref="No. 1",
                first_administrator_id=self.admin,
            ),
            *(
                self.command(
                    "register-profile",
                    pupil,
                    "student",
                    profile_id=pupil,
                    role="student",
                    display_name=f"Ученик {pupil}",
                )
                for pupil in self.pupils
            ),
        ]
        results = app.handle_batch([parse_command(c) for c in commands])
        assert all(r.accepted for r in results), [r.as_dict() for r in results]

    def command(self, kind: str, actor: str, actor_role: str, /, **fields: Any) -> dict[str, Any]:
        self._counter += 1
        return {
            "command_id": f"{self.id}-{self._counter}-{kind}",
            "type": kind,
            "school_id": self.id,
            "actor": {"id": actor, "role": actor_role},
            "occurred_at": OCCURRED,
            **fields,
        }

    def removal_by_a_pupil(self, actor: str, author: str, excerpt: str) -> dict[str, Any]:
        """A removal a pupil may not make (and in a chat that does not exist): refused."""
        return self.command(
            "remove-content",
            actor,
            "student",
            chat_id="no-such-chat",
            authority="2.5",
            ground="4.2.4",
            message_id="m-1",
            author_id=author,
            reason="breaks the rules",
            excerpt=excerpt,
        )

    def forget(self, person: str) -> ErasureOutcome:
        command = parse_command(
            self.command(
                "erase-personal-data",
                self.admin,
                "administrator",
                erasure_id=f"er-{person}",
                subject_id=person,
                requested_by=person,
                basis="request No. 1",
            )
        )
        assert isinstance(command, ErasePersonalData)
        outcome = erase(self.app, command)
        assert outcome.result.accepted, outcome.result.as_dict()
        return outcome


async def refuse(app: AuditLog, school_id: str, *payloads: dict[str, Any] | bytes) -> list[int]:
    """Runs the payloads through the ingest as one batch; all must be refused. Returns the
    log positions of their records, in order."""
    before = {row["position"] for row in rejected_commands(app)}
    messages = []
    for payload in payloads:
        if isinstance(payload, dict):
            data = json.dumps(payload, ensure_ascii=False).encode()
            subject = f"sferum.ingest.0.{payload['school_id']}.{payload['type']}"
        else:
            data, subject = payload, f"sferum.ingest.0.{school_id}.remove-content"
        messages.append(await build_message(data, subject))
    options = PipelineSettings(instance_id="sealed", metrics_port=None)
    report = await IngestProcessor(app, options, NoTransport()).process(messages)
    assert report.rejected == len(payloads), report
    return [row["position"] for row in rejected_commands(app) if row["position"] not in before]


def rows_by_position(app: AuditLog) -> dict[int, dict[str, Any]]:
    return {row["position"]: row for row in rejected_commands(app)}


# -- who a payload names ------------------------------------------------------------------------


def test_a_payload_names_its_actor_its_person_fields_and_children() -> None:
    payload = {
        "actor": {"id": "a-1", "role": "parent"},
        "author_id": "b-2",
        "subject_id": "c-3",
        "children": ["d-4", "not an id", 7, "e-5\n"],
        "chat_id": "chat-9",
        "profile_id": "x" * 201,
    }
    assert named_persons(json.dumps(payload).encode()) == ["a-1", "b-2", "c-3", "d-4"]


@pytest.mark.parametrize(
    "data",
    [
        b"{not json",
        b"\xff\xfe\x00",
        b'["a-1"]',
        b'{"actor": "a-1"}',
        b'{"actor": {"id": "system"}}',
    ],
)
def test_a_payload_that_is_not_a_command_shaped_object_names_nobody(data: bytes) -> None:
    assert named_persons(data) == []


def test_every_listed_person_field_is_a_field_of_some_command() -> None:
    command_fields = {
        name
        for model in CommandBase.__subclasses__() + ContentAction.__subclasses__()
        for name in model.model_fields
    }
    assert set(PERSON_ID_FIELDS) | set(PERSON_LIST_FIELDS) <= command_fields


# -- sealing and erasure ----------------------------------------------------------------------


async def test_a_kept_payload_is_not_stored_in_plain_text_and_reads_back_whole(
    app: AuditLog, unique: str
) -> None:
    school = School(app, unique)
    excerpt = f"Секретный текст {unique}"
    refused = school.removal_by_a_pupil(school.pupils[0], school.pupils[1], excerpt)
    [position] = await refuse(app, school.id, refused)

    [stored] = app.recorder.select_notifications(position, 1, stop=position)
    assert excerpt.encode() not in stored.state
    assert json.dumps(excerpt)[1:-1].encode() not in stored.state
    row = rows_by_position(app)[position]
    assert json.loads(row["payload"]) == refused
    assert row["payload_state"] == "readable"
    assert row["named_persons"] == sorted(school.pupils[:2])
    assert row["error_code"] not in (None, "")
    assert row["command_id"] == refused["command_id"]


@pytest.mark.parametrize("who", ["actor", "author"])
async def test_forgetting_any_person_a_payload_names_makes_it_unreadable(
    settings: Settings, app: AuditLog, unique: str, who: str
) -> None:
    school = School(app, unique)
    actor, author, other = school.pupils
    naming = school.removal_by_a_pupil(actor, author, f"про {author}")
    not_naming = school.removal_by_a_pupil(other, other, f"про {other}")
    first, second = await refuse(app, school.id, naming, not_naming)
    reason_before = rows_by_position(app)[first]["error_message"]

    outcome = school.forget(actor if who == "actor" else author)

    assert outcome.rejected_payloads == (first,)
    rows = rows_by_position(app)
    assert rows[first]["payload"] == ERASED
    assert rows[first]["payload_state"] == "erased"
    assert rows[first]["error_message"] == reason_before, "the reason stays readable"
    assert rows[first]["command_id"] == naming["command_id"]
    assert rows[first]["school_id"] == school.id
    assert json.loads(rows[second]["payload"]) == not_naming
    reader = build_audit_log(settings)  # another process: reads the keys afresh
    try:
        assert rows_by_position(reader)[first]["payload_state"] == "erased"
        assert rows_by_position(reader)[second]["payload_state"] == "readable"
    finally:
        reader.close()


async def test_a_payload_naming_someone_forgotten_already_is_kept_erased(
    app: AuditLog, unique: str
) -> None:
    school = School(app, unique)
    gone, present = school.pupils[:2]
    school.forget(gone)
    excerpt = f"о забытом {unique}"
    [position] = await refuse(app, school.id, school.removal_by_a_pupil(present, gone, excerpt))

    [stored] = app.recorder.select_notifications(position, 1, stop=position)
    assert json.dumps(excerpt)[1:-1].encode() not in stored.state
    assert excerpt.encode() not in stored.state
    row = rows_by_position(app)[position]
    assert (row["payload"], row["payload_state"]) == (ERASED, "erased")
    assert row["named_persons"] == sorted([gone, present])


async def test_bytes_that_are_not_json_stay_readable_until_the_rejection_itself_is_erased(
    app: AuditLog, unique: str
) -> None:
    school = School(app, unique)
    text = f"Иванов Петя {unique} {{broken".encode()
    binary = b"\xff\xfe" + unique.encode()
    as_text, as_binary = await refuse(app, school.id, text, binary)
    rows = rows_by_position(app)
    assert (rows[as_text]["payload"].encode(), rows[as_text]["payload_state"]) == (
        text,
        "readable",
    )
    assert rows[as_binary]["payload_encoding"] == "base64"
    assert rows[as_binary]["payload_state"] == "readable"
    assert rows[as_text]["named_persons"] == []

    school.forget(school.pupils[0])  # names nobody: a person's erasure does not touch it
    assert rows_by_position(app)[as_text]["payload_state"] == "readable"

    rejection = rejection_at(app, as_text)
    done = erase_rejected_payload(app, rejection, by=school.admin, basis="holds a name")
    again = erase_rejected_payload(app, rejection, by=school.admin, basis="holds a name")

    assert done.key_destroyed_now
    assert done.position is not None
    assert not again.key_destroyed_now
    assert again.position is None, "the erasure is recorded once"
    rows = rows_by_position(app)
    assert (rows[as_text]["payload"], rows[as_text]["payload_state"]) == (ERASED, "erased")
    assert rows[as_text]["error_code"] == "invalid-json"
    assert rows[as_binary]["payload_state"] == "readable"
    [recorded] = app.recorder.select_notifications(done.position, 1, stop=done.position)
    assert recorded.topic.endswith("RejectedCommand.PayloadErased")
    erased: Any = app.mapper.to_domain_event(recorded)
    assert erased.ctx.actor_id == school.admin
    assert erased.basis == "holds a name"


async def test_only_an_administrator_of_the_rejections_school_erases_its_payload(
    app: AuditLog, unique: str
) -> None:
    school = School(app, unique)
    [position] = await refuse(app, school.id, b"{broken")
    with pytest.raises(ErasureNotPermitted):
        erase_rejected_payload(
            app, rejection_at(app, position), by=school.pupils[0], basis="not mine to erase"
        )
    assert rows_by_position(app)[position]["payload_state"] == "readable"


async def test_a_position_without_a_rejection_is_refused(app: AuditLog, unique: str) -> None:
    School(app, unique)
    with pytest.raises(UnknownRejection):
        rejection_at(app, 1)


async def test_a_payload_naming_more_people_than_any_command_can_is_kept_erased(
    app: AuditLog, unique: str
) -> None:
    school = School(app, unique)
    many = {
        **school.removal_by_a_pupil(school.pupils[0], school.pupils[1], "x"),
        "type": "register-profile",
        "children": [f"c{i}-{unique}" for i in range(MAX_NAMED_PERSONS + 1)],
    }
    [position] = await refuse(app, school.id, many)
    assert rows_by_position(app)[position]["payload_state"] == "erased"


def test_a_rejection_kept_in_plain_text_shows_as_plain_and_cannot_be_erased(
    app: AuditLog, unique: str
) -> None:
    legacy = RejectedCommand(
        ctx=system_context(f"legacy/{unique}", datetime.now(UTC)),
        delivery_key=f"legacy/{unique}",
        school_id=None,
        command_type=None,
        command_id=None,
        subject="sferum.ingest.0._._",
        error_code="invalid-json",
        error_message="not valid JSON",
        payload="{kept before sealing",
        payload_encoding="utf-8",
    )
    position = app.save(legacy)[-1].notification.id
    row = rows_by_position(app)[position]
    assert (row["payload"], row["payload_state"]) == ("{kept before sealing", "plain")
    with pytest.raises(PayloadNotErasable):
        erase_rejected_payload(app, legacy.id, by="anyone", basis="too late")


async def test_an_erasure_arriving_over_the_ingest_erases_the_payloads_naming_the_person(
    app: AuditLog, settings: Settings, unique: str
) -> None:
    school = School(app, unique)
    actor, author, other = school.pupils
    first, second = await refuse(
        app,
        school.id,
        school.removal_by_a_pupil(actor, author, "о нём"),
        school.removal_by_a_pupil(other, other, "о другом"),
    )
    erasure = school.command(
        "erase-personal-data",
        school.admin,
        "administrator",
        erasure_id=f"er-{unique}",
        subject_id=author,
        requested_by=author,
        basis="request No. 2",
    )
    payload = json.dumps(erasure).encode()
    signer = provision_local_source(app, settings, school.id)
    message = await build_message(
        payload,
        f"sferum.ingest.0.{school.id}.erase-personal-data",
        headers=signed_headers(signer, payload, school.id, "erase-personal-data"),
    )
    options = PipelineSettings(instance_id="sealed", metrics_port=None)
    report = await IngestProcessor(app, options, NoTransport()).process([message])
    assert report.recorded == 1
    rows = rows_by_position(app)
    assert rows[first]["payload_state"] == "erased"
    assert rows[second]["payload_state"] == "readable"


async def test_the_largest_refused_payloads_make_records_that_fit_one_nats_message(
    app: AuditLog, unique: str
) -> None:
    """Whatever the size of what was refused, its record (as the relay publishes it, the
    sealed payload and one key share per person) stays far below NATS's 1 MiB."""
    school = School(app, unique)
    many = [f"p{n}-{unique}" for n in range(MAX_NAMED_PERSONS)]
    naming_everyone = dict(
        school.removal_by_a_pupil(school.pupils[0], school.pupils[1], "ы" * 2_000_000),
        children=many[2:],
    )
    binary = bytes(range(128, 256)) * 32_768  # 4 MiB that is not UTF-8
    positions = await refuse(app, school.id, naming_everyone, binary)
    rows = rows_by_position(app)
    sent = [json.dumps(naming_everyone, ensure_ascii=False).encode(), binary]
    for position, full in zip(positions, sent, strict=True):
        row = rows[position]
        assert row["payload_truncated"]
        assert row["payload_size"] == len(full)
        assert row["payload_sha256"] == hashlib.sha256(full).hexdigest()
        [stored] = app.recorder.select_notifications(position, 1, stop=position)
        event: Any = Mapper.to_domain_event(app.mapper, stored)
        published = json.dumps(vars(event), default=str, ensure_ascii=False).encode()
        assert len(published) < 300_000
        assert len(stored.state) < 300_000
    assert rows[positions[0]]["payload"].startswith('{"command_id"')
