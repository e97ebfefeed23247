"""Settings of the NATS pipeline (ingest, outbound relay, dead letters, metrics).

Every variable starts with ``SFERUM_AUDIT_`` like the application's own settings
(``sferum_audit.application.settings``); the embedded default needs none of them.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from sferum_audit.application.commands import CommandLimits


def default_instance_id() -> str:
    """Host, process and a random suffix: unique even when a restarted process reuses a pid."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class PipelineSettings(BaseSettings):
    """How `sferum-audit serve` talks to NATS JetStream; documented in the README."""

    model_config = SettingsConfigDict(env_prefix="SFERUM_AUDIT_", extra="ignore")

    nats_url: str = Field(
        default="nats://127.0.0.1:4222",
        description="NATS server URL(s), comma-separated for a cluster. Ignored with "
        "--embedded-nats, which starts its own server.",
    )
    nats_creds_file: Path | None = Field(
        default=None,
        description="NATS credentials file (user JWT + nkey seed, as `nsc` writes it) the "
        "service authenticates with.",
    )
    nats_nkey_seed_file: Path | None = Field(
        default=None,
        description="File holding the service's NATS nkey seed (SU...), for nkey "
        "authentication without a JWT.",
    )
    nats_user: str | None = Field(default=None, description="NATS user name of the service.")
    nats_password: SecretStr | None = Field(
        default=None,
        description="Password of SFERUM_AUDIT_NATS_USER (prefer SFERUM_AUDIT_NATS_PASSWORD_FILE).",
    )
    nats_password_file: Path | None = Field(
        default=None, description="File whose first line is the password of the NATS user."
    )
    nats_token: SecretStr | None = Field(
        default=None, description="NATS authentication token (prefer the _FILE form)."
    )
    nats_token_file: Path | None = Field(
        default=None, description="File whose first line is the NATS authentication token."
    )
    nats_tls_ca_file: Path | None = Field(
        default=None,
        description="CA certificate(s) (PEM) that NATS servers' certificates must chain "
        "to; setting any TLS file turns TLS on.",
    )
    nats_tls_cert_file: Path | None = Field(
        default=None, description="Client certificate (PEM) for NATS mutual TLS."
    )
    nats_tls_key_file: Path | None = Field(
        default=None, description="Private key (PEM) of SFERUM_AUDIT_NATS_TLS_CERT_FILE."
    )
    reply_prefixes: Annotated[list[str], NoDecode] = Field(
        default=["_INBOX."],
        description="Subjects an answer may be published to must start with one of these "
        "(comma-separated or a JSON list); any other reply_to is ignored and logged.",
    )
    embedded_nats_port: int = Field(
        default=0,
        description="Port of the embedded nats-server (--embedded-nats); 0 picks a free one.",
    )
    embedded_nats_dir: str | None = Field(
        default=None,
        description="JetStream store of the embedded nats-server; default <data dir>/nats.",
    )
    subject_prefix: str = Field(
        default="sferum",
        description="First token of every subject: <prefix>.commands.<school>.<type>, "
        "<prefix>.events.<school>.<Aggregate.Event>, ...",
    )
    commands_stream: str = Field(
        default="SFERUM_COMMANDS", description="JetStream stream that stores incoming commands."
    )
    events_stream: str = Field(
        default="SFERUM_EVENTS",
        description="JetStream stream of recorded events and rejections, in global order.",
    )
    dead_letter_stream: str = Field(
        default="SFERUM_DEAD_LETTERS",
        description="JetStream stream keeping commands that failed every delivery.",
    )
    coordination_bucket: str = Field(
        default="sferum_audit_coordination",
        description="JetStream key-value bucket of instance heartbeats, partition leases "
        "and the relay's position.",
    )
    consumer_prefix: str = Field(
        default="sferum-audit-ingest",
        description="Durable consumer names are <prefix>-p<partition>.",
    )
    partitions: int = Field(
        default=8,
        ge=1,
        le=1024,
        description="Schools are hashed into this many partitions (NATS partition(), "
        "FNV-1a of school_id); each partition is consumed by one instance at a time. Change "
        "it only with the commands stream drained.",
    )
    stream_replicas: int = Field(
        default=1, ge=1, le=5, description="Replicas of every stream (3 on a 3-node cluster)."
    )
    duplicate_window: float = Field(
        default=120.0,
        gt=0,
        description="Seconds JetStream remembers a Nats-Msg-Id (the command id) to drop a "
        "repeated publish; the store's command-id check covers later repeats.",
    )
    commands_max_age: float = Field(
        default=0.0,
        ge=0,
        description="Seconds the commands stream keeps a command nobody has acked (0: no "
        "limit). Acked commands go at once (interest retention).",
    )
    batch_size: int = Field(
        default=500, ge=1, le=10_000, description="Commands fetched and recorded per batch."
    )
    batch_timeout: float = Field(
        default=0.05,
        gt=0,
        description="Seconds an idle pull waits for the first command before it asks again. "
        "A batch never waits to fill: it takes what the stream has pending and goes, so "
        "light load makes small batches and a backlog full ones.",
    )
    ack_wait: float = Field(
        default=5.0,
        gt=0,
        description="Seconds JetStream waits for an ack before it redelivers (a crashed "
        "consumer's batch comes back after this); a batch being worked on is kept in "
        "progress every third of it.",
    )
    max_deliveries: int = Field(
        default=5,
        ge=1,
        description="Tries of a command (JetStream's deliveries and the retries the ingest "
        "holds in order) before it goes to the dead-letter stream.",
    )
    backoff: Annotated[list[float], NoDecode] = Field(
        default=[1.0, 5.0, 15.0, 60.0],
        description="Seconds before the next try after the 1st, 2nd, ... failed try "
        "(comma-separated or a JSON list; the last value repeats); the command and what "
        "follows it in its partition wait, in order.",
    )
    lease_ttl: float = Field(
        default=5.0,
        ge=1.0,
        description="Seconds a partition lease (or an instance heartbeat) lives unless "
        "renewed; a crashed instance's partitions move after this (an instance restarted "
        "with the same INSTANCE_ID takes its own leases back at once).",
    )
    rebalance_interval: float = Field(
        default=1.0,
        gt=0,
        description="Seconds between heartbeats, lease renewals and rebalancing checks.",
    )
    max_command_bytes: int = Field(
        default=262_144,
        ge=1024,
        description="Largest command accepted, in bytes; a larger one is refused as "
        "command-too-large (also the limit of `sferum-audit record` per line).",
    )
    max_command_depth: int = Field(
        default=32,
        ge=4,
        le=200,
        description="Deepest JSON nesting accepted; deeper input is refused as "
        "command-too-deep (a valid command nests 3 levels).",
    )
    max_number_digits: int = Field(
        default=100,
        ge=1,
        le=4300,
        description="Most digits of an integer in a command; a longer one is refused as "
        "number-too-long.",
    )
    relay_enabled: bool = Field(
        default=True, description="Publish recorded events to the events stream."
    )
    seal_enabled: bool = Field(
        default=True,
        description="Run the sealer: signed Merkle checkpoints follow the log while serving.",
    )
    relay_batch_size: int = Field(
        default=1000, ge=1, description="Events read from the log and published per round."
    )
    relay_poll_interval: float = Field(
        default=0.2, gt=0, description="Seconds the relay waits when it has caught up."
    )
    metrics_port: int | None = Field(
        default=9464,
        description="Port of the Prometheus /metrics endpoint; unset or 0 disables it.",
    )
    metrics_host: str = Field(
        default="127.0.0.1",
        description="Address the metrics endpoint binds; loopback unless configured "
        "(0.0.0.0 for a scraper on another host).",
    )
    graceful_timeout: float = Field(
        default=30.0,
        gt=0,
        description="Seconds SIGTERM waits for in-flight batches to finish and be acked.",
    )
    workers: int | None = Field(
        default=None,
        ge=1,
        le=256,
        description="Worker processes of `serve` (--workers), each an instance of its own "
        "(<INSTANCE_ID>-w<n>) sharing the partitions, under one supervisor; unset: the number "
        "of cores.",
    )
    instance_id: str = Field(
        default_factory=default_instance_id,
        description="Name of this process in leases and logs (default: host-pid-random).",
    )

    @field_validator("backoff", mode="before")
    @classmethod
    def _split_backoff(cls, value: object) -> object:
        if isinstance(value, str):
            if value.strip().startswith("["):
                return json.loads(value)
            return [float(part) for part in value.split(",") if part.strip()]
        return value

    @field_validator("reply_prefixes", mode="before")
    @classmethod
    def _split_prefixes(cls, value: object) -> object:
        if isinstance(value, str):
            if value.strip().startswith("["):
                return json.loads(value)
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _one_authentication(self) -> PipelineSettings:
        chosen = [
            name
            for name, value in (
                ("SFERUM_AUDIT_NATS_CREDS_FILE", self.nats_creds_file),
                ("SFERUM_AUDIT_NATS_NKEY_SEED_FILE", self.nats_nkey_seed_file),
                ("SFERUM_AUDIT_NATS_USER", self.nats_user),
                ("SFERUM_AUDIT_NATS_TOKEN(_FILE)", self.nats_token or self.nats_token_file),
            )
            if value
        ]
        if len(chosen) > 1:
            raise ValueError(f"choose one NATS authentication, not {' and '.join(chosen)}")
        if (self.nats_password or self.nats_password_file) and not self.nats_user:
            raise ValueError("a NATS password needs SFERUM_AUDIT_NATS_USER")
        if bool(self.nats_tls_cert_file) != bool(self.nats_tls_key_file):
            raise ValueError(
                "SFERUM_AUDIT_NATS_TLS_CERT_FILE and SFERUM_AUDIT_NATS_TLS_KEY_FILE go together"
            )
        return self

    @field_validator("metrics_port", mode="before")
    @classmethod
    def _empty_port(cls, value: object) -> object:
        if value in ("", "0", 0):
            return None
        return value

    def command_limits(self) -> CommandLimits:
        return CommandLimits(
            max_bytes=self.max_command_bytes,
            max_depth=self.max_command_depth,
            max_number_digits=self.max_number_digits,
        )

    def delay_after(self, delivery: int) -> float:
        """Seconds before the next delivery once delivery number ``delivery`` failed."""
        if not self.backoff:
            return 0.0
        return self.backoff[min(max(delivery, 1), len(self.backoff)) - 1]
