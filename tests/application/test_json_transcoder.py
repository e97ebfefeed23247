"""The orjson transcoder stores exactly the bytes the library's JSON transcoder would."""

from __future__ import annotations

import importlib
import pkgutil
import types
import typing
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    TranscodingNotRegisteredError,
    UUIDAsHex,
)
from hypothesis import given
from hypothesis import strategies as st

import sferum_audit.application
import sferum_audit.domain
from sferum_audit.application.commands import parse_command
from sferum_audit.application.json_transcoder import OrjsonTranscoder
from sferum_audit.application.receipts import CommandReceipt
from sferum_audit.application.rejections import RejectedCommand
from sferum_audit.application.sample_school import sample_school
from sferum_audit.application.service import AuditLog
from sferum_audit.application.store import CommandContextAsDict
from sferum_audit.domain.base import AuditedAggregate
from sferum_audit.domain.context import CommandContext


def registered(transcoder: JSONTranscoder) -> JSONTranscoder:
    """The transcodings the audit log registers (the library's three and the context)."""
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO(), CommandContextAsDict()):
        transcoder.register(transcoding)
    return transcoder


LIBRARY = registered(JSONTranscoder())
FAST = registered(OrjsonTranscoder())


def test_the_audit_log_stores_events_with_the_orjson_transcoder(app: AuditLog) -> None:
    assert isinstance(app.mapper.transcoder, OrjsonTranscoder)


def test_every_event_of_the_sample_school_encodes_to_the_librarys_bytes(
    app: AuditLog, unique: str
) -> None:
    for command in sample_school(unique):
        app.handle(parse_command(command))
    states = []
    for notification in app.recorder.select_notifications(1, 100_000):
        state = dict(vars(app.mapper.to_domain_event(notification)))
        del state["originator_id"], state["originator_version"]  # the mapper stores them apart
        states.append(state)
    assert len(states) > 400
    for state in states:
        assert FAST.encode(state) == LIBRARY.encode(state)
        assert LIBRARY.decode(FAST.encode(state)) == state


aware_times = st.datetimes(
    timezones=st.sampled_from(
        [UTC, timezone(timedelta(hours=3)), timezone(timedelta(hours=5, minutes=30, seconds=15))]
    )
)
leaves = (
    st.text()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.booleans()
    | st.none()
    | st.datetimes()
    | aware_times
)
contexts = st.builds(
    CommandContext,
    actor_id=st.text(min_size=1),
    actor_role=st.just("teacher"),
    occurred_at=aware_times,
    command_id=st.text(min_size=1),
    correlation_id=st.text(),
    causation_id=st.none() | st.text(),
)
states = st.recursive(
    leaves | contexts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@given(states)
def test_any_state_of_event_field_types_encodes_to_the_librarys_bytes(state: Any) -> None:
    try:
        expected = LIBRARY.encode(state)
    except (UnicodeEncodeError, TranscodingNotRegisteredError) as error:
        with pytest.raises(type(error)):
            FAST.encode(state)
        return
    assert FAST.encode(state) == expected


def test_an_unregistered_type_is_refused_as_the_library_refuses_it() -> None:
    with pytest.raises(TranscodingNotRegisteredError):
        FAST.encode({"value": object()})


def _event_classes() -> set[type[Any]]:
    for package in (sferum_audit.domain, sferum_audit.application):
        for module in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{package.__name__}.{module.name}")
    found: set[type[Any]] = set()
    pending: list[type[Any]] = [AuditedAggregate.Event]
    while pending:
        for subclass in pending.pop().__subclasses__():
            found.add(subclass)
            pending.append(subclass)
    return found


STORABLE = {str, int, bool, type(None), datetime, CommandContext}


def _storable(annotation: Any) -> bool:
    if annotation in STORABLE:
        return True
    origin = typing.get_origin(annotation)
    if origin in (list, tuple, dict, typing.Union, types.UnionType):
        return all(_storable(arg) for arg in typing.get_args(annotation) if arg is not Ellipsis)
    return False


def test_event_fields_hold_only_types_orjson_writes_as_the_library_does() -> None:
    classes = _event_classes()
    assert CommandReceipt.Recorded in classes
    assert RejectedCommand.Recorded in classes
    assert len(classes) > 40
    wrong = {}
    for cls in classes:
        for name, annotation in typing.get_type_hints(cls).items():
            if typing.get_origin(annotation) is typing.ClassVar or name == "originator_id":
                continue  # not stored in the state (the id is a column of its own)
            if not _storable(annotation):
                wrong[f"{cls.__qualname__}.{name}"] = annotation
    # A UUID, float or enum field would be stored differently: see json_transcoder.
    assert wrong == {}
