"""Settings of the sealer and verifier, from ``SFERUM_AUDIT_*`` like the rest, and the
places in the data folder where the integrity evidence is kept.

The evidence lives in ``<data_dir>/integrity/``, outside the event store, so that whoever
administers the database cannot also rewrite it: the signing key, the append-only
checkpoint log, the per-position leaf file and the sealer's resumable state.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from sferum_audit.integrity.keys import load_or_create_signing_key, load_signing_key_from_text
from sferum_audit.integrity.note import is_valid_key_name

__all__ = ["IntegrityPaths", "IntegritySettings", "default_origin"]


class IntegritySettings(BaseSettings):
    """The integrity settings; the data folder and the store come from ``Settings``."""

    model_config = SettingsConfigDict(env_prefix="SFERUM_AUDIT_", extra="ignore")

    checkpoint_interval_seconds: float = Field(
        default=10.0,
        ge=0,
        description="Longest time a new event waits for a signed checkpoint (0: sign on "
        "every sealing round that found new events).",
    )
    seal_poll_seconds: float = Field(
        default=1.0, gt=0, description="Seconds between looks at the log while following it."
    )
    signing_key: SecretStr | None = Field(
        default=None,
        description="The checkpoint signing key (Ed25519: PKCS#8 PEM, or base64 of the seed "
        "or of PKCS#8 DER); unset means <data_dir>/integrity/signing-key.pem, made on first "
        "use.",
    )
    log_origin: str | None = Field(
        default=None,
        description="The log's name on its checkpoints (their first line and the key name); "
        "unset means the origin of the existing checkpoints, or sferum-audit/<host name>.",
    )
    integrity_page_size: int = Field(
        default=20_000, ge=1, description="Events read from the store per query."
    )

    def load_signing_key(self, paths: IntegrityPaths) -> Ed25519PrivateKey:
        """The configured key, or the key file in the data folder (created on first use)."""
        if self.signing_key is not None:
            try:
                return load_signing_key_from_text(self.signing_key.get_secret_value())
            except ValueError as exc:
                raise ValueError(f"SFERUM_AUDIT_SIGNING_KEY: {exc}") from None
        return load_or_create_signing_key(paths.signing_key)

    def has_key(self, paths: IntegrityPaths) -> bool:
        """Tell whether a signing key is configured or already exists."""
        return self.signing_key is not None or paths.signing_key.exists()


def default_origin() -> str:
    """``sferum-audit/<host name>``, made a valid key name."""
    host = "".join(ch for ch in socket.gethostname() if ch.isalnum() or ch in "-._") or "local"
    return f"sferum-audit/{host}"


def check_origin(origin: str) -> str:
    """``origin``, if it can be a checkpoint origin and key name."""
    if not is_valid_key_name(origin):
        raise ValueError(
            f"log origin {origin!r} cannot name a key: it must be non-empty, without "
            "spaces or '+' (SFERUM_AUDIT_LOG_ORIGIN)"
        )
    return origin


@dataclass(frozen=True, slots=True)
class IntegrityPaths:
    """The integrity files of one data folder."""

    folder: Path

    @classmethod
    def of(cls, data_dir: Path) -> IntegrityPaths:
        """The integrity folder inside ``data_dir``."""
        return cls(data_dir / "integrity")

    @property
    def signing_key(self) -> Path:
        """The PEM signing key made on first use (mode 0600)."""
        return self.folder / "signing-key.pem"

    @property
    def checkpoints(self) -> Path:
        """The append-only log of signed checkpoints, one JSON object a line."""
        return self.folder / "checkpoints.log"

    @property
    def leaves(self) -> Path:
        """The leaf hash of every sealed position, 32 bytes each, in position order."""
        return self.folder / "leaves.bin"

    @property
    def state(self) -> Path:
        """The sealer's resumable tree state (a cache of what ``leaves`` implies)."""
        return self.folder / "tree-state.bin"

    @property
    def lock(self) -> Path:
        """Held while one sealer appends, so two never interleave."""
        return self.folder / "sealer.lock"
