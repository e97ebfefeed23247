"""Configuration from the environment: every variable starts with ``SFERUM_AUDIT_``.

The embedded default needs none of them: SQLite files in ``SFERUM_AUDIT_DATA_DIR``.
Production points ``SFERUM_AUDIT_DATABASE_URL`` at PostgreSQL; no code changes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every setting of the service, documented in the README's Configuration section."""

    model_config = SettingsConfigDict(env_prefix="SFERUM_AUDIT_", extra="ignore")

    data_dir: Path = Field(
        default=Path("sferum-audit-data"),
        description="Folder for the embedded SQLite event store, views and keys.",
    )
    database_url: str | None = Field(
        default=None,
        description="PostgreSQL URL for the event store (postgresql://user:pass@host:port/db); "
        "unset means SQLite in the data folder.",
    )
    database_schema: str | None = Field(
        default=None, description="PostgreSQL schema for the event store tables (default: public)."
    )
    database_pool_size: int = Field(default=5, description="PostgreSQL connections kept open.")
    aggregate_cache_size: int = Field(
        default=20_000, description="Aggregates kept in memory between commands (0 = none)."
    )
    conflict_retries: int = Field(
        default=5, description="How often a command is retried after a concurrent write."
    )
    clock_skew_seconds: float = Field(
        default=300,
        ge=0,
        description="How far ahead of the service's clock a command's occurred_at may be "
        "before it is refused (occurred-at-in-future).",
    )
    log_format: Literal["auto", "console", "json"] = Field(
        default="auto", description="'console', 'json', or 'auto' (console on a terminal)."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Lowest level of log lines written."
    )
    key_encryption_key: str | None = Field(
        default=None,
        description="Base64 of a 32-byte secret that seals the key-encryption-key file "
        "(from a secret store); unset: the file is kept in the clear, mode 0600.",
    )
    key_encryption_key_file: Path | None = Field(
        default=None,
        description="File holding the key-encryption keys that wrap every person's key; "
        "unset: <data_dir>/keys/subject-kek.json. Instances sharing a database share it.",
    )

    @property
    def kek_path(self) -> Path:
        return self.key_encryption_key_file or self.data_dir / "keys" / "subject-kek.json"

    @property
    def event_store_path(self) -> Path:
        return self.data_dir / "events.sqlite"
