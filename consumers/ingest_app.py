"""The audit log as the ingest runs it: the same application, reading a batch's aggregates
with one query instead of one query per aggregate.

``AuditLog.handle_batch`` looks up every aggregate a command touches through the
repository. With the cache's fast-forward each lookup is a database round trip (to see
whether newer events exist), a lookup of something absent (every command's receipt, every
aggregate being created) is never cached, and each cached aggregate is deep-copied.
``IngestAuditLog`` keeps the decisions exactly as they are and changes only how the batch's
aggregates are read, on PostgreSQL:

* **one version check per batch**: before the batch is decided, one index-only query reads
  the current version of every aggregate the batch is likely to touch (found from the
  commands' fields with the domain's own ``create_id`` functions). A cached aggregate at
  that version is handed to the batch as it is (taken out of the cache, so no other
  reader can see it while the batch changes it); an aggregate without events is known to
  be absent; anything else is read as before.
* **write-through**: after a successful save, each aggregate whose in-memory version equals
  the version just saved goes back into the cache (a created one is built from its events),
  so the next batch finds it current without reading its events again.

It changes no decision: the check is a snapshot taken just before the batch is decided (the
moment the per-lookup fast-forward would read), optimistic concurrency still guards every
save, a write conflict drops the snapshot so ``handle_batch``'s own retry reads everything
afresh, and an aggregate whose batch failed never returns to the cache. On SQLite a lookup
is an in-process call and the plain path is kept.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from typing import Any
from uuid import UUID

from eventsourcing.application import (
    AggregateNotFoundError,
    ProjectorFunction,
    Repository,
    project_aggregate,
)
from eventsourcing.persistence import IntegrityError, Recording
from eventsourcing.postgres import PostgresApplicationRecorder

from sferum_audit.application.authentication import Authenticator
from sferum_audit.application.commands import PERSON_ID_FIELDS, Command
from sferum_audit.application.handlers import class_chat_id, parents_chat_id
from sferum_audit.application.local_sources import authenticator_for
from sferum_audit.application.receipts import CommandReceipt
from sferum_audit.application.service import AuditLog, CommandResult
from sferum_audit.application.settings import Settings
from sferum_audit.application.store import APPLICATION_NAME, persistence_environment
from sferum_audit.application.subject_keys import SubjectKeys
from sferum_audit.domain.access_incident import AccessIncident
from sferum_audit.domain.base import AuditedAggregate
from sferum_audit.domain.chat import Chat
from sferum_audit.domain.elzhur_account import ElzhurAccount
from sferum_audit.domain.erasure import Erasure
from sferum_audit.domain.invitation import Invitation
from sferum_audit.domain.profile import Profile
from sferum_audit.domain.school import School
from sferum_audit.domain.source import Source

_school_id = lru_cache(maxsize=1 << 14)(School.create_id)
_profile_id = lru_cache(maxsize=1 << 17)(Profile.create_id)
_chat_id = lru_cache(maxsize=1 << 16)(Chat.create_id)
_invitation_id = lru_cache(maxsize=1 << 16)(Invitation.create_id)
_incident_id = lru_cache(maxsize=1 << 12)(AccessIncident.create_id)
_account_id = lru_cache(maxsize=1 << 16)(ElzhurAccount.create_id)
_erasure_id = lru_cache(maxsize=1 << 12)(Erasure.create_id)
_source_id = lru_cache(maxsize=1 << 12)(Source.create_id)


def likely_reads(command: Command) -> list[UUID]:
    """Ids of the aggregates a command's handler will probably look up (a hint only)."""
    school = command.school_id
    ids = [
        CommandReceipt.create_id(command.command_id),
        _school_id(school),
        _profile_id(command.actor.id),
    ]
    credentials = command.credentials
    if credentials is not None and credentials.signature is not None:
        ids.append(_source_id(credentials.signature.source_id))
    fields = command.__dict__
    for name in PERSON_ID_FIELDS:
        value = fields.get(name)
        if isinstance(value, str):
            ids.append(_profile_id(value))
    if isinstance(value := fields.get("chat_id"), str):
        ids.append(_chat_id(school, value))
    for name in ("class_id", "to_class_id"):
        value = fields.get(name)
        if isinstance(value, str):
            ids.append(_chat_id(school, class_chat_id(value)))
            ids.append(_chat_id(school, parents_chat_id(value)))
    if isinstance(value := fields.get("invitation_id"), str):
        ids.append(_invitation_id(school, value))
    if isinstance(value := fields.get("incident_id"), str):
        ids.append(_incident_id(school, value))
    if isinstance(value := fields.get("elzhur_account_id"), str):
        ids.append(_account_id(value))
    if isinstance(value := fields.get("erasure_id"), str):
        ids.append(_erasure_id(school, value))
    return ids


@dataclass
class _Batch:
    """What one thread's current batch knows about its aggregates."""

    current: dict[UUID, Any] = field(default_factory=dict)
    absent: set[UUID] = field(default_factory=set)
    # Each aggregate handed to the batch, with its version then.
    handed_out: dict[UUID, tuple[Any, int]] = field(default_factory=dict)
    saved: set[UUID] = field(default_factory=set)


class PrefetchingRepository(Repository[UUID]):
    """A repository that can be told, per thread, what the current batch will read."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._local = threading.local()

    def batch(self) -> _Batch | None:
        batch: _Batch | None = getattr(self._local, "batch", None)
        return batch

    def begin(self, current: dict[UUID, Any], absent: set[UUID]) -> None:
        self._local.batch = _Batch(current, absent)

    def end(self) -> None:
        self._local.batch = None

    def forget_snapshot(self) -> None:
        """After a write conflict: read everything afresh, keep tracking what is handed out."""
        batch = self.batch()
        if batch is not None:
            batch.current.clear()
            batch.absent.clear()

    def get(
        self,
        aggregate_id: UUID,
        *,
        version: int | None = None,
        projector_func: ProjectorFunction[Any, Any] = project_aggregate,
        fastforward_skipping: bool = False,
        deepcopy_from_cache: bool = True,
    ) -> Any:
        batch = self.batch()
        if batch is None or version is not None:
            return super().get(
                aggregate_id,
                version=version,
                projector_func=projector_func,
                fastforward_skipping=fastforward_skipping,
                deepcopy_from_cache=deepcopy_from_cache,
            )
        if aggregate_id in batch.absent:
            raise AggregateNotFoundError(aggregate_id)
        aggregate = self._claim(aggregate_id, batch.current.pop(aggregate_id, None))
        if aggregate is None:
            aggregate = super().get(
                aggregate_id,
                projector_func=projector_func,
                fastforward_skipping=fastforward_skipping,
                deepcopy_from_cache=deepcopy_from_cache,
            )
        batch.handed_out[aggregate_id] = (aggregate, aggregate.version)
        return aggregate

    def put_back_unchanged(self) -> None:
        """Returns to the cache what the batch read but did not change (same version)."""
        batch = self.batch()
        if batch is None or self.cache is None:
            return
        for aggregate_id, (aggregate, version) in batch.handed_out.items():
            if aggregate_id not in batch.saved and aggregate.version == version:
                self.cache.put(aggregate_id, aggregate)

    def _claim(self, aggregate_id: UUID, candidate: Any) -> Any:
        """Takes a current cached aggregate out of the cache for this batch alone (no copy):
        only one thread can take it; it returns to the cache only through a save."""
        if candidate is None or self.cache is None:
            return None
        try:
            claimed = self.cache.get(aggregate_id, evict=True)
        except KeyError:
            return None  # another batch has it: read it from the store instead
        if claimed is not candidate:
            self.cache.put(aggregate_id, claimed)
            return None
        return candidate


class IngestAuditLog(AuditLog):
    """``AuditLog`` with batch reads on PostgreSQL (see the module docstring)."""

    # The same application, so the same tables: eventsourcing names them after ``name``,
    # which a subclass would otherwise change to its own class name.
    name = APPLICATION_NAME

    def __init__(
        self,
        env: dict[str, str],
        subject_keys: SubjectKeys,
        authenticator: Authenticator | None = None,
    ) -> None:
        super().__init__(env=env, subject_keys=subject_keys, authenticator=authenticator)
        self.prefetch_enabled = (
            isinstance(self.recorder, PostgresApplicationRecorder)
            and self.repository.cache is not None
        )

    def construct_repository(self) -> Repository[UUID]:
        base = super().construct_repository()
        maxsize = getattr(base.cache, "maxsize", None)
        return PrefetchingRepository(
            event_store=self.events,
            snapshot_store=self.snapshots,
            cache_maxsize=maxsize,
            fastforward=base.fastforward,
            fastforward_skipping=base.fastforward_skipping,
            deepcopy_from_cache=base.deepcopy_from_cache,
        )

    @property
    def batch_repository(self) -> PrefetchingRepository:
        repository = self.repository
        assert isinstance(repository, PrefetchingRepository)
        return repository

    def handle_batch(self, commands: Sequence[Command]) -> list[CommandResult]:
        if not self.prefetch_enabled or not commands:
            return super().handle_batch(commands)
        ids = list(dict.fromkeys(i for command in commands for i in likely_reads(command)))
        current, absent = self.current_versions(ids)
        repository = self.batch_repository
        repository.begin(current, absent)
        try:
            return super().handle_batch(commands)
        finally:
            repository.put_back_unchanged()
            repository.end()

    def save_events(self, events: list[AuditedAggregate.Event]) -> list[Recording[UUID]]:
        repository = self.batch_repository
        try:
            recordings = super().save_events(events)
        except IntegrityError:
            # Someone else wrote: forget the snapshot, let the retry read afresh.
            repository.forget_snapshot()
            raise
        batch = repository.batch()
        if batch is not None:
            self._write_through(batch, recordings)
        return recordings

    def _write_through(self, batch: _Batch, recordings: Sequence[Any]) -> None:
        cache = self.repository.cache
        if cache is None:
            return
        saved: dict[UUID, list[Any]] = {}
        for recording in recordings:
            event = recording.domain_event
            saved.setdefault(event.originator_id, []).append(event)
        for aggregate_id, events in saved.items():
            last = events[-1]
            if type(last).__qualname__.startswith("CommandReceipt."):
                continue  # read again only for a repeated command id
            batch.saved.add(aggregate_id)
            handed = batch.handed_out.get(aggregate_id)
            if handed is not None and handed[0].version == last.originator_version:
                cache.put(aggregate_id, handed[0])
            elif handed is None and events[0].originator_version == 1:
                created: Any = None
                for event in events:  # what project_aggregate does, without its type checks
                    created = event.mutate(created)
                if created is not None:
                    cache.put(aggregate_id, created)

    # -- the version check -------------------------------------------------------------------

    def current_versions(self, ids: Sequence[UUID]) -> tuple[dict[UUID, Any], set[UUID]]:
        """The cached aggregates that are current, and the ids with no events at all."""
        cache = self.repository.cache
        assert cache is not None
        versions = self._versions(ids)
        current: dict[UUID, Any] = {}
        absent: set[UUID] = set()
        for aggregate_id in ids:
            version = versions.get(aggregate_id)
            if version is None:
                absent.add(aggregate_id)
                continue
            link = cache.cache.get(aggregate_id)
            if link is None:
                continue
            cached = link[3] if isinstance(link, list) else link  # LRUCache keeps links
            if getattr(cached, "version", None) == version:
                current[aggregate_id] = cached
        return current, absent

    def _versions(self, ids: Sequence[UUID]) -> dict[UUID, int]:
        from psycopg import sql as pgsql
        from psycopg.rows import tuple_row

        recorder: Any = self.recorder
        datastore = recorder.datastore
        query = pgsql.SQL(
            "SELECT originator_id, max(originator_version) AS version FROM {}.{} "
            "WHERE originator_id = ANY(%b::uuid[]) GROUP BY originator_id"
        ).format(
            pgsql.Identifier(datastore.schema or "public"),
            pgsql.Identifier(recorder.events_table_name),
        )
        with datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as cursor:
            cursor.execute(query, (list(ids),))
            return dict(cursor.fetchall())


def build_ingest_audit_log(settings: Settings | None = None) -> IngestAuditLog:
    """The audit log for the ingest, on the configured store."""
    settings = settings or Settings()
    app = IngestAuditLog(
        env=persistence_environment(settings),
        subject_keys=SubjectKeys.from_settings(settings),
        authenticator=authenticator_for(settings),
    )
    app.conflict_retries = settings.conflict_retries
    app.settings = settings
    app.clock_skew = timedelta(seconds=settings.clock_skew_seconds)
    return app
