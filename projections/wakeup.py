"""Wakes the log's followers when something is recorded, instead of letting them poll.

What it buys: a recorded act reaches the views within milliseconds, not after the rest of
a poll interval (``scripts/bench_ingest.py``, lag to the audit-trail view).

``LogSignal`` is a process's doorbell: whoever records (the ingest, after each committed
batch) rings it, and every follower registered with it wakes. Ringing twice before a
follower looks is one wake-up; a follower clears its own bell *before* it reads the log,
so a commit that lands while it reads rings again and nothing is missed.

Across processes the doorbell is rung by the database: ``PostgresNotifications`` LISTENs on
the channel ``eventsourcing``'s PostgreSQL recorder NOTIFYs in the transaction of every
insert, so a follower in one process wakes for a batch another process (or another
instance) committed. SQLite has no such channel: there, followers wake at once for what
their own process records, and find other processes' events at the poll interval, which
stays as the fallback everywhere.
"""

from __future__ import annotations

import threading
from contextlib import suppress
from typing import Any

import structlog
from psycopg.sql import SQL, Identifier

log = structlog.get_logger(__name__)


class LogSignal:
    """Thread-safe: ``ring`` from any thread wakes every registered bell (a
    ``threading.Event``) and calls every registered callback."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._bells: list[threading.Event] = []
        self._callbacks: list[Any] = []

    def bell(self) -> threading.Event:
        """A new bell that this signal rings (for one follower)."""
        bell = threading.Event()
        with self._lock:
            self._bells.append(bell)
        return bell

    def on_ring(self, callback: Any) -> None:
        """Calls ``callback()`` on every ring (it must be cheap and thread-safe)."""
        with self._lock:
            self._callbacks.append(callback)

    def forget(self, bell: threading.Event) -> None:
        with self._lock:
            if bell in self._bells:
                self._bells.remove(bell)

    def ring(self) -> None:
        with self._lock:
            bells, callbacks = list(self._bells), list(self._callbacks)
        for bell in bells:
            bell.set()
        for callback in callbacks:
            try:
                callback()
            except Exception as error:  # a stopped event loop, say: the poll still works
                log.debug("wake-up callback failed", error=repr(error))


def notify_channel(recorder: Any) -> str | None:
    """The channel the recorder NOTIFYs on every insert, or ``None`` (not PostgreSQL)."""
    channel = getattr(recorder, "channel_name", None)
    datastore = getattr(recorder, "datastore", None)
    if isinstance(channel, str) and hasattr(datastore, "get_connection"):
        return channel
    return None


class PostgresNotifications:
    """A thread that LISTENs on the event store's channel and rings ``signal`` for each
    NOTIFY (one per committed insert). Reconnects after a failure; ``stop`` ends it."""

    def __init__(self, recorder: Any, signal: LogSignal, *, check_every: float = 0.5) -> None:
        channel = notify_channel(recorder)
        if channel is None:
            raise ValueError("the event store has no NOTIFY channel (not PostgreSQL)")
        self.recorder = recorder
        self.channel = channel
        self.signal = signal
        self.check_every = check_every
        self.listening = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sferum-audit-listen", daemon=True)

    def start(self) -> PostgresNotifications:
        self._thread.start()
        return self

    def stop(self, timeout: float | None = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self._listen()
                failures = 0
            except Exception as error:
                failures += 1
                self.listening.clear()
                log.warning("log notifications lost; listening again", error=repr(error))
                self._stop.wait(min(0.2 * 2**failures, 10.0))

    def _listen(self) -> None:
        with self.recorder.datastore.get_connection() as conn:
            conn.execute(SQL("LISTEN {0}").format(Identifier(self.channel)))
            conn.commit()
            self.listening.set()
            self.signal.ring()  # anything committed before LISTEN took effect
            try:
                while not self._stop.is_set():
                    for _ in conn.notifies(timeout=self.check_every, stop_after=1):
                        self.signal.ring()
            finally:
                with suppress(Exception):  # the connection goes back to the pool
                    conn.execute("UNLISTEN *")
                    conn.commit()
