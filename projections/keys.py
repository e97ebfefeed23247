"""Subjects' keys for decoding the log into views: read in bulk, cached within bounds.

The application's ``SubjectKeys`` keeps every key of the region in memory (it loads them
all at the first read), so a replay's memory would grow with the region. The views decode
with the same ``PersonalDataMapper`` over this subclass instead: before a page is decoded,
the keys of the subjects it names are read in one query, and at most ``cache_size`` keys
stay in memory, each with its AES-GCM cipher object once one was needed (making one per
sealed field cost more than the decryption itself).
A subject whose key is gone reads as erased, exactly as through the application.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any, Final
from uuid import UUID

import sqlalchemy as sa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.application import Application
from eventsourcing.persistence import Mapper, Notification, Transcoder

from sferum_audit.application.personal_data_mapper import (
    PersonalDataMapper,
    event_type,
    open_sealed,
)
from sferum_audit.application.subject_keys import KeyWrapping, SubjectKeys, subject_keys
from sferum_audit.domain.personal_data import ERASED, PERSONAL_FIELDS

SUBJECT: Final = re.compile(rb'"(?:subject|text)":\s*"((?:[^"\\]|\\.)*)"')
MISSING: Final = object()


class _Key:
    """A cached key, with its cipher object made on first use."""

    __slots__ = ("aead", "key")

    def __init__(self, key: bytes) -> None:
        self.key = key
        self.aead: AESGCM | None = None


class ViewKeys(SubjectKeys):
    """Read-only access to subjects' keys with page-wise bulk reads and a bounded cache."""

    def __init__(
        self, engine: sa.Engine, cache_size: int = 5_000, *, wrapping: KeyWrapping | None = None
    ) -> None:
        self._engine = engine
        self._wrapping = wrapping
        # keys per query: PostgreSQL may plan a long IN list as a scan of the whole table
        # (it did here: about 8 ms a query at 70,000 subjects), where 64 lookups by key
        # take well under 1 ms
        self._chunk = 64 if engine.dialect.name == "postgresql" else 500
        self._lru: OrderedDict[str, _Key | None] = OrderedDict()
        self.cache_size = cache_size
        self._personal: dict[str, bool] = {}  # topic -> has personal fields

    def _cached(self, subject_id: str) -> _Key | None:
        cached = self._lru.get(subject_id, MISSING)
        if cached is MISSING:
            self._read([subject_id])
            return self._lru.get(subject_id)
        self._lru.move_to_end(subject_id)
        assert cached is None or isinstance(cached, _Key)
        return cached

    def key_for_reading(self, subject_id: str) -> bytes | None:
        cached = self._cached(subject_id)
        return None if cached is None else cached.key

    def cipher_for_reading(self, subject_id: str) -> AESGCM | None:
        """The subject's AES-GCM cipher (``None``: no key, so their data reads as erased)."""
        cached = self._cached(subject_id)
        if cached is None:
            return None
        if cached.aead is None:
            cached.aead = AESGCM(cached.key)
        return cached.aead

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
        self.prefetch_subjects(self.subjects_named(rows, topic_at=topic_at, state_at=state_at))

    def subjects_named(
        self, rows: Sequence[Sequence[Any]], *, topic_at: int = 3, state_at: int = 4
    ) -> set[str]:
        """The subjects the sealed fields of stored rows name, found in the stored bytes
        (for rows that are not parsed before they are decoded)."""
        found: set[str] = set()
        personal = self._personal
        for row in rows:
            topic = row[topic_at]
            sealed = personal.get(topic)
            if sealed is None:
                sealed = personal[topic] = event_type(topic) in PERSONAL_FIELDS
            if sealed:
                for match in SUBJECT.finditer(row[state_at]):
                    found.add(match.group(1).decode())
        return found

    def prefetch_subjects(self, subjects: Iterable[str]) -> None:
        """Reads, in one query, the keys of ``subjects`` that are not cached."""
        lru = self._lru
        wanted = {subject for subject in subjects if subject not in lru}
        if wanted:
            self._read(sorted(wanted))

    def _read(self, subject_ids: list[str]) -> None:
        found: dict[str, bytes | None] = dict.fromkeys(subject_ids)
        column = subject_keys.c.subject_id
        with self._engine.connect() as conn:
            for start in range(0, len(subject_ids), self._chunk):
                chunk = subject_ids[start : start + self._chunk]
                statement = sa.select(column, subject_keys.c.key).where(column.in_(chunk))
                for subject, key in conn.execute(statement):
                    found[subject] = self._unwrap(subject, key)
        for subject, key in found.items():
            # None: no key (destroyed), so the data reads as erased
            self._lru[subject] = None if key is None else _Key(key)
            self._lru.move_to_end(subject)
        while len(self._lru) > self.cache_size:
            self._lru.popitem(last=False)


class ViewMapper(PersonalDataMapper):
    """The application's personal-data mapper over ``ViewKeys``; also opens one sealed
    value for the fast decoder."""

    def __init__(self, transcoder: Transcoder, keys: ViewKeys) -> None:
        super().__init__(transcoder, keys)
        self._view_keys = keys

    def open_sealed(self, value: dict[str, str]) -> str:
        return self._open(value)

    def _open(self, sealed: dict[str, str]) -> str:
        """``PersonalDataMapper._open`` with the subject's cipher object cached."""
        if "text" in sealed:  # free text under two keys (see personal_data_mapper)
            return super()._open(sealed)
        subject = sealed["subject"]
        plain = open_sealed(self._view_keys.cipher_for_reading(subject), subject, sealed["sealed"])
        return ERASED if plain is None else plain.decode()


def view_mapper(app: Application[UUID]) -> tuple[Mapper[UUID], ViewKeys | None]:
    """The mapper the views decode with: the application's own, or the same kind of
    personal-data mapper over ``ViewKeys`` when the application has one."""
    mapper = app.mapper
    keys: Any = getattr(app, "subject_keys", None)
    engine = getattr(keys, "_engine", None)
    if not isinstance(mapper, PersonalDataMapper) or not isinstance(engine, sa.Engine):
        return mapper, None
    view_keys = ViewKeys(engine, wrapping=getattr(keys, "_wrapping", None))
    view = ViewMapper(mapper.transcoder, view_keys)
    view.cipher, view.compressor = mapper.cipher, mapper.compressor
    return view, view_keys
