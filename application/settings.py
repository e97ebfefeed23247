"""Configuration from the environment: every variable starts with ``SFERUM_AUDIT_``.

The embedded default needs none of them: SQLite files in ``SFERUM_AUDIT_DATA_DIR``.
Production points ``SFERUM_AUDIT_DATABASE_URL`` at PostgreSQL; no code changes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from sferum_audit.domain.errors import InvalidValue


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

    operator_public_keys: str | None = Field(
        default=None,
        description="The deployment operator's Ed25519 public keys (base64 of 32 bytes), "
        "comma-separated; unset: those in operator_public_key_file, else the public half of "
        "the operator key in the data folder (created on first use).",
    )
    operator_public_key_file: Path | None = Field(
        default=None,
        description="File with the operator's public keys, one per line (# comments allowed).",
    )
    operator_key_file: Path | None = Field(
        default=None,
        description="The operator's private key (PEM) that the CLI signs bootstrap commands "
        "with; unset: <data_dir>/keys/operator-key.pem, created on first use (0600).",
    )
    signature_window_seconds: int = Field(
        default=300,
        ge=1,
        description="Largest difference, in seconds, between a command's signed timestamp and "
        "when it reached the service (the replay window).",
    )

    @field_validator("operator_public_keys")
    @classmethod
    def _each_a_public_key(cls, value: str | None) -> str | None:
        """A misconfigured operator key stops the service at start, not at a command."""
        # imported here: the source aggregate (and eventsourcing) is not needed by the
        # commands that only read the views, whose start it would slow
        from sferum_audit.domain.source import check_public_key

        for key in (value or "").split(","):
            if key.strip():
                try:
                    check_public_key(key.strip())
                except InvalidValue as error:
                    raise ValueError(f"{key.strip()[:60]!r}: {error}") from None
        return value

    @property
    def keys_dir(self) -> Path:
        """The folder of the local operator and source keys (0700, files 0600)."""
        return self.data_dir / "keys"

    @property
    def event_store_path(self) -> Path:
        return self.data_dir / "events.sqlite"
