"""The fast decoder's two steps, and what it leaves to the application's mapper."""

from __future__ import annotations

import math
from typing import Any

from sferum_audit.application.service import AuditLog
from sferum_audit.domain.personal_data import PERSONAL_FIELDS
from sferum_audit.projections.decoding import Decoded, FastDecoder
from sferum_audit.projections.keys import view_mapper


def columns(notification: Any) -> tuple[Any, ...]:
    n = notification
    return (n.id, n.originator_id, n.originator_version, n.topic, n.state)


def plain(event: Any) -> dict[str, Any]:
    """A decoded event's fields, the command context's too, as dicts."""
    return {k: plain(v) if isinstance(v, Decoded) else v for k, v in vars(event).items()}


def test_parsed_then_opened_is_what_decoding_gives(recorded: AuditLog) -> None:
    mapper, _ = view_mapper(recorded)
    decoder = FastDecoder(mapper)
    sealed_seen = 0
    for notification in recorded.recorder.select_notifications(1, 100_000):
        row = columns(notification)
        event, sealed = decoder.parse_row(*row)
        if event is None:
            continue
        if sealed:
            sealed_seen += 1
            assert all(isinstance(vars(event)[name], dict) for name in sealed)
            spec = PERSONAL_FIELDS[notification.topic.rsplit(":", 1)[-1]]
            subject = str(vars(event)[spec.subject_field])
            # the subject's key, and each free-text field's own record key
            texts = {vars(event)[n]["text"] for n in sealed if "text" in vars(event)[n]}
            assert set(decoder.sealed_subjects(event, sealed)) == {subject} | texts
            decoder.open(event, sealed)
        assert plain(event) == plain(decoder.decode_row(*row))
    assert sealed_seen > 0


def test_json_that_orjson_refuses_goes_through_the_mapper(recorded: AuditLog) -> None:
    mapper, _ = view_mapper(recorded)
    decoder = FastDecoder(mapper)
    notification = next(
        n
        for n in recorded.recorder.select_notifications(1, 100_000)
        if n.topic.endswith("School.ClassCreated")
    )
    row = columns(notification)
    with_nan = (*row[:4], row[4].replace(b"{", b'{"weight":NaN,', 1))
    assert decoder.parse_row(*with_nan) == (None, ())
    event = decoder.decode_row(*with_nan)
    assert math.isnan(event.weight)
    assert event.class_id == decoder.decode_row(*row).class_id
