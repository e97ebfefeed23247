"""Subjects' keys for decoding the log into views: read in bulk, cached within bounds.

The application's ``SubjectKeys`` keeps every key of the region in memory (it loads them
all at the first read), so a replay's memory would grow with the region. The views decode
with the same ``PersonalDataMapper`` over this subclass instead: before a page is decoded,
the keys of the subjects it names are read in one query, and at most ``cache_size`` keys
stay in memory.
A subject whose key is gone reads as erased, exactly as through the application.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Final
from uuid import UUID

import sqlalchemy as sa
from eventsourcing.application import Application
from eventsourcing.persistence import Mapper, Notification

from sferum_audit.application.personal_data_mapper import PersonalDataMapper, event_type
from sferum_audit.application.subject_keys import SubjectKeys, subject_keys
from sferum_audit.domain.personal_data import PERSONAL_FIELDS

SUBJECT: Final = re.compile(rb'"subject":\s*"((?:[^"\\]|\\.)*)"')
MISSING: Final = object()


class ViewKeys(SubjectKeys):
    """Read-only access to subjects' keys with page-wise bulk reads and a bounded cache."""

    def __init__(self, engine: sa.Engine, cache_size: int = 5_000) -> None:
        self._engine = engine
        self._lru: OrderedDict[str, bytes | None] = OrderedDict()
        self.cache_size = cache_size
        self._personal: dict[str, bool] = {}  # topic -> has personal fields

    def key_for_reading(self, subject_id: str) -> bytes | None:
        key = self._lru.get(subject_id, MISSING)
        if key is MISSING:
            self._read([subject_id])
            key = self._lru.get(subject_id)
        else:
            self._lru.move_to_end(subject_id)
        return key if isinstance(key, bytes) else None

    def key_for_writing(self, subject_id: str) -> bytes | None:
        raise RuntimeError("the views never write personal data")

    def forget(self, subject_id: str) -> None:
        """Drops a cached key (its subject was just erased)."""
        self._lru.pop(subject_id, None)

    def prefetch(self, notifications: Sequence[Notification]) -> None:
        """Reads, in one query, the keys of the subjects the page's sealed fields name."""
        self.prefetch_rows([(n.topic, n.state) for n in notifications], topic_at=0, state_at=1)

    def prefetch_rows(
        self, rows: Sequence[Sequence[Any]], *, topic_at: int = 3, state_at: int = 4
    ) -> None:
        """``prefetch`` of stored rows (the topic and state at the given indexes)."""
        wanted: set[str] = set()
        personal = self._personal
        lru = self._lru
        for row in rows:
            topic = row[topic_at]
            sealed = personal.get(topic)
            if sealed is None:
                sealed = personal[topic] = event_type(topic) in PERSONAL_FIELDS
            if sealed:
                for match in SUBJECT.finditer(row[state_at]):
                    subject = match.group(1).decode()
                    if subject not in lru:
                        wanted.add(subject)
        if wanted:
            self._read(sorted(wanted))

    def _read(self, subject_ids: list[str]) -> None:
        found: dict[str, bytes | None] = dict.fromkeys(subject_ids)
        column = subject_keys.c.subject_id
        with self._engine.connect() as conn:
            for start in range(0, len(subject_ids), 500):
                chunk = subject_ids[start : start + 500]
                statement = sa.select(column, subject_keys.c.key).where(column.in_(chunk))
                for subject, key in conn.execute(statement):
                    found[subject] = key
        for subject, key in found.items():
            self._lru[subject] = key  # None: no key (destroyed), so the data reads as erased
            self._lru.move_to_end(subject)
        while len(self._lru) > self.cache_size:
            self._lru.popitem(last=False)


class ViewMapper(PersonalDataMapper):
    """The application's personal-data mapper over ``ViewKeys``; also opens one sealed
    value for the fast decoder."""

    def open_sealed(self, value: dict[str, str]) -> str:
        return self._open(value)


def view_mapper(app: Application[UUID]) -> tuple[Mapper[UUID], ViewKeys | None]:
    """The mapper the views decode with: the application's own, or the same kind of
    personal-data mapper over ``ViewKeys`` when the application has one."""
    mapper = app.mapper
    keys: Any = getattr(app, "subject_keys", None)
    engine = getattr(keys, "_engine", None)
    if not isinstance(mapper, PersonalDataMapper) or not isinstance(engine, sa.Engine):
        return mapper, None
    view_keys = ViewKeys(engine)
    view = ViewMapper(mapper.transcoder, view_keys)
    view.cipher, view.compressor = mapper.cipher, mapper.compressor
    return view, view_keys
