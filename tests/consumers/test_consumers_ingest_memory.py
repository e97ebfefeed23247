"""The ingest handler in memory (FastStream's TestNatsBroker): parsing, answers, rejections.

No server: ``TestNatsBroker`` hands each published message to the partition subscriber as
a one-message batch, and the answers to a subscriber of the reply subject. Batches of
several messages, poison messages and store outages are driven through the processor
directly, with messages built the way the test broker builds them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from eventsourcing.persistence import OperationalError
from faststream.nats import NatsBroker, TestNatsBroker
from faststream.nats.testing import PatchedMessage, build_message
from source_signing import provision_local_source, signed_headers

from sferum_audit.application.bootstrap import build_audit_log
from sferum_audit.application.handlers import HANDLERS
from sferum_audit.application.local_sources import LocalSigner
from sferum_audit.application.service import AuditLog
from sferum_audit.application.settings import Settings
from sferum_audit.consumers.broker import add_partition_subscriber, make_ingest_handler
from sferum_audit.consumers.command_mix import school_commands
from sferum_audit.consumers.ingest import IngestProcessor
from sferum_audit.consumers.rejected import rejected_commands
from sferum_audit.consumers.service import BrokerTransport
from sferum_audit.consumers.settings import PipelineSettings
from sferum_audit.consumers.subjects import Subjects, encode_token

INBOX = "_INBOX.tests"


class RecordingTransport:
    """Keeps answers and dead letters instead of sending them."""

    def __init__(self) -> None:
        self.answers: list[tuple[str, dict[str, Any]]] = []
        self.dead: list[tuple[str, bytes, dict[str, str]]] = []

    async def reply(self, subject: str, payload: bytes, headers: dict[str, str]) -> None:
        self.answers.append((subject, json.loads(payload)))

    async def dead_letter(self, subject: str, payload: bytes, headers: dict[str, str]) -> None:
        self.dead.append((subject, payload, headers))


def stored_subject(school_id: str, command_type: str) -> str:
    """The subject the commands stream stores a command under (partition 0 here)."""
    return f"sferum.ingest.0.{encode_token(school_id)}.{encode_token(command_type)}"


@pytest.fixture
def options() -> PipelineSettings:
    return PipelineSettings(instance_id="memory", metrics_port=None, max_deliveries=2)


@pytest.fixture
def app(sqlite_settings: Settings) -> Iterator[AuditLog]:
    app = build_audit_log(sqlite_settings)
    yield app
    app.close()


SIGNERS: list[LocalSigner] = []  # the current test's, set by ``publisher_source``


@pytest.fixture(autouse=True)
def publisher_source(app: AuditLog, sqlite_settings: Settings, unique: str) -> Iterator[None]:
    """The test school's publisher source, registered ahead; ``send`` and ``messages``
    sign with it, as a school's publisher does."""
    SIGNERS[:] = [provision_local_source(app, sqlite_settings, f"s-{unique}")]
    yield
    SIGNERS.clear()


def signed(payload: bytes, school: str, kind: str) -> dict[str, str]:
    return signed_headers(SIGNERS[0], payload, school, kind)


@pytest.fixture
async def broker(
    app: AuditLog, options: PipelineSettings
) -> AsyncIterator[tuple[NatsBroker, list[dict[str, Any]]]]:
    broker = NatsBroker(logger=None)
    processor = IngestProcessor(app, options, BrokerTransport(broker, options))
    # Kept referenced: the broker holds dynamic (non-persistent) subscribers weakly.
    subscriber = add_partition_subscriber(broker, options, 0, make_ingest_handler(processor))
    answers: list[dict[str, Any]] = []

    @broker.subscriber(INBOX)
    async def collect(answer: dict[str, Any]) -> None:
        answers.append(answer)

    async with TestNatsBroker(broker) as test_broker:
        yield test_broker, answers
    del subscriber


async def send(
    broker: NatsBroker, command: dict[str, Any] | bytes, *, school: str = "", kind: str = ""
) -> None:
    if isinstance(command, dict):
        payload = json.dumps(command).encode()
        school, kind = command["school_id"], command["type"]
        msg_id = command["command_id"]
    else:
        payload, msg_id = command, "raw"
    await broker.publish(
        payload,
        stored_subject(school, kind),
        headers={"reply_to": INBOX, "Nats-Msg-Id": msg_id} | signed(payload, school, kind),
    )


async def test_a_valid_command_is_recorded_and_answered_with_positions(
    broker: tuple[NatsBroker, list[dict[str, Any]]], app: AuditLog, unique: str
) -> None:
    test_broker, answers = broker
    first = school_commands(f"s-{unique}")[0]
    await send(test_broker, first)
    assert answers[-1]["status"] == "recorded"
    assert answers[-1]["command_id"] == first["command_id"]
    positions = [event["position"] for event in answers[-1]["events"]]
    assert positions == sorted(positions)
    assert positions
    assert app.recorder.max_notification_id() == positions[-1] + 1  # and the receipt


async def test_a_repeated_command_is_answered_as_a_duplicate_with_the_first_positions(
    broker: tuple[NatsBroker, list[dict[str, Any]]], unique: str
) -> None:
    test_broker, answers = broker
    first = school_commands(f"s-{unique}")[0]
    await send(test_broker, first)
    await send(test_broker, first)
    assert [a["status"] for a in answers] == ["recorded", "duplicate"]
    assert answers[1]["events"] == answers[0]["events"]


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"{not json", "invalid-json"),
        (b"\xff\xfe", "invalid-json"),
        (b"[1, 2]", "invalid-command"),
        (b'{"command_id": "x", "type": "remove-content"}', "invalid-command"),
    ],
)
async def test_unreadable_input_is_rejected_kept_with_its_payload_and_answered(
    broker: tuple[NatsBroker, list[dict[str, Any]]],
    app: AuditLog,
    payload: bytes,
    code: str,
    unique: str,
) -> None:
    test_broker, answers = broker
    await send(test_broker, payload, school=f"s-{unique}", kind="remove-content")
    assert answers[-1]["status"] == "rejected"
    assert answers[-1]["error"]["code"] == code
    [kept] = list(rejected_commands(app))
    assert kept["error_code"] == code
    assert kept["school_id"] == f"s-{unique}"
    assert kept["command_type"] == "remove-content"
    assert kept["actor_id"] == "system"
    if kept["payload_encoding"] == "utf-8":
        assert kept["payload"].encode() == payload


async def test_a_command_that_breaks_a_rule_is_rejected_with_the_domain_code(
    broker: tuple[NatsBroker, list[dict[str, Any]]], app: AuditLog, unique: str
) -> None:
    test_broker, answers = broker
    school = school_commands(f"s-{unique}")
    await send(test_broker, school[0])
    add_to_unknown_chat = dict(school[7], command_id=f"bad-{unique}", chat_id="no-such-chat")
    assert add_to_unknown_chat["type"] == "add-member"
    await send(test_broker, add_to_unknown_chat)
    assert answers[-1]["status"] == "rejected"
    assert answers[-1]["error"]["code"] == "unknown-chat"
    [kept] = list(rejected_commands(app))
    assert kept["command_id"] == f"bad-{unique}"
    assert json.loads(kept["payload"]) == add_to_unknown_chat


async def test_an_unauthorised_moderator_is_rejected_and_kept(
    broker: tuple[NatsBroker, list[dict[str, Any]]], app: AuditLog, unique: str
) -> None:
    test_broker, answers = broker
    school = school_commands(f"s-{unique}", moderations=1)
    for command in school[:-2]:
        await send(test_broker, command)
    removal = next(c for c in school if c["type"] == "remove-content")
    pupil = school[5]["profile_id"]
    by_a_student = dict(
        removal, command_id=f"student-{unique}", actor={"id": pupil, "role": "student"}
    )
    await send(test_broker, by_a_student)
    assert answers[-1]["status"] == "rejected"
    kept = list(rejected_commands(app))
    assert [k["command_id"] for k in kept] == [f"student-{unique}"]
    assert kept[0]["error_code"] == answers[-1]["error"]["code"]
    assert kept[0]["actor_id"] == pupil


async def test_a_command_on_another_schools_subject_is_rejected(
    broker: tuple[NatsBroker, list[dict[str, Any]]], unique: str
) -> None:
    test_broker, answers = broker
    command = school_commands(f"s-{unique}")[0]
    await test_broker.publish(
        json.dumps(command).encode(),
        stored_subject("another-school", command["type"]),
        headers={"reply_to": INBOX},
    )
    assert answers[-1]["error"]["code"] == "subject-mismatch"


# -- batches through the processor ------------------------------------------------------------


async def messages(commands: list[dict[str, Any] | bytes]) -> list[PatchedMessage]:
    out = []
    for command in commands:
        if isinstance(command, bytes):
            out.append(await build_message(command, stored_subject("x", "remove-content")))
        else:
            subject = stored_subject(command["school_id"], command["type"])
            payload = json.dumps(command).encode()
            headers = signed(payload, command["school_id"], command["type"])
            out.append(await build_message(payload, subject, headers=headers))
    return out


async def test_a_refused_command_does_not_take_its_batch_down(
    app: AuditLog, options: PipelineSettings, unique: str
) -> None:
    school = school_commands(f"s-{unique}", moderations=3)
    bad = dict(school[3], command_id=f"bad-{unique}", class_id="no-such-class")
    batch = [*school[:3], bad, b"garbage", *school[3:]]
    processor = IngestProcessor(app, options, RecordingTransport())
    report = await processor.process(await messages(batch))
    assert report.recorded == len(school)
    assert report.rejected == 2
    assert report.retried == 0
    assert len(list(rejected_commands(app))) == 2


async def test_a_poison_command_is_held_in_order_then_dead_lettered_and_the_rest_decided(
    app: AuditLog, options: PipelineSettings, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    school = school_commands(f"s-{unique}", moderations=2)
    poison = next(c for c in school if c["type"] == "create-class")
    original = HANDLERS["create-class"]

    def explode(*args: Any) -> None:
        raise RuntimeError("a bug this command triggers")

    monkeypatch.setitem(HANDLERS, "create-class", explode)
    transport = RecordingTransport()
    options = options.model_copy(update={"backoff": [0.01], "max_deliveries": 2})
    processor = IngestProcessor(app, options, transport)
    report = await processor.process(await messages(school))
    assert report.retried == 1  # tried again here, in order, before anything after it
    assert report.dead_lettered == 1
    assert report.recorded + report.rejected == len(school) - 1
    assert not report.transient
    [(subject, payload, headers)] = transport.dead
    assert subject == Subjects().dead_letter(poison["school_id"], "create-class")
    assert json.loads(payload) == poison
    assert "a bug this command triggers" in headers["Sferum-Error"]
    assert headers["Sferum-Deliveries"] == "2"
    monkeypatch.setitem(HANDLERS, "create-class", original)


async def test_commands_after_a_retried_one_are_decided_only_after_it(
    app: AuditLog, options: PipelineSettings, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Creating the class fails once (the store blinks); the commands that need the class
    must wait for it, not be refused."""
    school = school_commands(f"s-{unique}", moderations=2)
    original = HANDLERS["create-class"]
    failures = {"left": 1}

    def once(*args: Any) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise OperationalError("server closed the connection unexpectedly")
        original(*args)

    monkeypatch.setitem(HANDLERS, "create-class", once)
    options = options.model_copy(update={"backoff": [0.01], "max_deliveries": 3})
    processor = IngestProcessor(app, options, RecordingTransport())
    report = await processor.process(await messages(school))
    assert report.retried == 1
    assert report.dead_lettered == 0
    assert report.rejected == 0
    assert report.recorded == len(school)
    assert receipt_ids(app) == [c["command_id"] for c in school]


def store_unavailable(app: AuditLog, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every batch the app is handed fails as if the database refused the connection."""

    def unavailable(*args: Any) -> None:
        raise OperationalError("connection refused")

    monkeypatch.setattr(app, "handle_batch", unavailable)


async def test_an_unavailable_store_holds_the_batch_then_dead_letters_it_in_order(
    app: AuditLog, options: PipelineSettings, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store_unavailable(app, monkeypatch)
    options = options.model_copy(update={"backoff": [0.01], "max_deliveries": 3})
    transport = RecordingTransport()
    processor = IngestProcessor(app, options, transport)
    batch = school_commands(f"s-{unique}")[:5]
    report = await processor.process(await messages(batch))
    assert report.transient
    assert report.retried == 2  # one try per backoff for the whole batch, not per message
    assert report.recorded == 0
    assert report.dead_lettered == 5
    assert [json.loads(payload)["command_id"] for _, payload, _ in transport.dead] == [
        c["command_id"] for c in batch
    ]


async def test_a_released_partition_gives_its_held_messages_back_in_order(
    app: AuditLog, options: PipelineSettings, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store_unavailable(app, monkeypatch)
    options = options.model_copy(update={"backoff": [30.0], "max_deliveries": 3})
    processor = IngestProcessor(app, options, RecordingTransport())
    batch = await messages(school_commands(f"s-{unique}")[:4])
    naked: list[str] = []
    for msg in batch:
        msg.nak = lambda delay=None, m=msg: _note(naked, m)  # type: ignore[method-assign]
    task = asyncio.create_task(processor.process(batch))
    await asyncio.sleep(0.2)
    processor.release(0)
    report = await asyncio.wait_for(task, timeout=5)
    assert report.dead_lettered == 0
    assert naked == [json.loads(m.data)["command_id"] for m in batch]


async def _note(naked: list[str], msg: Any) -> None:
    naked.append(json.loads(msg.data)["command_id"])


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"[" * 10_000 + b"]" * 10_000, "command-too-deep"),
        (b'{"a":' * 1_000 + b"1" + b"}" * 1_000, "command-too-deep"),
        (b'{"command_id": ' + b"9" * 5_000 + b"}", "number-too-long"),
        (b'{"command_id": "x", "reason": "' + b"x" * 300_000 + b'"}', "command-too-large"),
        (b"\xff" * 10, "invalid-json"),
    ],
)
async def test_malformed_messages_among_a_schools_commands_are_refused_alone(
    app: AuditLog, options: PipelineSettings, unique: str, payload: bytes, code: str
) -> None:
    school = school_commands(f"s-{unique}", moderations=2)
    batch: list[dict[str, Any] | bytes] = [*school[:4], payload, *school[4:]]
    transport = RecordingTransport()
    processor = IngestProcessor(app, options, transport)
    report = await processor.process(await messages(batch))
    assert (report.recorded, report.rejected, report.retried) == (len(school), 1, 0)
    assert receipt_ids(app) == [c["command_id"] for c in school]
    [kept] = list(rejected_commands(app))
    assert kept["error_code"] == code
    assert kept["payload_size"] == len(payload)


def receipt_ids(app: AuditLog) -> list[str]:
    from consumer_helpers import receipt_order

    return receipt_order(app)


def test_the_command_mix_is_valid_in_its_order(app: AuditLog, unique: str) -> None:
    from sferum_audit.application.commands import parse_command

    mix = school_commands(f"s-{unique}", students=3, moderations=10)
    results = app.handle_batch([parse_command(c) for c in mix])
    assert [r.status for r in results] == ["recorded"] * len(mix)


async def test_a_refused_command_sent_again_is_answered_alike_and_kept_once(
    broker: tuple[NatsBroker, list[dict[str, Any]]], app: AuditLog, unique: str
) -> None:
    test_broker, answers = broker
    school = school_commands(f"s-{unique}")
    await send(test_broker, school[0])
    add_to_unknown_chat = dict(school[7], command_id=f"bad-{unique}", chat_id="no-such-chat")
    await send(test_broker, add_to_unknown_chat)
    payload = json.dumps(add_to_unknown_chat).encode()
    school_id, kind = add_to_unknown_chat["school_id"], add_to_unknown_chat["type"]
    await test_broker.publish(  # the same command again, under a new Nats-Msg-Id
        payload,
        stored_subject(school_id, kind),
        headers={"reply_to": INBOX, "Nats-Msg-Id": f"again-{unique}"}
        | signed(payload, school_id, kind),
    )
    assert answers[-1] == answers[-2]
    assert answers[-1]["error"]["code"] == "unknown-chat"
    assert [k["command_id"] for k in rejected_commands(app)] == [f"bad-{unique}"]
