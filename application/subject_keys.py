"""One encryption key per data subject, kept outside the immutable log so it can be destroyed.

Keys live in their own table (a SQLite file in the data folder, or the PostgreSQL
database beside the event store). Destroying a key is the erasure: the log still holds
the ciphertext, and the Merkle proofs over it stay valid, but nobody can read it again.
A forgotten subject stays forgotten: no new key is made for them.

**Keys are stored wrapped.** Each key is stored encrypted (AES-256-GCM, the subject bound
as associated data) under a key-encryption key (KEK) held outside the database, in a
file (``KeyWrapping``; ``SFERUM_AUDIT_KEY_ENCRYPTION_KEY_FILE``, default
``<data_dir>/keys/subject-kek.json``, mode 0600), itself sealed with
``SFERUM_AUDIT_KEY_ENCRYPTION_KEY`` when that secret is set. Destroying a key rotates
the KEK: a new one is made, every live key is re-wrapped under it in the same
transaction that empties the destroyed key's row, and the old KEK is then deleted from
the file. A copy of the destroyed key's row left behind (a dead row version before
PostgreSQL's VACUUM reclaims it, the write-ahead log, a backup of the database) holds it
wrapped under a KEK that no longer exists, so it opens nothing. On PostgreSQL the key
table is vacuumed after each destruction. The hook for a KMS is ``KekStore``: an object
that loads and saves the KEK file's bytes (e.g. encrypted by a KMS key) replaces the file.

Writers and the rotation take turns under a table lock (PostgreSQL: ROW EXCLUSIVE vs SHARE
ROW EXCLUSIVE; SQLite: its write lock), and a writer reads the KEK file again under that
lock when it changed, so no key is ever wrapped under a KEK about to be deleted. Keys
stored before wrapping (32 raw bytes) are read as they are and wrapped at the next
rotation.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Protocol

import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
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


WRAPPED_MAGIC: Final = b"KEK1"
KEK_ID_BYTES: Final = 8
NONCE_BYTES: Final = 12


class KekStore(Protocol):
    """Where the key-encryption keys live: the bytes of a small JSON document."""

    def load(self) -> bytes | None: ...

    def update(self, change: Callable[[bytes | None], bytes]) -> None:
        """Replaces the document with ``change(current)``, one updater at a time."""

    def version(self) -> object:
        """Changes whenever another process saved (a cheap look, no read)."""


class FileKekStore:
    """The KEK document in a file (mode 0600), replaced atomically under an exclusive
    ``flock`` on ``<file>.lock`` (processes of one machine, or a file system whose locks
    reach every instance), optionally sealed with a secret from outside
    (``SFERUM_AUDIT_KEY_ENCRYPTION_KEY``)."""

    def __init__(self, path: Path, secret: bytes | None = None) -> None:
        self.path = path
        self._secret = AESGCM(secret) if secret else None

    def load(self) -> bytes | None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        if self._secret is None:
            return raw
        try:
            return self._secret.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], b"sferum-kek")
        except InvalidTag:
            raise RuntimeError(
                f"{self.path} does not open with SFERUM_AUDIT_KEY_ENCRYPTION_KEY"
            ) from None

    def update(self, change: Callable[[bytes | None], bytes]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self._save(change(self.load()))
        finally:
            os.close(lock)  # releases the lock

    def _save(self, data: bytes) -> None:
        if self._secret is not None:
            nonce = os.urandom(NONCE_BYTES)
            data = nonce + self._secret.encrypt(nonce, data, b"sferum-kek")
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)

    def version(self) -> object:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return None
        return (stat.st_ino, stat.st_mtime_ns, stat.st_size)


class KeyWrapping:
    """Wraps and unwraps subjects' keys under the current KEK; rotates it.

    The document lists the KEKs oldest first. A rotation adds a KEK and makes it current
    (``begin_rotation``, under the key table's rotation lock), re-wraps every key, and then
    deletes the KEKs older than its own (``finish_rotation``): a rotation that began
    meanwhile keeps its newer KEK."""

    def __init__(self, store: KekStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._seen: object = object()
        self._current = b""
        self._keks: dict[bytes, bytes] = {}
        self._ciphers: dict[bytes, AESGCM] = {}
        self.refresh()

    def refresh(self) -> None:
        """Reads the KEK document again if it changed (made on first use)."""
        with self._lock:
            version = self.store.version()
            if version == self._seen and self._keks:
                return
            raw = self.store.load()
            if raw is None:
                self.store.update(lambda current: current or _new_document())
                raw = self.store.load()
                version = self.store.version()
            assert raw is not None
            current, keks = _read_document(raw)
            self._current, self._keks = current, keks
            self._ciphers = {k: AESGCM(v) for k, v in keks.items()}
            self._seen = version

    @property
    def current_id(self) -> bytes:
        return self._current

    def wrap(self, subject_id: str, key: bytes, kek_id: bytes | None = None) -> bytes:
        kek_id = kek_id or self._current
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[kek_id].encrypt(nonce, key, subject_id.encode())
        return WRAPPED_MAGIC + kek_id + nonce + sealed

    def unwrap(self, subject_id: str, stored: bytes | None) -> bytes | None:
        """The key, or ``None`` (destroyed, or wrapped under a KEK that no longer exists)."""
        if stored is None:
            return None
        stored = bytes(stored)
        if not stored.startswith(WRAPPED_MAGIC):
            return stored  # stored before wrapping
        kek_id = stored[4 : 4 + KEK_ID_BYTES]
        if kek_id not in self._ciphers:
            self.refresh()
        kek = self._ciphers.get(kek_id)
        if kek is None:
            return None
        body = stored[4 + KEK_ID_BYTES :]
        try:
            return kek.decrypt(body[:NONCE_BYTES], body[NONCE_BYTES:], subject_id.encode())
        except InvalidTag:
            return None

    def begin_rotation(self) -> bytes:
        """Adds a new KEK and makes it current (the older ones stay until ``finish``)."""
        new_id = os.urandom(KEK_ID_BYTES)

        def add(raw: bytes | None) -> bytes:
            _, keks = _read_document(raw or _new_document())
            keks[new_id] = AESGCM.generate_key(256)
            return _kek_document(new_id, keks)

        self.store.update(add)
        self.refresh()
        return new_id

    def finish_rotation(self, kek_id: bytes) -> None:
        """Deletes every KEK older than ``kek_id``: what they wrapped opens no more."""

        def drop_older(raw: bytes | None) -> bytes:
            current, keks = _read_document(raw or _new_document())
            ids = list(keks)
            if kek_id not in ids:  # not ours to judge: keep everything
                return raw or _new_document()
            kept = {k: keks[k] for k in ids[ids.index(kek_id) :]}
            return _kek_document(current if current in kept else kek_id, kept)

        self.store.update(drop_older)
        self.refresh()


def _new_document() -> bytes:
    kek_id = os.urandom(KEK_ID_BYTES)
    return _kek_document(kek_id, {kek_id: AESGCM.generate_key(256)})


def _read_document(raw: bytes) -> tuple[bytes, dict[bytes, bytes]]:
    document = json.loads(raw)
    keks = {bytes.fromhex(k): base64.b64decode(v) for k, v in document["keys"].items()}
    return bytes.fromhex(document["current"]), keks


def _kek_document(current: bytes, keys: dict[bytes, bytes]) -> bytes:
    return json.dumps(
        {
            "current": current.hex(),
            "keys": {
                k.hex(): base64.b64encode(v).decode() for k, v in keys.items()
            },  # oldest first
        }
    ).encode()


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
    Without a ``wrapping`` (tools and tests that build one on a bare engine) keys are
    stored as they are.
    """

    def __init__(
        self, engine: sa.Engine, wrapping: KeyWrapping | None = None, *, create: bool = True
    ) -> None:
        self._engine = engine
        self._wrapping = wrapping
        self._cache: dict[str, bytes | None] = {}  # None: destroyed (the subject is forgotten)
        self._loaded_all = False
        self._forgotten_seen_until = datetime.min.replace(tzinfo=UTC)
        self._lock = threading.Lock()
        if engine.dialect.name == "sqlite":
            sa.event.listen(engine, "connect", _sqlite_secure_delete)
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
        secret = (
            base64.b64decode(settings.key_encryption_key) if settings.key_encryption_key else None
        )
        wrapping: KeyWrapping | None = None
        if not read_only or settings.kek_path.exists():
            # a read-only store made before wrapping has no KEK file: its keys are raw
            wrapping = KeyWrapping(FileKekStore(settings.kek_path, secret))
        return cls(sa.create_engine(url, **options), wrapping, create=not read_only)

    def close(self) -> None:
        """Releases the database connections."""
        self._engine.dispose()

    # -- wrapping and the writers' lock ----------------------------------------------------------

    def _unwrap(self, subject_id: str, stored: bytes | None) -> bytes | None:
        if self._wrapping is None or stored is None:
            return None if stored is None else bytes(stored)
        return self._wrapping.unwrap(subject_id, stored)

    def _wrap(self, subject_id: str, key: bytes) -> bytes:
        return key if self._wrapping is None else self._wrapping.wrap(subject_id, key)

    def _take_turn(self, conn: sa.Connection, *, rotating: bool = False) -> None:
        """Waits for the rotation of the KEK (or, ``rotating``, for every writer), then
        reads the KEK file again if it changed (see the module docstring)."""
        if self._engine.dialect.name == "postgresql":
            mode = "SHARE ROW EXCLUSIVE" if rotating else "ROW EXCLUSIVE"
            table = conn.dialect.identifier_preparer.format_table(subject_keys)
            schema = (conn.get_execution_options().get("schema_translate_map") or {}).get(None)
            if schema:
                table = f'"{schema}".{table}'
            conn.execute(sa.text(f"LOCK TABLE {table} IN {mode} MODE"))
        else:  # a write statement takes SQLite's write lock for the whole transaction
            conn.execute(sa.update(subject_keys).where(sa.false()).values(key=None))
        if self._wrapping is not None:
            self._wrapping.refresh()

    # -- keys ----------------------------------------------------------------------------------

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
            .returning(subject_keys.c.subject_id)
        )
        plain = {s: os.urandom(KEY_BYTES) for s in wanted}
        with self._engine.begin() as conn:
            self._take_turn(conn)
            rows = [
                {"subject_id": s, "key": self._wrap(s, key), "created_at": now}
                for s, key in plain.items()
            ]
            made = [row[0] for row in conn.execute(statement, rows)]
        with self._lock:
            for subject_id in made:
                self._cache[subject_id] = plain[subject_id]
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
        opened = [(subject_id, self._unwrap(subject_id, key)) for subject_id, key in rows]
        with self._lock:
            for subject_id, key in opened:
                self._cache[subject_id] = key

    def destroy(self, subject_id: str) -> bool:
        """Destroys the subject's key for good; ``False`` if it was already gone.

        With a wrapping, the KEK is rotated under the rotation lock, in the same
        transaction (see the module docstring), and on PostgreSQL the key table is
        vacuumed afterwards."""
        if self._already_destroyed(subject_id):
            with self._lock:
                self._cache[subject_id] = None
            return False
        now = datetime.now(UTC)
        new_kek = None
        with self._engine.begin() as conn:
            self._take_turn(conn, rotating=True)
            if self._wrapping is not None:
                new_kek = self._wrapping.begin_rotation()
            destroyed = self._empty_row(conn, subject_id, now)
            if new_kek is not None:
                self._rewrap_all(conn, new_kek)
        with self._lock:
            self._cache[subject_id] = None
        if new_kek is not None and self._wrapping is not None:
            self._wrapping.finish_rotation(new_kek)
            self.vacuum()
        return destroyed

    def _already_destroyed(self, subject_id: str) -> bool:
        with self._engine.connect() as conn:
            found = conn.execute(
                sa.select(subject_keys.c.destroyed_at).where(
                    subject_keys.c.subject_id == subject_id
                )
            ).first()
        return found is not None and found[0] is not None

    @staticmethod
    def _empty_row(conn: sa.Connection, subject_id: str, now: datetime) -> bool:
        existing = conn.execute(
            sa.select(subject_keys.c.destroyed_at).where(subject_keys.c.subject_id == subject_id)
        ).first()
        if existing is None:
            conn.execute(
                sa.insert(subject_keys).values(
                    subject_id=subject_id, key=None, created_at=now, destroyed_at=now
                )
            )
            return True
        if existing[0] is None:
            conn.execute(
                sa.update(subject_keys)
                .where(subject_keys.c.subject_id == subject_id)
                .values(key=None, destroyed_at=now)
            )
            return True
        return False

    def _rewrap_all(self, conn: sa.Connection, kek_id: bytes) -> None:
        """Every live key not yet under ``kek_id`` wrapped under it (in the caller's
        transaction)."""
        assert self._wrapping is not None
        prefix = WRAPPED_MAGIC + kek_id
        rows = conn.execute(
            sa.select(subject_keys.c.subject_id, subject_keys.c.key).where(
                subject_keys.c.key.is_not(None)
            )
        )
        changes = []
        for subject_id, stored in rows:
            if bytes(stored).startswith(prefix):
                continue
            key = self._wrapping.unwrap(subject_id, stored)
            if key is None:  # under no KEK known: left as it is, for an operator to see
                continue
            changes.append(
                {"sid": subject_id, "wrapped": self._wrapping.wrap(subject_id, key, kek_id)}
            )
        if changes:
            conn.execute(
                sa.update(subject_keys)
                .where(subject_keys.c.subject_id == sa.bindparam("sid"))
                .values(key=sa.bindparam("wrapped")),
                changes,
            )

    def vacuum(self) -> None:
        """PostgreSQL: VACUUM the key table, so dead row versions (each holding a key
        wrapped under a KEK now destroyed) are reclaimed soon rather than some day."""
        if self._engine.dialect.name != "postgresql":
            return
        with self._engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            table = conn.dialect.identifier_preparer.format_table(subject_keys)
            schema = (conn.get_execution_options().get("schema_translate_map") or {}).get(None)
            if schema:
                table = f'"{schema}".{table}'
            conn.execute(sa.text(f"VACUUM {table}"))


def _sqlite_secure_delete(dbapi_connection: object, _record: object) -> None:
    """Freed cells are zeroed: an emptied key leaves no copy in the file's free space."""
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]  # a DB-API connection
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()
