"""Helpers of the integrity tests: a small recorded history, and a database administrator
who rewrites the stored events behind the application's back, on SQLite or PostgreSQL."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

from cli_environment import cli_environment

from sferum_audit.application.commands import parse_command
from sferum_audit.application.sample_school import sample_school
from sferum_audit.application.service import AuditLog
from sferum_audit.application.settings import Settings
from sferum_audit.integrity.sealer import Sealer


def record_school(app: AuditLog, school_id: str, commands: int | None = None) -> int:
    """Record the sample school's commands (the first ``commands`` of them); return the head."""
    batch = [parse_command(c) for c in sample_school(school_id)[:commands]]
    results = app.handle_batch(batch)
    refused = [r.as_dict() for r in results if not r.accepted]
    assert not refused, refused
    return head(app)


def head(app: AuditLog) -> int:
    return int(app.recorder.max_notification_id() or 0)


Row = tuple[int, bytes, int, str, bytes]


class Dba:
    """Direct SQL on the event table, as a database administrator could run it."""

    def __init__(self, settings: Settings, app: AuditLog) -> None:
        self.settings = settings
        self.postgres = settings.database_url is not None
        table = app.recorder.events_table_name  # type: ignore[attr-defined]
        if self.postgres:
            self.table = f'"{settings.database_schema or "public"}"."{table}"'
            self.pos = "notification_id"
            self.ph = "%s"
        else:
            self.table = table
            self.pos = "rowid"
            self.ph = "?"

    @contextmanager
    def cursor(self) -> Iterator[Any]:
        if self.postgres:
            import psycopg

            assert self.settings.database_url is not None
            with psycopg.connect(self.settings.database_url) as conn, conn.cursor() as cur:
                yield cur
                conn.commit()
        else:
            conn = sqlite3.connect(self.settings.event_store_path)
            try:
                cur = conn.cursor()
                yield cur
                conn.commit()
            finally:
                conn.close()

    def _sql(self, text: str) -> str:
        return text.replace("{t}", self.table).replace("{pos}", self.pos).replace("?", self.ph)

    def _oid(self, value: UUID) -> Any:
        return value if self.postgres else value.hex

    def row(self, position: int) -> Row:
        with self.cursor() as cur:
            cur.execute(
                self._sql(
                    "SELECT {pos}, originator_id, originator_version, topic, state FROM {t} "
                    "WHERE {pos} = ?"
                ),
                (position,),
            )
            found = cur.fetchone()
        assert found is not None, position
        pos, oid, version, topic, state = found
        oid_bytes = oid.bytes if isinstance(oid, UUID) else bytes.fromhex(oid)
        return int(pos), oid_bytes, int(version), str(topic), bytes(state)

    def set_state(self, position: int, state: bytes | None) -> None:
        with self.cursor() as cur:
            cur.execute(self._sql("UPDATE {t} SET state = ? WHERE {pos} = ?"), (state, position))

    def flip_byte(self, position: int, offset: int = 40) -> None:
        state = bytearray(self.row(position)[4])
        state[offset] ^= 0x01
        self.set_state(position, bytes(state))

    def set_version(self, position: int, version: int) -> None:
        with self.cursor() as cur:
            cur.execute(
                self._sql("UPDATE {t} SET originator_version = ? WHERE {pos} = ?"),
                (version, position),
            )

    def delete(self, position: int) -> None:
        with self.cursor() as cur:
            cur.execute(self._sql("DELETE FROM {t} WHERE {pos} = ?"), (position,))

    def delete_from(self, position: int) -> None:
        with self.cursor() as cur:
            cur.execute(self._sql("DELETE FROM {t} WHERE {pos} >= ?"), (position,))

    def insert(self, position: int, state: bytes = b'{"forged": true}', topic: str = "") -> None:
        """Put a forged event at ``position`` (which must be free)."""
        topic = topic or "sferum_audit.domain.chat:Chat.ContentRemoved"
        with self.cursor() as cur:
            cur.execute(
                self._sql(
                    "INSERT INTO {t} ({pos}, originator_id, originator_version, topic, state) "
                    "VALUES (?, ?, ?, ?, ?)"
                ),
                (position, self._oid(uuid4()), 1, topic, state),
            )

    def shift_insert(self, position: int) -> None:
        """Insert a forged event at ``position``, moving every later event up by one."""
        with self.cursor() as cur:
            cur.execute(self._sql("UPDATE {t} SET {pos} = -{pos} WHERE {pos} >= ?"), (position,))
            cur.execute(self._sql("UPDATE {t} SET {pos} = 1 - {pos} WHERE {pos} < 0"))
        self.insert(position)

    def swap(self, first: int, second: int) -> None:
        """Swap the topics and stored bytes of two events."""
        _, _, _, topic_a, state_a = self.row(first)
        _, _, _, topic_b, state_b = self.row(second)
        with self.cursor() as cur:
            update = self._sql("UPDATE {t} SET topic = ?, state = ? WHERE {pos} = ?")
            cur.execute(update, (topic_b, state_b, first))
            cur.execute(update, (topic_a, state_a, second))


class Cli:
    """Runs ``sferum-audit ARGS`` in-process against one store."""

    def __init__(self, settings: Settings) -> None:
        from typer.testing import CliRunner

        self.settings = settings
        self.runner = CliRunner()

    def __call__(self, *args: str, **env: str | None) -> Any:
        from sferum_audit.cli.main import app as cli_app

        return self.runner.invoke(cli_app, list(args), env=cli_environment(self.settings) | env)


def one_error_line(result: Any, *fragments: str, exit_code: int = 1) -> str:
    """The command failed with one ``error:`` line on stderr naming every fragment."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == exit_code, (result.exit_code, result.output)
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


@dataclass
class SealedLog:
    settings: Settings
    app: AuditLog
    sealer: Sealer
    dba: Dba
    school: str

    @property
    def data_dir(self):  # type: ignore[no-untyped-def]
        return self.settings.data_dir
