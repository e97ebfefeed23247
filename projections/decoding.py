"""Decoding stored events for the views, fast, to the same values the mapper gives.

The application's mapper turns every stored event into a domain event object through
``json``'s object hook, parses every time, and validates every ``CommandContext``: about
20 µs an event here, most of a replay. The views need only the fields' values, and times
as canonical UTC text (see ``view.iso``), so this decoder parses the JSON with ``orjson``
(about twice as fast as ``json`` on these events, same values), converts the few encoded
types itself (times, ids, the command context), opens sealed personal fields through the
same mapper, and hands the handlers a plain object with the same attribute names.
Anything it does not know (a cipher or compressor on the store, an upcast event class, an
unknown encoded type, JSON that ``orjson`` refuses but ``json`` reads, such as ``NaN``)
goes through the mapper instead, and a test checks that both paths give the same rows.

Decoding is in two steps, so that a page can be parsed before it is applied: ``parse_row``
gives the event with its personal fields still sealed (and which fields those are, so the
page's keys can be read in one query), and ``open`` opens them when the event is applied,
in log order, after any erasure before it in the page has been seen.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Final
from uuid import UUID

import orjson
from eventsourcing.persistence import JSONTranscoder, Mapper, Notification
from eventsourcing.utils import resolve_topic

from sferum_audit.application.personal_data_mapper import event_type
from sferum_audit.domain.personal_data import PERSONAL_FIELDS
from sferum_audit.projections.keys import ViewMapper

KNOWN_TYPES: Final = frozenset({"datetime_iso", "uuid_hex", "ctx"})
NOTHING_SEALED: Final[tuple[str, ...]] = ()


class Decoded:
    """A decoded event's fields as attributes (times as canonical UTC text)."""

    def __repr__(self) -> str:
        return f"Decoded({self.__dict__!r})"


class Unknown(Exception):
    """The stored state holds something only the mapper can decode."""


class FastDecoder:
    """``decode(notification)`` gives an object the view handlers read like the event."""

    def __init__(self, mapper: Mapper[UUID], *, enabled: bool = True) -> None:
        self.mapper = mapper
        transcoder = mapper.transcoder
        self.enabled = (
            enabled
            and mapper.cipher is None
            and mapper.compressor is None
            and isinstance(transcoder, JSONTranscoder)
            and set(transcoder.names) <= KNOWN_TYPES | {"decimal_str"}
        )
        self._fast_topic: dict[str, bool] = {}
        self._plans: dict[str, tuple[str, ...] | bool] = {}
        self._times: dict[str, str] = {}
        self._opener = mapper.open_sealed if isinstance(mapper, ViewMapper) else None

    def decode(self, notification: Notification) -> Any:
        return self.decode_row(
            notification.id,
            notification.originator_id,
            notification.originator_version,
            notification.topic,
            notification.state,
        )

    def decode_row(
        self, position: int, originator_id: Any, version: int, topic: str, state_bytes: bytes
    ) -> Any:
        """Decodes one stored event given as its columns (``decode`` of a notification)."""
        event, sealed = self.parse_row(position, originator_id, version, topic, state_bytes)
        if event is None:
            return self.mapper_decode(position, originator_id, version, topic, state_bytes)
        if sealed:
            self.open(event, sealed)
        return event

    def parse_row(
        self, position: int, originator_id: Any, version: int, topic: str, state_bytes: bytes
    ) -> tuple[Any, tuple[str, ...]]:
        """The event with its personal fields still sealed, and the names of those fields;
        ``(None, ())`` when only the mapper can decode it (see ``mapper_decode``)."""
        plan = self._plans.get(topic)
        if plan is None:
            plan = self._plan(topic)
        if plan is False:
            return None, NOTHING_SEALED
        sealed = NOTHING_SEALED
        try:
            state: dict[str, Any] = orjson.loads(state_bytes)
            if type(state) is not dict:
                raise Unknown("not an object")
            for name, value in state.items():
                kind = type(value)
                if kind is dict:
                    if name == "ctx":
                        state[name] = self._ctx(value)
                    elif (
                        value.get("_type_") == "datetime_iso"
                        and len(value) == 2
                        and type(data := value.get("_data_")) is str
                    ):
                        # canonical UTC text already (the usual case) needs no parsing
                        state[name] = (
                            data if len(data) == 32 and data.endswith("+00:00") else self.time(data)
                        )
                    else:
                        state[name] = self._value(value)
                elif kind is list:
                    state[name] = self._value(value)
            if plan is not True:
                sealed = tuple(name for name in plan if _is_sealed(state.get(name)))
                if sealed and self._opener is None:
                    raise Unknown(sealed[0])
        except (Unknown, orjson.JSONDecodeError):
            return None, NOTHING_SEALED
        state["originator_id"] = originator_id
        state["originator_version"] = version
        event = Decoded()
        event.__dict__ = state
        return event, sealed

    def open(self, event: Any, sealed: tuple[str, ...]) -> None:
        """Opens the ``sealed`` personal fields of a parsed event, in place."""
        opener = self._opener
        assert opener is not None  # parse_row sends sealed events to the mapper otherwise
        state = event.__dict__
        for name in sealed:
            state[name] = opener(state[name])

    @staticmethod
    def sealed_subjects(event: Any, sealed: tuple[str, ...]) -> Iterator[str]:
        """The subjects whose keys open the ``sealed`` fields of a parsed event."""
        state = event.__dict__
        for name in sealed:
            yield state[name]["subject"]
            if "text" in state[name]:
                yield state[name]["text"]

    def mapper_decode(
        self, position: int, originator_id: Any, version: int, topic: str, state_bytes: bytes
    ) -> Any:
        """The application mapper's decoding (for what ``parse_row`` leaves to it)."""
        return self.mapper.to_domain_event(
            Notification(
                id=position,
                originator_id=originator_id,
                originator_version=version,
                topic=topic,
                state=state_bytes,
            )
        )

    def _plan(self, topic: str) -> tuple[str, ...] | bool:
        """Per topic: ``False`` (the mapper decodes it), ``True`` (no personal fields) or
        the names of its personal fields."""
        plan: tuple[str, ...] | bool = False
        if self.enabled and self._is_fast(topic):
            spec = PERSONAL_FIELDS.get(event_type(topic))
            plan = tuple(spec.fields) if spec is not None else True
        self._plans[topic] = plan
        return plan

    def _ctx(self, value: dict[str, Any]) -> Any:
        if value.get("_type_") != "ctx" or len(value) != 2:
            return self._value(value)
        data: dict[str, Any] = value["_data_"]
        occurred = data.get("occurred_at")
        if type(occurred) is dict:
            if (
                occurred.get("_type_") == "datetime_iso"
                and len(occurred) == 2
                and type(text := occurred.get("_data_")) is str
            ):
                data["occurred_at"] = (
                    text if len(text) == 32 and text.endswith("+00:00") else self.time(text)
                )
            else:
                data["occurred_at"] = self._value(occurred)
        ctx = Decoded()
        ctx.__dict__ = data
        return ctx

    def _is_fast(self, topic: str) -> bool:
        fast = self._fast_topic.get(topic)
        if fast is None:
            cls = resolve_topic(topic)
            fast = getattr(cls, "class_version", 1) == 1
            self._fast_topic[topic] = fast
        return fast

    def _value(self, value: Any) -> Any:
        if type(value) is dict:
            if len(value) == 2 and "_type_" in value and "_data_" in value:
                kind, data = value["_type_"], value["_data_"]
                if kind == "datetime_iso":
                    return self.time(data)
                if kind == "ctx":
                    return self._ctx({"_type_": kind, "_data_": data})
                if kind == "uuid_hex":
                    return UUID(data)
                raise Unknown(kind)
            return {k: self._value(v) for k, v in value.items()}
        if type(value) is list:
            return [self._value(v) for v in value]
        return value

    def time(self, text: str) -> str:
        """An ISO time as canonical UTC text with microseconds."""
        if text.endswith("+00:00"):
            if len(text) == 32:
                return text
            if len(text) == 25:
                return text[:19] + ".000000+00:00"
        canonical = self._times.get(text)
        if canonical is None:
            moment = datetime.fromisoformat(text)
            if moment.tzinfo is None:
                raise Unknown("naive datetime")
            canonical = moment.astimezone(UTC).isoformat(timespec="microseconds")
            if len(self._times) >= 10_000:
                self._times.clear()
            self._times[text] = canonical
        return canonical


def _is_sealed(value: Any) -> bool:
    """Whether a stored personal field holds a sealed value (the mapper's own test)."""
    return isinstance(value, dict) and "sealed" in value
