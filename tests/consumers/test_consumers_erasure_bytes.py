"""After an erasure over NATS, the person's name is in no byte the service keeps.

One school goes through the running pipeline (views followed, sealer on); another pupil's
removal and a refused command name the pupil in their free text, and a dead letter names
her only by name. Views, an as-of snapshot and a proof of her profile are made first.
Then an erasure arrives over NATS, and the test looks for her name, as UTF-8 and as JSON
``\\u`` escapes, in every file of the data folder and of the NATS store, in every
PostgreSQL table file (after a ``CHECKPOINT``) of the test's schema, and in the listings
and exports; the proof made before still checks and ``verify`` passes.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from cli_environment import cli_environment
from consumer_helpers import fast_options, wait_for
from nats.aio.client import Client
from source_signing import ProvisioningSigner
from typer.testing import CliRunner, Result

from sferum_audit.application.sample_school import sample_school
from sferum_audit.application.settings import Settings
from sferum_audit.cli.main import app as cli_app
from sferum_audit.consumers import subjects as hdr
from sferum_audit.consumers.embedded_nats import EmbeddedNats
from sferum_audit.consumers.publisher import CommandPublisher
from sferum_audit.consumers.service import Pipeline
from sferum_audit.consumers.settings import PipelineSettings
from sferum_audit.consumers.subjects import Subjects
from sferum_audit.consumers.topology import ensure_topology


@pytest.fixture
async def client(nats_server: EmbeddedNats) -> Any:
    import nats

    connection = await nats.connect(nats_server.url)
    try:
        yield connection
    finally:
        await connection.close()


def cli(settings: Settings, *args: str, nats_url: str) -> Result:
    env = cli_environment(settings) | {"SFERUM_AUDIT_NATS_URL": nats_url}
    return CliRunner().invoke(cli_app, list(args), env=env)


def the_case(school: str) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The sample school, plus another pupil's removal and a refused command whose free
    text names the pupil; who is who."""
    commands = sample_school(school)
    removal = next(c for c in commands if c["type"] == "remove-content")
    pupil = removal["author_id"]
    name = next(
        c["display_name"]
        for c in commands
        if c["type"] == "register-profile" and c["profile_id"] == pupil
    )
    other = next(
        c["profile_id"]
        for c in commands
        if c["type"] == "register-profile" and c["role"] == "student" and c["profile_id"] != pupil
    )
    surname_first = name
    about_her = {
        **removal,
        "command_id": f"{school}-about-her",
        "message_id": f"{removal['message_id']}-x",
        "author_id": other,
        "occurred_at": "2024-12-06T10:00:00+02:00",
        "reason": f"травля одноклассницы ({surname_first})",
        "excerpt": f"{surname_first.upper()} — ябеда",
    }
    refused = {
        **about_her,
        "command_id": f"{school}-refused",
        "actor": {"id": other, "role": "student"},
        "reason": f"хочу удалить, это про {name}",
    }
    who = {
        "school": school,
        "admin": commands[0]["first_administrator_id"],
        "pupil": pupil,
        "other": other,
        "name": name,
    }
    return [*commands, about_her, refused], who


def needles(name: str) -> list[bytes]:
    """The name as stored anywhere: UTF-8, and JSON with ``\\u`` escapes."""
    forms = {name, name.upper(), name.lower()}
    found = {form.encode() for form in forms}
    found |= {json.dumps(form)[1:-1].encode() for form in forms}
    found |= {json.dumps(form)[1:-1].lower().encode() for form in forms}
    return sorted(found)


def files_naming(folder: Path, forms: list[bytes]) -> list[str]:
    hits = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        hits += [f"{path} holds {form!r}" for form in forms if form in data]
    return hits


def postgres_files_naming(settings: Settings, forms: list[bytes]) -> list[str] | None:
    """Every table, TOAST table and index file of the test's schema after a CHECKPOINT;
    ``None`` when the data directory cannot be read here."""
    import psycopg

    assert settings.database_url is not None
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")
        data_directory = Path(str(conn.execute("SHOW data_directory").fetchone()[0]))  # type: ignore[index]  # SHOW returns one row
        rows = conn.execute(
            """
            SELECT c.relname, pg_relation_filepath(c.oid)
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = %s AND c.relkind IN ('r', 't', 'i', 'm')
            UNION ALL
            SELECT t.relname, pg_relation_filepath(t.oid)
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_class t ON t.oid = c.reltoastrelid
            WHERE n.nspname = %s
            """,
            (settings.database_schema, settings.database_schema),
        ).fetchall()
    hits = []
    for relname, relative in rows:
        if relative is None:
            continue
        base = data_directory / relative
        try:
            segments = [base, *sorted(base.parent.glob(f"{base.name}.*"))]
            data = b"".join(p.read_bytes() for p in segments if p.exists())
        except PermissionError:
            return None
        hits += [f"{relname} ({relative}) holds {form!r}" for form in forms if form in data]
    return hits


async def test_after_an_erasure_over_nats_her_name_is_in_no_file_view_or_listing(
    nats_server: EmbeddedNats, client: Client, settings: Settings, unique: str, tmp_path: Path
) -> None:
    commands, who = the_case(f"b{unique}")
    options = fast_options(nats_server.url, f"b-{unique}", seal_enabled=True)
    js = client.jetstream()
    await ensure_topology(js, options)
    url = nats_server.url
    # A dead letter that names her only by name, in its free text.
    letter = json.dumps({"type": "remove-content", "reason": f"про {who['name']}"})
    await js.publish(
        Subjects(options.subject_prefix).dead_letter(who["school"], "remove-content"),
        letter.encode(),
        headers={hdr.DLQ_MSG_ID: f"{who['school']}-dead"},
        stream=options.dead_letter_stream,
    )
    publisher = CommandPublisher(js, nc=client, signer=ProvisioningSigner(settings))

    async with Pipeline(settings, options, views=True) as pipeline:
        answers = [await publisher.request(c) for c in commands]
        assert [a["status"] for a in answers[:-1]] == ["recorded"] * (len(commands) - 1)
        assert answers[-1]["status"] == "rejected", answers[-1]
        head = answers[-2]["events"][-1]["position"]
        assert pipeline.follower is not None
        await wait_for(
            lambda: all(lag.lag == 0 for lag in pipeline.follower.lag()), 30, "the views"
        )
        # Before: a snapshot as of now, a seal and a proof of her profile.
        made = await asyncio.to_thread(cli, settings, "replay", "--upto", str(head), nats_url=url)
        assert made.exit_code == 0, made.output
        assert list(settings.data_dir.glob("views-asof-*.sqlite"))
        profile_at = next(
            e["position"]
            for c, a in zip(commands, answers, strict=True)
            if c["type"] == "register-profile" and c["profile_id"] == who["pupil"]
            for e in a["events"]
            if e["type"] == "Profile.Registered"
        )
        sealed = await asyncio.to_thread(cli, settings, "seal", nats_url=url)
        assert sealed.exit_code == 0, sealed.output
        proof = tmp_path / "before.json"
        proved = await asyncio.to_thread(
            cli, settings, "prove", str(profile_at), "-o", str(proof), nats_url=url
        )
        assert proved.exit_code == 0, proved.output
        members = await asyncio.to_thread(cli, settings, "audit", "--format", "json", nats_url=url)
        assert who["name"] in members.stdout  # the views did name her
        forms = needles(who["name"])
        assert files_naming(tmp_path / "nats", forms)  # the search finds what is there
        if not settings.database_url:
            assert files_naming(settings.data_dir, forms)
        elif (before := postgres_files_naming(settings, forms)) is not None:
            assert before  # the view tables' files held her name

        erasure = {
            "command_id": f"{who['school']}-erase",
            "type": "erase-personal-data",
            "school_id": who["school"],
            "actor": {"id": who["admin"], "role": "administrator"},
            "occurred_at": "2024-12-10T10:00:00+00:00",
            "erasure_id": f"er-{unique}",
            "subject_id": who["pupil"],
            "requested_by": who["pupil"],
            "basis": "заявление № 7",
        }
        answer = await publisher.request(erasure, timeout=60)
        assert answer["status"] == "recorded", answer

    # The same act as `forget` writes, once, listing what it touched.
    act = json.loads((settings.data_dir / "erasures" / f"er-{unique}.json").read_text())
    assert {r["event_type"] for r in act["free_text_records"]} >= {
        "Chat.ContentRemoved",
        "RejectedCommand.Recorded",
    }
    assert all(r["shredded"] for r in act["free_text_records"])
    assert [m["stream"] for m in act["messages_erased"]].count(options.dead_letter_stream) == 1
    assert act["log_extract"]
    assert not list(settings.data_dir.glob("views-asof-*"))

    # No listing or export names her.
    for args in (
        ("audit", "--format", "json"),
        ("members", "class-5a", "--format", "csv"),
        ("incidents", "--all", "--format", "json"),
        ("rejected", "--format", "json"),
        ("dead-letters", "--format", "json"),
        ("events", "--limit", "100000"),
    ):
        shown = await asyncio.to_thread(cli, settings, *args, nats_url=url)
        assert shown.exit_code == 0, (args, shown.output)
        assert not [f for f in forms if f in shown.stdout.encode()], args
    # Proofs made before still check; the log verifies.
    assert (await asyncio.to_thread(cli, settings, "verify", nats_url=url)).exit_code == 0
    public_key = settings.data_dir / "integrity" / "public.key"
    key_text = (await asyncio.to_thread(cli, settings, "public-key", nats_url=url)).stdout
    public_key.write_text(key_text)
    checked = await asyncio.to_thread(
        cli, settings, "check-proof", str(proof), "--public-key", str(public_key), nats_url=url
    )
    assert checked.exit_code == 0, checked.output

    await nats_server.stop(timeout=5)  # its files settle
    assert files_naming(settings.data_dir, forms) == []
    assert files_naming(tmp_path / "nats", forms) == []
    if settings.database_url:
        found = postgres_files_naming(settings, forms)
        if found is None:
            pytest.skip("the PostgreSQL data directory is not readable by this user")
        assert found == []


def test_a_rejection_kept_in_plain_text_is_published_without_its_payload(
    sqlite_settings: Settings,
) -> None:
    from sferum_audit.application.bootstrap import build_audit_log
    from sferum_audit.application.rejections import RejectedCommand, system_context
    from sferum_audit.consumers.relay import EventRelay

    app = build_audit_log(sqlite_settings)
    try:
        legacy = RejectedCommand(  # as records were kept before payloads were sealed
            ctx=system_context("old/1"),
            delivery_key="old/1",
            school_id="sch-1",
            command_type="remove-content",
            command_id="c-1",
            subject="sferum.commands.sch-1.remove-content",
            error_code="schema",
            error_message="bad",
            payload='{"reason": "травля (Секретова Алиса)"}',
            payload_encoding="utf-8",
        )
        app.save(legacy)
        relay = EventRelay(app, None, None, PipelineSettings())  # type: ignore[arg-type]  # only encodes
        notifications = app.recorder.select_notifications(1, 10)
        [(_, subject, payload, _)] = relay._messages(notifications)
    finally:
        app.close()
    assert subject.startswith("sferum.rejections.")
    assert json.loads(payload)["data"]["payload"] is None
    assert "Секретова".encode() not in payload
