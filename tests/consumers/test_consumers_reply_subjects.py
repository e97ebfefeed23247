"""Answers go only to reply subjects under the allowed inbox prefixes.

The report's attack: a command with ``reply_to: sferum.events....`` made the service
publish its answer onto the events stream. Only plain subjects under
``SFERUM_AUDIT_REPLY_PREFIXES`` (default ``_INBOX.``) get an answer now.
"""

from __future__ import annotations

import pytest
from consumer_helpers import fast_options, wait_for
from structlog.testing import capture_logs

from sferum_audit.application.settings import Settings
from sferum_audit.consumers.embedded_nats import EmbeddedNats
from sferum_audit.consumers.publisher import CommandPublisher
from sferum_audit.consumers.service import Pipeline
from sferum_audit.consumers.settings import PipelineSettings
from sferum_audit.consumers.subjects import reply_allowed

INBOXES = ["_INBOX."]


@pytest.mark.parametrize("subject", ["_INBOX.abc", "_INBOX.school-1.x1y2", "_INBOX.a.b.c"])
def test_an_inbox_subject_gets_its_answer(subject: str) -> None:
    assert reply_allowed(subject, INBOXES)


@pytest.mark.parametrize(
    "subject",
    [
        "sferum.events.school-1.School.Registered",
        "sferum.rejections.school-1.register-school",
        "sferum.commands.school-2.appoint-administrator",
        "$JS.API.STREAM.PURGE.SFERUM_EVENTS",
        "$KV.sferum_audit_coordination.relay.position",
        "_INBOX.>",
        "_INBOX.*",
        "_INBOX..x",
        "_INBOX.a b",
        "_INBOX.\x1b[32m",
        "crm.answers",
    ],
)
def test_any_other_reply_subject_is_refused(subject: str) -> None:
    with capture_logs() as logs:
        assert not reply_allowed(subject, INBOXES)
    assert logs[0]["event"] == "answer not sent: reply subject not allowed"


def test_the_allowed_prefixes_are_configurable() -> None:
    options = PipelineSettings(instance_id="t", reply_prefixes="_INBOX.,crm.answers.")
    assert options.reply_prefixes == ["_INBOX.", "crm.answers."]
    assert reply_allowed("crm.answers.42", options.reply_prefixes)
    # The service's own subjects stay closed whatever is configured.
    assert not reply_allowed("sferum.events.x.Y", ["sferum."])


@pytest.mark.nats
async def test_an_answer_is_never_published_onto_the_events_stream(
    nats_server: EmbeddedNats, sqlite_settings: Settings, unique: str
) -> None:
    import nats

    options = fast_options(nats_server.url, f"a-{unique}")
    nc = await nats.connect(nats_server.url)
    target = f"sferum.events.s-{unique}.School.Registered"
    try:
        async with Pipeline(sqlite_settings, options, views=False) as pipeline:
            publisher = CommandPublisher(nc.jetstream(), nc=nc)
            await publisher.publish_raw(
                f"s-{unique}", "remove-content", b"{bad", msg_id=f"bad-{unique}", reply_to=target
            )
            inbox = nc.new_inbox()
            answers = await nc.subscribe(inbox)
            await publisher.publish_raw(
                f"s-{unique}", "remove-content", b"{bad", msg_id=f"ok-{unique}", reply_to=inbox
            )
            answer = await answers.next_msg(timeout=30)
            assert b'"rejected"' in answer.data
            assert pipeline.processor is not None
            await wait_for(lambda: pipeline.processor.settled >= 2, 30, "both commands")  # type: ignore[union-attr]
            info = await nc.jetstream().stream_info(options.events_stream, subjects_filter=target)
            assert not info.state.subjects
    finally:
        await nc.close()
