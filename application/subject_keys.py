"""One encryption key per data subject, kept outside the immutable log so it can be destroyed.

Keys live in their own table (a SQLite file in the data folder, or the PostgreSQL
database beside the event store). Destroying a key is the erasure: the log still holds
the ciphertext, and the Merkle proofs over it stay valid, but nobody can read it again.
A forgotten subject stays forgotten: no new key is made for them.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Final

import sqlalchemy as sa
from sqlalchemy.schema import CreateTable

from sferum_audit.application.settings import Settings

KEY_BYTES: Final = 32

metadata = sa.MetaData()
subject_keys = sa.Table(
    "subject_keys",
    metadata,
    sa.Column("subject_id", sa.String(200), primary_key=True),
    sa.Column("key", sa.LargeBinary, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("destroyed_at", sa.DateTime(timezone=True), nullable=True),
)


def sqlalchemy_url(settings: Settings, sqlite_file: str, *, read_only: bool = False) -> str:
    """The SQLAlchemy URL of the configured database (PostgreSQL, or a SQLite file;
    ``read_only``: opened with ``mode=ro``, and the folder is not created)."""
    if settings.database_url:
        scheme, rest = settings.database_url.split("://", 1)
        return (
            f"postgresql+psycopg://{rest}"
            if scheme.startswith("postgres")
            else settings.database_url
        )
    if read_only:
        from sferum_audit.application.store import sqlite_read_only_uri

        return f"sqlite:///{sqlite_read_only_uri(settings.data_dir / sqlite_file)}&uri=true"
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{settings.data_dir / sqlite_file}"


class SubjectKeys:
    """Creates, reads and destroys data subjects' keys, with an in-memory cache.

    The first read loads every key in one query (a region has some hundred thousand
    people: a few megabytes); writers create the keys a whole batch needs in one
    transaction. A key destroyed by another process stays readable here until restart.
    """

    def __init__(self, engine: sa.Engine, *, create: bool = True) -> None:
        self._engine = engine
        self._cache: dict[str, bytes | None] = {}  # None: destroyed (the subject is forgotten)
        self._loaded_all = False
        self._forgotten_seen_until = datetime.min.replace(tzinfo=UTC)
        self._lock = threading.Lock()
        if create:
            self._create_table(engine)

    @staticmethod
    def _create_table(engine: sa.Engine) -> None:
        """Creates the key table unless it exists, also when instances start together.

        SQLite's IF NOT EXISTS settles a race between two new instances; PostgreSQL's
        does not (the loser can hit a unique violation in its catalogue), so there the
        creators take turns under a transaction-scoped advisory lock.
        """
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                conn.execute(
                    sa.text("SELECT pg_advisory_xact_lock(hashtext(:name))"),
                    {"name": "sferum-audit subject keys"},
                )
            conn.execute(CreateTable(subject_keys, if_not_exists=True))

    @classmethod
    def from_settings(cls, settings: Settings, *, read_only: bool = False) -> SubjectKeys:
        """The key store of ``settings``; ``read_only``: opened for reading only."""
        url = sqlalchemy_url(settings, "subject-keys.sqlite", read_only=read_only)
        options: dict[str, object] = {}
        if read_only and url.startswith("postgresql"):
            options["connect_args"] = {"options": "-c default_transaction_read_only=on"}
        if settings.database_schema and url.startswith("postgresql"):
            options["execution_options"] = {
                "schema_translate_map": {None: settings.database_schema}
            }
        return cls(sa.create_engine(url, **options), create=not read_only)

    def close(self) -> None:
        """Releases the database connections."""
        self._engine.dispose()

    def ensure_keys(self, subject_ids: Iterable[str]) -> None:
        """Makes sure every subject that is not forgotten has a key, in one transaction."""
        wanted = sorted({s for s in subject_ids if s not in self._cache})
        if not wanted:
            return
        # Insert first: in a running service nearly every subject not cached is new, so
        # one statement usually settles them all. A subject already stored (by another
        # writer, or before a restart, or forgotten) conflicts and is read as stored.
        from sqlalchemy.dialects.postgresql import insert as pg_insert  # writers only
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        now = datetime.now(UTC)
        dialect_insert = sqlite_insert if self._engine.dialect.name == "sqlite" else pg_insert
        statement = (
            dialect_insert(subject_keys)
            .on_conflict_do_nothing(index_elements=["subject_id"])
            .returning(subject_keys.c.subject_id, subject_keys.c.key)
        )
        rows = [{"subject_id": s, "key": os.urandom(KEY_BYTES), "created_at": now} for s in wanted]
        with self._engine.begin() as conn:
            made = list(conn.execute(statement, rows))
        with self._lock:
            for subject_id, key in made:
                self._cache[subject_id] = key
        stored_before = {s for s in wanted if s not in self._cache}
        if stored_before:
            self._load(stored_before)

    def refresh_forgotten(self) -> None:
        """Drops keys that another process destroyed since the last look (one small query),
        so a long-running service stops reading and writing a forgotten person's data."""
        with self._engine.connect() as conn:
            rows = list(
                conn.execute(
                    sa.select(subject_keys.c.subject_id, subject_keys.c.destroyed_at).where(
                        subject_keys.c.destroyed_at > self._forgotten_seen_until
                    )
                )
            )
        with self._lock:
            for subject_id, destroyed_at in rows:
                self._cache[subject_id] = None
                if destroyed_at.tzinfo is None:  # SQLite returns naive UTC
                    destroyed_at = destroyed_at.replace(tzinfo=UTC)
                self._forgotten_seen_until = max(self._forgotten_seen_until, destroyed_at)

    def key_for_writing(self, subject_id: str) -> bytes | None:
        """The subject's key, made on first use; ``None`` if the subject was forgotten."""
        self.ensure_keys([subject_id])
        return self._cache.get(subject_id)

    def key_for_reading(self, subject_id: str) -> bytes | None:
        """The subject's key, or ``None`` if there is none (never made, or destroyed)."""
        if subject_id in self._cache:
            return self._cache[subject_id]
        if not self._loaded_all:
            self._load(None)
            self._loaded_all = True
        if subject_id not in self._cache:
            self._load({subject_id})  # made by another process since the full load
        return self._cache.get(subject_id)

    def _load(self, subject_ids: set[str] | None) -> None:
        query = sa.select(subject_keys.c.subject_id, subject_keys.c.key)
        with self._engine.connect() as conn:
            if subject_ids is None:
                rows = list(conn.execute(query))
            else:
                rows = []
                ids = sorted(subject_ids)
                for start in range(0, len(ids), 500):
                    chunk = ids[start : start + 500]
                    rows += conn.execute(query.where(subject_keys.c.subject_id.in_(chunk)))
        with self._lock:
            for subject_id, key in rows:
                self._cache[subject_id] = key

    def destroy(self, subject_id: str) -> bool:
        """Destroys the subject's key for good; ``False`` if it was already gone."""
        now = datetime.now(UTC)
        with self._engine.begin() as conn:
            existing = conn.execute(
                sa.select(subject_keys.c.destroyed_at).where(
                    subject_keys.c.subject_id == subject_id
                )
            ).first()
            if existing is None:
                conn.execute(
                    sa.insert(subject_keys).values(
                        subject_id=subject_id, key=None, created_at=now, destroyed_at=now
                    )
                )
                destroyed = True
            elif existing[0] is None:
                conn.execute(
                    sa.update(subject_keys)
                    .where(subject_keys.c.subject_id == subject_id)
                    .values(key=None, destroyed_at=now)
                )
                destroyed = True
            else:
                destroyed = False
        with self._lock:
            self._cache[subject_id] = None
        return destroyed
