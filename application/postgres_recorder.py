"""The PostgreSQL event recorder, inserting a batch's events as four binary arrays.

``eventsourcing``'s recorder sends a batch as one array of a composite type in text
format; psycopg builds that text in Python, escaping every field with regular
expressions, which cost more than PostgreSQL's own work on a batch of a thousand
commands. This recorder sends the same rows as four arrays (ids, versions, topics,
states) in binary format, which psycopg dumps in C. Everything else is the library's:
the same table, the same exclusive table lock that keeps positions in commit order, the
same NOTIFY, the same positions returned in the order of the events given.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore, PostgresFactory
from eventsourcing.utils import Environment, EnvType
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

READ_ONLY_POSTGRES_OPTIONS = "-c default_transaction_read_only=on"


class BinaryInsertRecorder(PostgresApplicationRecorder):
    """``PostgresApplicationRecorder`` with a binary, column-wise batch insert."""

    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name=events_table_name)
        self.insert_events_statement = SQL(
            "INSERT INTO {schema}.{table} (originator_id, originator_version, topic, state) "
            "SELECT * FROM unnest(%b::{id_type}[], %b::bigint[], %b::text[], %b::bytea[]) "
            "RETURNING notification_id"
        ).format(
            schema=Identifier(datastore.schema),
            table=Identifier(events_table_name),
            id_type=Identifier(datastore.originator_id_type),
        )

    def create_table(self) -> None:
        """Creates the library's tables and types; safe when instances start together.

        PostgreSQL's IF NOT EXISTS is not safe against a concurrent creator (the loser
        can hit a unique violation in the catalogue), so instances starting together on
        a new database take turns, under an advisory lock named after the schema.
        """
        lock = f"sferum-audit schema {self.datastore.schema}"
        with self.datastore.get_connection() as conn:
            conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (lock,))
            try:
                super().create_table()
            finally:
                conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (lock,))

    def _insert_stored_events(
        self,
        curs: Cursor[DictRow],
        stored_events: Sequence[StoredEvent],
        **kwargs: Any,
    ) -> None:
        self._lock_table(curs)
        self._notify_channel(curs)
        curs.execute(
            self.insert_events_statement,
            (
                [e.originator_id for e in stored_events],
                [e.originator_version for e in stored_events],
                [e.topic for e in stored_events],
                [e.state for e in stored_events],
            ),
            prepare=True,
        )


class ReadOnlyPostgresFactory(PostgresFactory):
    """``eventsourcing.postgres``'s factory whose connections open every transaction
    read-only (``default_transaction_read_only``), for commands that only read: such a
    command cannot change the store, whatever it runs."""

    def __init__(self, env: Environment | EnvType | None):
        super().__init__(env)
        given = self.datastore.pool.kwargs
        kwargs: dict[str, Any] = dict(given) if isinstance(given, dict) else {}
        kwargs["options"] = READ_ONLY_POSTGRES_OPTIONS
        self.datastore.pool.kwargs = kwargs  # the pool connects on first use, after this
        # Connect once now: an unreachable database fails at once with the driver's own
        # message, where the lazily opened pool would only time out.
        probe = {k: v for k, v in kwargs.items() if k != "row_factory"}
        psycopg.connect(**probe, connect_timeout=10).close()
