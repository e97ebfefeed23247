"""Reading the log's next pages in a thread while the current one is applied.

On PostgreSQL, reading a page is mostly waiting for the server (the query, and a
megabyte or so of rows over the socket), and the driver waits without the GIL and then
makes the page's rows in one call. So a thread that reads the next pages while the views
apply the current one lets the server work meanwhile. (On SQLite the driver gives the GIL
up and takes it back for every row, so two busy threads would mostly wait for each other:
there the pages are read in turn.)

The pages come out in order, exactly as reading them one by one would give them; at most
``depth`` pages wait, so memory stays bounded. The thread only reads: every view still
writes its rows and its position in one transaction, in the caller's thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final, TypeVar

T = TypeVar("T")

_ITEM: Final = 0
_END: Final = 1
_ERROR: Final = 2


@contextmanager
def read_ahead(pages: Iterator[T], depth: int = 2) -> Iterator[Iterator[T]]:
    """``pages``, produced by a thread up to ``depth`` ahead of the consumer. Leaving the
    block (done, stopped early, or failed) stops the thread and waits for it; an error in
    the thread is raised in the consumer where its page would have come."""
    handover: queue.Queue[tuple[int, Any]] = queue.Queue(maxsize=depth)
    stopped = threading.Event()

    def put(item: tuple[int, Any]) -> bool:
        while not stopped.is_set():
            try:
                handover.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for page in pages:
                if not put((_ITEM, page)):
                    return
            put((_END, None))
        except BaseException as error:  # handed to the consumer, raised there
            put((_ERROR, error))

    def consume() -> Iterator[T]:
        while True:
            kind, value = handover.get()
            if kind == _END:
                return
            if kind == _ERROR:
                raise value
            yield value

    thread = threading.Thread(target=produce, name="sferum-audit-read-ahead", daemon=True)
    thread.start()
    try:
        yield consume()
    finally:
        stopped.set()
        thread.join()
