"""Committing a page of views in a thread while the next page is read and parsed.

A commit is the database's work alone (writing the page to the WAL, now and then a
checkpoint on SQLite; the round trip on PostgreSQL) and the driver runs it without the
GIL, so a catch-up hands each page's commit to one background thread and reads and parses
the next page meanwhile. Only the driver's ``commit()`` runs in the thread (any Python work
there would make the two threads wait for each other's GIL); SQLAlchemy's side of it and
the release of the connection are settled in the caller's thread by ``wait``.

One commit at a time: the next page's transaction begins only after the previous commit
is done, so the views still move page by page, each view's rows with its position in one
transaction, and a failed commit is raised before anything else is written.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from types import TracebackType

Settle = Callable[[BaseException | None], None]  # told how the commit went, in order


class BackgroundCommits:
    """One commit at a time, run in a thread; ``wait`` for it before the next write."""

    def __init__(self) -> None:
        self._executor: ThreadPoolExecutor | None = None
        self._pending: tuple[Future[None], Settle] | None = None

    def submit(self, commit: Callable[[], None], settle: Settle) -> None:
        """Runs ``commit`` in the thread (after the previous one is settled); ``settle``
        is called with its error, or ``None``, by the next ``wait``."""
        self.wait()
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="sferum-audit-commit")
        self._pending = (self._executor.submit(commit), settle)

    def wait(self) -> None:
        """Waits for the commit in flight, if any, settles it and raises its error."""
        pending, self._pending = self._pending, None
        if pending is None:
            return
        future, settle = pending
        error = future.exception()
        settle(error)
        if error is not None:
            raise error

    def __enter__(self) -> BackgroundCommits:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Waits for the last commit (its error is raised unless one is on its way)."""
        try:
            if kind is None:
                self.wait()
            else:
                with suppress(Exception):  # the error already on its way is the one to see
                    self.wait()
        finally:
            if self._executor is not None:
                self._executor.shutdown()
