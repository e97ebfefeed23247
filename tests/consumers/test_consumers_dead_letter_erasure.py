"""Erasure reaches the dead-letter stream: forgetting a person deletes the dead letters
whose payloads name them, over NATS and from the command line.

A dead letter keeps its payload in plain text (it could not be sealed: the store holding
the keys was what failed), so it is deleted instead. Each test runs its own nats-server;
dead letters are made by the pipeline itself (a command its handler cannot take) or put on
the stream as the pipeline would.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import nats
import pytest
from cli_environment import cli_environment
from consumer_helpers import break_handler, fast_options, receipts, wait_for
from nats.aio.client import Client
from nats.js import JetStreamContext
from source_signing import ProvisioningSigner
from typer.testing import CliRunner, Result

from sferum_audit.application.bootstrap import build_audit_log
from sferum_audit.application.commands import parse_command
from sferum_audit.application.settings import Settings
from sferum_audit.cli.main import app as cli_app
from sferum_audit.consumers import subjects as hdr
from sferum_audit.consumers.command_mix import school_commands
from sferum_audit.consumers.dead_letters import dead_letters, purge_naming
from sferum_audit.consumers.embedded_nats import EmbeddedNats
from sferum_audit.consumers.publisher import CommandPublisher
from sferum_audit.consumers.service import Pipeline
from sferum_audit.consumers.settings import PipelineSettings
from sferum_audit.consumers.topology import ensure_topology

pytestmark = pytest.mark.nats


@pytest.fixture
async def client(nats_server: EmbeddedNats) -> AsyncIterator[Client]:
    nc = await nats.connect(nats_server.url)
    yield nc
    await nc.close()


def removal(school: str, author: str, n: int, **extra: Any) -> dict[str, Any]:
    """A class teacher's removal of ``author``'s message: it names ``author``."""
    return {
        "command_id": f"{school}-dead-{n}",
        "type": "remove-content",
        "school_id": school,
        "actor": {"id": f"t-{school}", "role": "class-teacher"},
        "occurred_at": "2024-12-09T10:00:00+00:00",
        "chat_id": "class-5a",
        "authority": "2.5",
        "ground": "4.2.4",
        "message_id": f"msg-dead-{n}",
        "author_id": author,
        "reason": "breaks the chat rules",
        "excerpt": "текст сообщения",
        **extra,
    }


async def put_dead_letter(
    js: JetStreamContext, school: str, command_type: str, data: bytes, n: int
) -> int:
    """Stores a dead letter as the ingest does (``_dead_letter``); returns its sequence."""
    ack = await js.publish(
        f"sferum.dead-letters.{school}.{command_type}",
        data,
        headers={
            hdr.MSG_ID: f"dead/{school}/{n}",
            hdr.DLQ_SUBJECT: f"sferum.ingest.0.{school}.{command_type}",
            hdr.DLQ_DELIVERIES: "5",
            hdr.DLQ_ERROR: "OperationalError('connection refused')",
            hdr.DLQ_MSG_ID: f"{school}-dead-{n}",
        },
    )
    return ack.seq


async def remaining(js: JetStreamContext, options: PipelineSettings) -> list[int]:
    return [letter.sequence for letter in await dead_letters(js, options)]


async def test_purging_deletes_the_dead_letters_naming_the_person_and_keeps_the_rest(
    nats_server: EmbeddedNats, client: Client, unique: str
) -> None:
    options = PipelineSettings(nats_url=nats_server.url, partitions=2)
    js = client.jetstream()
    await ensure_topology(js, options)
    school, person, other = f"s-{unique}", f"p-{unique}", f"o-{unique}"
    by_author = removal(school, person, 1)
    as_actor = dict(removal(school, other, 2), actor={"id": person, "role": "student"})
    as_child = {
        "command_id": f"{school}-dead-3",
        "type": "register-profile",
        "school_id": school,
        "actor": {"id": f"adm-{school}", "role": "administrator"},
        "profile_id": other,
        "role": "parent",
        "children": [f"x-{unique}", person],
    }
    escaped = json.dumps(removal(school, person, 4)).replace(
        person, "".join(f"\\u{ord(c):04x}" for c in person)
    )
    naming = [
        await put_dead_letter(js, school, "remove-content", json.dumps(by_author).encode(), 1),
        await put_dead_letter(js, school, "remove-content", json.dumps(as_actor).encode(), 2),
        await put_dead_letter(js, school, "register-profile", json.dumps(as_child).encode(), 3),
        await put_dead_letter(js, school, "remove-content", escaped.encode(), 4),
    ]
    kept = [
        await put_dead_letter(
            js, school, "remove-content", json.dumps(removal(school, other, 5)).encode(), 5
        ),
        # Not JSON: names nobody, even with the id in it; left for the operator.
        await put_dead_letter(
            js, school, "remove-content", f"{{not json, author {person}".encode(), 6
        ),
        # The id in free text, not where the schema puts persons: not a naming.
        await put_dead_letter(
            js,
            school,
            "remove-content",
            json.dumps(removal(school, other, 7, reason=f"about {person}")).encode(),
            7,
        ),
        await put_dead_letter(js, school, "remove-content", b"\x00\x01", 8),
    ]

    assert await purge_naming(js, options, person) == naming
    assert await remaining(js, options) == kept
    assert await purge_naming(js, options, person) == []
    assert await remaining(js, options) == kept


async def test_an_erasure_through_the_pipeline_deletes_the_dead_letters_naming_the_person(
    nats_server: EmbeddedNats,
    client: Client,
    sqlite_settings: Settings,
    unique: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    options = fast_options(nats_server.url, f"a-{unique}", max_deliveries=2)
    school = f"s-{unique}"
    commands = school_commands(school, students=2, moderations=0)
    pupil, other = f"s0-{school}", f"s1-{school}"
    poisoned = [removal(school, pupil, 1), removal(school, other, 2)]
    poisoned_ids = {c["command_id"] for c in poisoned}
    break_handler(monkeypatch, "remove-content", poisoned_ids, "a bug these commands trigger")
    js = client.jetstream()
    async with Pipeline(sqlite_settings, options, views=False) as pipeline:
        app = pipeline.app
        assert app is not None
        assert pipeline.processor is not None
        publisher = CommandPublisher(js, nc=client, signer=ProvisioningSigner(sqlite_settings))
        await publisher.publish_many(commands + poisoned)
        await wait_for(
            lambda: pipeline.processor.totals["dead_lettered"] == 2,  # type: ignore[union-attr]
            30,
            "the dead letters",
        )
        letters = await dead_letters(js, options)
        assert [letter.command_id for letter in letters] == [c["command_id"] for c in poisoned]

        erasure = {
            "command_id": f"{school}-erase",
            "type": "erase-personal-data",
            "school_id": school,
            "actor": {"id": f"adm-{school}", "role": "administrator"},
            "occurred_at": "2024-12-10T10:00:00+00:00",
            "erasure_id": f"er-{unique}",
            "subject_id": pupil,
            "requested_by": pupil,
            "basis": "request No. 3",
        }
        answer = await publisher.request(erasure)
        assert answer["status"] == "recorded", answer
        assert app.subject_keys.key_for_reading(pupil) is None
        assert await dead_letters(js, options) == letters[1:]
        assert receipts(app)[erasure["command_id"]] == 1


# -- the command line -------------------------------------------------------------------------


def cli(settings: Settings, *args: str) -> Result:
    """``sferum-audit ARGS`` in-process against ``settings``' store."""
    return CliRunner().invoke(cli_app, list(args), env=cli_environment(settings))


def record_school(settings: Settings, school: str) -> tuple[str, str, str]:
    """A school with two pupils in the store; returns its administrator and the pupils."""
    app = build_audit_log(settings)
    try:
        commands = school_commands(school, students=2, moderations=0)
        results = app.handle_batch([parse_command(c) for c in commands])
        assert all(r.accepted for r in results)
    finally:
        app.close()
    return f"adm-{school}", f"s0-{school}", f"s1-{school}"


def forget_args(school: str, admin: str, person: str, unique: str) -> list[str]:
    return [
        "forget",
        person,
        "--requested-by",
        person,
        "--basis",
        "заявление № 7",
        "--school",
        school,
        "--by",
        admin,
        "--erasure-id",
        f"er-{unique}",
        "--no-rebuild-views",
    ]


def key_destroyed(settings: Settings, person: str) -> bool:
    app = build_audit_log(settings)
    try:
        return app.subject_keys.key_for_reading(person) is None
    finally:
        app.close()


async def test_forget_deletes_the_dead_letters_naming_the_person_and_says_which(
    nats_server: EmbeddedNats, client: Client, sqlite_settings: Settings, unique: str
) -> None:
    school = f"s-{unique}"
    admin, pupil, other = record_school(sqlite_settings, school)
    options = PipelineSettings(nats_url=nats_server.url)
    js = client.jetstream()
    await ensure_topology(js, options)
    first = await put_dead_letter(
        js, school, "remove-content", json.dumps(removal(school, pupil, 1)).encode(), 1
    )
    kept = await put_dead_letter(
        js, school, "remove-content", json.dumps(removal(school, other, 2)).encode(), 2
    )
    second = await put_dead_letter(
        js, school, "remove-content", json.dumps(removal(school, pupil, 3)).encode(), 3
    )

    result = await asyncio.to_thread(
        cli,
        sqlite_settings,
        *forget_args(school, admin, pupil, unique),
        "--nats-url",
        nats_server.url,
    )
    assert result.exit_code == 0, result.output
    assert (
        f"2 message(s) naming them erased from stream {options.dead_letter_stream} "
        f"(sequences {first}, {second})" in result.stdout
    )
    assert "warning" not in result.stderr
    assert await remaining(js, options) == [kept]
    assert key_destroyed(sqlite_settings, pupil)


async def test_forget_with_nats_unreachable_erases_and_says_how_to_delete_dead_letters_later(
    nats_server: EmbeddedNats, client: Client, sqlite_settings: Settings, unique: str
) -> None:
    school = f"s-{unique}"
    admin, pupil, _ = record_school(sqlite_settings, school)
    options = PipelineSettings(nats_url=nats_server.url)
    js = client.jetstream()
    await ensure_topology(js, options)
    letter = await put_dead_letter(
        js, school, "remove-content", json.dumps(removal(school, pupil, 1)).encode(), 1
    )

    # SFERUM_AUDIT_NATS_URL points at a port nothing listens on (tests/conftest.py).
    result = await asyncio.to_thread(
        cli, sqlite_settings, *forget_args(school, admin, pupil, unique)
    )
    assert result.exit_code == 0, result.output
    assert f"erased personal data of {pupil}" in result.stdout
    assert "warning: NATS messages not checked: NATS at nats://127.0.0.1:1 is unreachable" in (
        result.stderr
    )
    assert f"sferum-audit dead-letters --purge-subject {pupil}" in result.stderr
    assert "Traceback" not in result.output
    assert key_destroyed(sqlite_settings, pupil)
    assert (sqlite_settings.data_dir / "erasures" / f"er-{unique}.json").exists()
    assert await remaining(js, options) == [letter]

    # The way it names, once NATS is reachable.
    later = await asyncio.to_thread(
        cli,
        sqlite_settings,
        "dead-letters",
        "--purge-subject",
        pupil,
        "--nats-url",
        nats_server.url,
        "--format",
        "json",
    )
    assert later.exit_code == 0, later.output
    assert await remaining(js, options) == []


async def test_dead_letters_purge_subject_deletes_those_naming_the_person_and_lists_the_rest(
    nats_server: EmbeddedNats, client: Client, sqlite_settings: Settings, unique: str
) -> None:
    school, person, other = f"s-{unique}", f"p-{unique}", f"o-{unique}"
    options = PipelineSettings(nats_url=nats_server.url)
    js = client.jetstream()
    await ensure_topology(js, options)
    naming = await put_dead_letter(
        js, school, "remove-content", json.dumps(removal(school, person, 1)).encode(), 1
    )
    kept = await put_dead_letter(
        js, school, "remove-content", json.dumps(removal(school, other, 2)).encode(), 2
    )
    garbage = await put_dead_letter(js, school, "remove-content", person.encode(), 3)

    args = ["dead-letters", "--purge-subject", person, "--nats-url", nats_server.url]
    result = await asyncio.to_thread(cli, sqlite_settings, *args, "--format", "json")
    assert result.exit_code == 0, result.output
    assert [row["sequence"] for row in json.loads(result.stdout)] == [kept, garbage]
    assert (
        f"1 dead letter(s) naming {person} deleted from the dead-letter stream "
        f"(sequences {naming})" in result.stderr
    )
    assert await remaining(js, options) == [kept, garbage]

    again = await asyncio.to_thread(cli, sqlite_settings, *args, "--format", "json")
    assert again.exit_code == 0, again.output
    assert f"no dead letter naming {person}" in again.stderr


def test_dead_letters_says_in_one_line_when_nats_is_unreachable(
    sqlite_settings: Settings, unique: str
) -> None:
    result = cli(sqlite_settings, "dead-letters", "--purge-subject", f"p-{unique}")
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("error: NATS at nats://127.0.0.1:1 is unreachable")
    assert "Traceback" not in result.output


# -- every stream, and the commands stream's retention -------------------------------------------


async def test_erasure_erases_the_commands_still_held_that_name_the_person_by_id_or_name(
    nats_server: EmbeddedNats, client: Client, unique: str
) -> None:
    from nats.js.api import RetentionPolicy
    from nats.js.errors import NotFoundError

    from sferum_audit.consumers.dead_letters import StreamEraser
    from sferum_audit.domain.erasure import name_variants

    options = PipelineSettings(nats_url=nats_server.url, commands_max_age=3600)
    js = client.jetstream()
    await ensure_topology(js, options)  # the partition consumers: nobody acks here
    info = await js.stream_info(options.commands_stream)
    assert info.config.retention == RetentionPolicy.INTEREST
    assert info.config.max_age == 3600
    school = f"s-{unique}"
    pupil = f"p-{unique}"
    publisher = CommandPublisher(js, nc=client)
    by_id = removal(school, pupil, 1)
    by_name = {**removal(school, "someone", 2), "reason": "травля (Секретова Алиса)"}
    neither = removal(school, "someone", 3)
    erasure = {
        "command_id": f"{school}-erase",
        "type": "erase-personal-data",
        "school_id": school,
        "actor": {"id": "adm", "role": "administrator"},
        "occurred_at": "2024-12-10T10:00:00+00:00",
        "erasure_id": "er-1",
        "subject_id": pupil,
        "requested_by": pupil,
        "basis": "заявление",
    }
    acks = await publisher.publish_many([by_id, by_name, neither, erasure])
    eraser = StreamEraser(js, options)

    erased = await eraser.erase_naming(pupil, name_variants(["Алиса Секретова"]))

    assert [(m.stream, m.sequence) for m in erased] == [
        (options.commands_stream, acks[0].seq),
        (options.commands_stream, acks[1].seq),
    ]
    for ack in acks[:2]:
        with pytest.raises(NotFoundError):
            await js.get_msg(options.commands_stream, ack.seq)
    await js.get_msg(options.commands_stream, acks[2].seq)  # names nobody: kept
    await js.get_msg(options.commands_stream, acks[3].seq)  # the erasure: kept until done
    last = await eraser.drop_erasure(erasure["command_id"])
    assert [m.sequence for m in last] == [acks[3].seq]
    await js.get_msg(options.commands_stream, acks[2].seq)  # still held: no purge
