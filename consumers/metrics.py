"""Prometheus metrics of the pipeline: ingest rate, rejects, dead letters, relay and view lag.

Each pipeline has its own registry (tests run several in one process); ``serve`` exposes it
on ``SFERUM_AUDIT_METRICS_PORT`` at ``/metrics``.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)

LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


class Metrics:
    """The pipeline's instruments, on one registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.commands = Counter(
            "sferum_audit_ingest_commands",
            "Commands taken from the commands stream, by outcome "
            "(recorded, duplicate, rejected, dead_lettered, retried).",
            ["outcome"],
            registry=r,
        )
        self.batches = Counter(
            "sferum_audit_ingest_batches", "Batches handled by the ingest.", registry=r
        )
        self.batch_seconds = Histogram(
            "sferum_audit_ingest_batch_seconds",
            "Time to validate, record and ack one batch.",
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.ingest_lag = Histogram(
            "sferum_audit_ingest_lag_seconds",
            "From the command's arrival in JetStream to its ack after recording.",
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.rejections = Counter(
            "sferum_audit_rejections", "Rejected commands, by error code.", ["code"], registry=r
        )
        self.dead_letters = Counter(
            "sferum_audit_dead_letters",
            "Commands moved to the dead-letter stream after their last delivery failed.",
            registry=r,
        )
        self.transient_failures = Counter(
            "sferum_audit_ingest_transient_failures",
            "Batches that could not be recorded (store unavailable) and were redelivered.",
            registry=r,
        )
        self.partitions_owned = Gauge(
            "sferum_audit_partitions_owned",
            "Command partitions this instance consumes now.",
            registry=r,
        )
        self.relay_events = Counter(
            "sferum_audit_relay_events",
            "Recorded events published to the events stream.",
            registry=r,
        )
        self.relay_position = Gauge(
            "sferum_audit_relay_position",
            "Global position of the last event the relay published (PubAck received).",
            registry=r,
        )
        self.log_position = Gauge(
            "sferum_audit_log_position", "Highest global position in the event log.", registry=r
        )
        self.relay_lag = Gauge(
            "sferum_audit_relay_lag_events",
            "Recorded events not yet published to the events stream.",
            registry=r,
        )
        self.relay_foreign = Counter(
            "sferum_audit_relay_foreign_messages",
            "Messages found on the events stream that the log does not hold (the relay did "
            "not publish them); each one is an alarm, logged with its stream sequence.",
            registry=r,
        )
        self.relay_blocked = Gauge(
            "sferum_audit_relay_blocked_position",
            "Log position the relay cannot publish (0 when none); it is retried, never "
            "skipped, and the log says why.",
            registry=r,
        )
        self.view_lag = Gauge(
            "sferum_audit_view_lag_events",
            "Recorded events the read views have not applied yet (when a follower runs).",
            registry=r,
        )

    def expose(self) -> bytes:
        return generate_latest(self.registry)

    def serve(self, port: int, host: str = "127.0.0.1") -> object:
        """Starts the /metrics HTTP endpoint in a daemon thread; returns the server."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return server
