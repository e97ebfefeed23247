"""The views' tables, declared once and instantiated per table set.

Every view owns its tables. The live set has the plain names; a rebuild writes a second set
whose names carry a suffix (``audit_trail__rb``) and swaps it in by renaming. Constraint
and index names carry a per-build token, because renaming a table keeps them and they
must stay unique in the database. Times are stored as ISO-8601 text in UTC with
microseconds (``2024-12-02T08:01:00.000000+00:00``), so they sort and compare as text and
read back the same from SQLite and PostgreSQL; flags are integers 0/1; lists and maps are
canonical JSON text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

import sqlalchemy as sa

ColumnType = Literal["text", "int"]
T: Final = "text"
I: Final = "int"  # noqa: E741  # short on purpose: the column lists below read as tables


@dataclass(frozen=True, slots=True)
class TableSpec:
    """One table of one view: columns in order, primary key, secondary indexes."""

    name: str
    view: str
    columns: tuple[tuple[str, ColumnType], ...]
    key: tuple[str, ...]
    indexes: tuple[tuple[str, ...], ...] = ()

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)

    def is_text(self, column: str) -> bool:
        return dict(self.columns)[column] == T


def _cols(*pairs: tuple[str, ColumnType]) -> tuple[tuple[str, ColumnType], ...]:
    return pairs


CURRENT_STATE = "current_state"
INVITATIONS = "invitations"
AUDIT_TRAIL = "audit_trail"
INCIDENTS = "incidents"

SPECS: Final[tuple[TableSpec, ...]] = (
    # -- current state ----------------------------------------------------------------------
    TableSpec(
        "cs_schools",
        CURRENT_STATE,
        _cols(
            ("school_uuid", T),
            ("school_id", T),
            ("name", T),
            ("order_ref", T),
            ("registered_at", T),
            ("registered_by", T),
            ("position", I),
        ),
        ("school_uuid",),
        (("school_id",),),
    ),
    TableSpec(
        "cs_administrators",
        CURRENT_STATE,
        _cols(
            ("school_uuid", T),
            ("person_id", T),
            ("order_ref", T),
            ("appointed_at", T),
            ("appointed_by", T),
            ("position", I),
        ),
        ("school_uuid", "person_id"),
    ),
    TableSpec(
        "cs_classes",
        CURRENT_STATE,
        _cols(
            ("school_uuid", T),
            ("class_id", T),
            ("name", T),
            ("class_teacher_id", T),
            ("teacher_assigned_at", T),
            ("created_at", T),
            ("position", I),
        ),
        ("school_uuid", "class_id"),
    ),
    TableSpec(
        "cs_roster",
        CURRENT_STATE,
        _cols(
            ("school_uuid", T),
            ("person_id", T),
            ("roster_role", T),
            ("class_id", T),
            ("admitted_at", T),
            ("position", I),
        ),
        ("school_uuid", "person_id"),
    ),
    TableSpec(
        "cs_chats",
        CURRENT_STATE,
        _cols(
            ("chat_uuid", T),
            ("school_id", T),
            ("chat_id", T),
            ("kind", T),
            ("title", T),
            ("class_id", T),
            ("subject", T),
            ("purpose", T),
            ("creator_id", T),
            ("owner_id", T),
            ("archived", I),
            ("archived_at", T),
            ("created_at", T),
            ("position", I),
        ),
        ("chat_uuid",),
        (("school_id", "chat_id"), ("chat_id",)),
    ),
    TableSpec(
        "cs_moderators",
        CURRENT_STATE,
        _cols(
            ("chat_uuid", T),
            ("profile_id", T),
            ("appointed_at", T),
            ("appointed_by", T),
            ("position", I),
        ),
        ("chat_uuid", "profile_id"),
    ),
    TableSpec(
        "cs_members",
        CURRENT_STATE,
        _cols(
            ("chat_uuid", T),
            ("profile_id", T),
            ("role", T),
            ("via", T),
            ("invitation_id", T),
            ("joined_at", T),
            ("added_by", T),
            ("position", I),
        ),
        ("chat_uuid", "profile_id"),
        (("profile_id",),),
    ),
    TableSpec(
        "cs_blocked",
        CURRENT_STATE,
        _cols(
            ("chat_uuid", T),
            ("profile_id", T),
            ("blocked_at", T),
            ("blocked_by", T),
            ("authority", T),
            ("ground", T),
            ("position", I),
        ),
        ("chat_uuid", "profile_id"),
    ),
    TableSpec(
        "cs_profiles",
        CURRENT_STATE,
        _cols(
            ("profile_uuid", T),
            ("profile_id", T),
            ("school_id", T),
            ("role", T),
            ("display_name", T),
            ("children", T),
            ("elzhur_account_id", T),
            ("linked_at", T),
            ("left_school", I),
            ("registered_at", T),
            ("position", I),
        ),
        ("profile_uuid",),
        (("profile_id",), ("school_id",)),
    ),
    TableSpec(
        "cs_links",
        CURRENT_STATE,
        _cols(
            ("position", I),
            ("profile_uuid", T),
            ("action", T),
            ("elzhur_account_id", T),
            ("reason", T),
            ("actor_id", T),
            ("actor_role", T),
            ("occurred_at", T),
            ("recorded_at", T),
        ),
        ("position",),
        (("profile_uuid",), ("elzhur_account_id",)),
    ),
    # -- invitations --------------------------------------------------------------------------
    TableSpec(
        "inv_invitations",
        INVITATIONS,
        _cols(
            ("invitation_uuid", T),
            ("school_id", T),
            ("invitation_id", T),
            ("chat_id", T),
            ("role", T),
            ("issuer_id", T),
            ("issuer_role", T),
            ("issued_at", T),
            ("recorded_at", T),
            ("expires_at", T),
            ("status", T),
            ("status_at", T),
            ("status_by", T),
            ("redeemed_by", T),
            ("annul_reason", T),
            ("position", I),
            ("last_position", I),
        ),
        ("invitation_uuid",),
        (("school_id", "invitation_id"), ("redeemed_by",), ("status", "issued_at")),
    ),
    # -- audit trail --------------------------------------------------------------------------
    TableSpec(
        "audit_trail",
        AUDIT_TRAIL,
        _cols(
            ("position", I),
            ("school_id", T),
            ("class_id", T),
            ("chat_id", T),
            ("chat_kind", T),
            ("action", T),
            ("moderator_id", T),
            ("moderator_role", T),
            ("authority", T),
            ("ground", T),
            ("target_id", T),
            ("message_id", T),
            ("reason", T),
            ("excerpt", T),
            ("occurred_at", T),
            ("recorded_at", T),
            ("command_id", T),
            ("correlation_id", T),
            ("event_id", T),
            ("source_id", T),
        ),
        ("position",),
        (
            ("moderator_id", "position"),
            ("chat_id", "position"),
            ("target_id", "position"),
            ("authority", "position"),
            ("ground", "position"),
            ("action", "position"),
            ("school_id", "position"),
            ("occurred_at",),
        ),
    ),
    TableSpec(
        "audit_chats",
        AUDIT_TRAIL,
        _cols(("chat_uuid", T), ("school_id", T), ("chat_id", T), ("kind", T), ("class_id", T)),
        ("chat_uuid",),
    ),
    # -- incidents ----------------------------------------------------------------------------
    TableSpec(
        "incidents",
        INCIDENTS,
        _cols(
            ("incident_uuid", T),
            ("school_id", T),
            ("incident_id", T),
            ("state", T),
            ("reporter_id", T),
            ("reporter_role", T),
            ("reporter_relation", T),
            ("affected_profile_id", T),
            ("elzhur_account_id", T),
            ("noticed_at", T),
            ("how_noticed", T),
            ("description", T),
            ("reported_at", T),
            ("recorded_at", T),
            ("told_school_administrator_at", T),
            ("told_platform_operator_at", T),
            ("acknowledged_at", T),
            ("acknowledged_by", T),
            ("closed_at", T),
            ("closed_by", T),
            ("findings", T),
            ("position", I),
            ("last_position", I),
        ),
        ("incident_uuid",),
        (("school_id", "incident_id"), ("affected_profile_id",), ("state",)),
    ),
    TableSpec(
        "incident_steps",
        INCIDENTS,
        _cols(
            ("position", I),
            ("incident_uuid", T),
            ("step", T),
            ("note", T),
            ("actor_id", T),
            ("actor_role", T),
            ("occurred_at", T),
        ),
        ("position",),
        (("incident_uuid",),),
    ),
)

SPEC_BY_NAME: Final = {spec.name: spec for spec in SPECS}
TRACKING = "view_tracking"


def specs_of(view: str) -> tuple[TableSpec, ...]:
    return tuple(spec for spec in SPECS if spec.view == view)


def _sa_type(kind: ColumnType) -> sa.types.TypeEngine[object]:
    return sa.BigInteger() if kind == I else sa.Text()  # type: ignore[return-value]


class TableSet:
    """One instance of every view table (and a tracking table), named with ``suffix``."""

    def __init__(self, suffix: str = "", token: str = "0") -> None:  # noqa: S107  # a name part, not a secret
        self.suffix = suffix
        self.token = token
        self.metadata = sa.MetaData()
        self.tables: dict[str, sa.Table] = {}
        for spec in SPECS:
            self.tables[spec.name] = self._table(spec)
        self.tracking = sa.Table(
            TRACKING + suffix,
            self.metadata,
            sa.Column("view", sa.Text(), nullable=False),
            sa.Column("position", sa.BigInteger(), nullable=False),
            sa.PrimaryKeyConstraint("view", name=f"pk_{TRACKING}_{token}"),
        )

    def _table(self, spec: TableSpec) -> sa.Table:
        columns = [
            sa.Column(name, _sa_type(kind), nullable=name not in spec.key)
            for name, kind in spec.columns
        ]
        return sa.Table(
            spec.name + self.suffix,
            self.metadata,
            *columns,
            sa.PrimaryKeyConstraint(*spec.key, name=f"pk_{spec.name}_{self.token}"),
            sqlite_with_rowid=False,  # the primary key is the table: one B-tree, not two
        )

    def name(self, base: str) -> str:
        return base + self.suffix

    def table(self, base: str) -> sa.Table:
        return self.tables[base]

    def indexes(self, spec: TableSpec) -> list[sa.Index]:
        table = self.tables[spec.name]
        return [
            sa.Index(f"ix_{spec.name}_{i}_{self.token}", *(table.c[c] for c in columns))
            for i, columns in enumerate(spec.indexes)
        ]

    def create(self, conn: sa.Connection, views: list[str], *, with_indexes: bool) -> None:
        """Creates the tables of ``views`` that are missing (and their indexes if asked).

        Instances starting together on a new PostgreSQL database would race between the
        existence check and the creation; there they take turns for the transaction.
        """
        if conn.dialect.name == "postgresql":
            conn.execute(
                sa.text("SELECT pg_advisory_xact_lock(hashtext(:name))"),
                {"name": "sferum-audit views"},
            )
        self.tracking.create(conn, checkfirst=True)
        for view in views:
            for spec in specs_of(view):
                table = self.tables[spec.name]
                if sa.inspect(conn).has_table(table.name):
                    self._add_missing_columns(conn, spec, table)
                    continue
                table.create(conn)
                if with_indexes:
                    for index in self.indexes(spec):
                        index.create(conn)

    @staticmethod
    def _add_missing_columns(conn: sa.Connection, spec: TableSpec, table: sa.Table) -> None:
        """Adds columns a newer version appended to a view (empty, as a rebuild would leave
        them for the events that had no such value: ``audit_trail.source_id`` of events
        recorded before sources), so existing views keep working without a replay."""
        present = {column["name"] for column in sa.inspect(conn).get_columns(table.name)}
        for name, kind in spec.columns:
            if name not in present:
                column_type = "BIGINT" if kind == I else "TEXT"
                conn.exec_driver_sql(
                    f'ALTER TABLE "{table.name}" ADD COLUMN "{name}" {column_type}'
                )

    def create_indexes(self, conn: sa.Connection, views: list[str]) -> None:
        for view in views:
            for spec in specs_of(view):
                for index in self.indexes(spec):
                    index.create(conn)

    def drop(self, conn: sa.Connection, views: list[str]) -> None:
        for view in views:
            for spec in specs_of(view):
                self.tables[spec.name].drop(conn, checkfirst=True)
