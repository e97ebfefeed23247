"""Applies the global log to the views: catch up, follow, and report how far behind.

One page of the log (only the topics some view handles, see ``pages``) is parsed once
(``decoding``) and its subjects' keys read, then dispatched by topic to each view's
handler, sealed fields opened as each event is applied; then, in one transaction, every
view writes its buffered rows and its new position. Events at or before a view's
position are skipped, so a page delivered twice, or a page cut short by a crash, never
counts anything twice: a restarted runner resumes from the stored positions. While a
catch-up commits a page in a thread (``commits``), it reads and parses the next one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final
from uuid import UUID

import structlog
from eventsourcing.application import Application
from eventsourcing.persistence import Notification

from sferum_audit.application.settings import Settings
from sferum_audit.domain.erasure import Erasure
from sferum_audit.projections.commits import BackgroundCommits
from sferum_audit.projections.database import CommitWith, ViewsDatabase
from sferum_audit.projections.decoding import FastDecoder
from sferum_audit.projections.keys import view_mapper
from sferum_audit.projections.pages import PageReader, Row
from sferum_audit.projections.registry import DERIVED_FROM, VIEW_CLASSES, resolve_names
from sferum_audit.projections.settings import ViewsSettings
from sferum_audit.projections.tables import TableSet
from sferum_audit.projections.tracking import ensure_rows, read_positions, write_positions
from sferum_audit.projections.view import Handler, View, topic
from sferum_audit.projections.wakeup import LogSignal, PostgresNotifications, notify_channel

log = structlog.get_logger(__name__)

Progress = Callable[[int], None]
UNPARSED: Final[tuple[None, tuple[str, ...]]] = (None, ())  # the mapper decodes it, if needed


@dataclass(frozen=True, slots=True)
class ParsedPage:
    """A page of rows with their parsed events (``UNPARSED`` where the mapper decodes, or
    no view handles the topic) and the subjects whose keys open their sealed fields."""

    rows: Sequence[Row]
    events: list[tuple[Any, tuple[str, ...]]]
    subjects: set[str]


@dataclass(frozen=True, slots=True)
class ViewLag:
    """How far one view is behind the log's head."""

    view: str
    position: int
    head: int

    @property
    def lag(self) -> int:
        return max(self.head - self.position, 0)

    def as_dict(self) -> dict[str, Any]:
        return {"view": self.view, "position": self.position, "head": self.head, "lag": self.lag}


class ViewRunner:
    """Brings a set of views (in one table set of one database) up to the log."""

    def __init__(
        self,
        app: Application[UUID],
        db: ViewsDatabase,
        views: Sequence[str] | None = None,
        *,
        tables: TableSet | None = None,
        page_size: int = 2000,
        fast_decode: bool = True,
    ) -> None:
        self.app = app
        self.db = db
        self.names = resolve_names(list(views) if views else None)
        self.tables = tables or db.live
        self.page_size = page_size
        self.views: list[View] = [VIEW_CLASSES[name]() for name in self.names]
        routes: dict[str, list[tuple[int, Handler]]] = {}
        for index, view in enumerate(self.views):
            for name, handler in view.routes().items():
                routes.setdefault(name, []).append((index, handler))
        self.routes = routes
        self.topics = tuple(sorted(routes))
        self.mapper, self.keys = view_mapper(app)
        self.decoder = FastDecoder(self.mapper, enabled=fast_decode)
        self.erasure_topic = topic(Erasure, "Recorded")
        self.reader = PageReader(app.recorder, self.topics, page_size)

    # -- set-up and positions -----------------------------------------------------------------

    def ensure_tables(self, *, with_indexes: bool = True) -> None:
        """Creates missing tables and tracking rows (new views start at position 0)."""
        with self.db.writing() as conn:
            self.tables.create(conn, self.names, with_indexes=with_indexes)
            ensure_rows(self.db, conn, self.tables, self.names)

    def positions(self) -> dict[str, int]:
        with self.db.reading() as conn:
            found = read_positions(self.db, conn, self.tables, self.names)
        return {name: found.get(name, 0) for name in self.names}

    def head(self) -> int:
        return int(self.app.recorder.max_notification_id() or 0)

    def lag(self) -> list[ViewLag]:
        """Each view's position against the head; derived views report their slowest source."""
        head = self.head()
        positions = self.positions()
        lags = [ViewLag(name, positions[name], head) for name in self.names]
        for derived, sources in DERIVED_FROM.items():
            if all(source in positions for source in sources):
                lags.append(ViewLag(derived, min(positions[s] for s in sources), head))
        return lags

    # -- applying -----------------------------------------------------------------------------

    def catch_up(self, upto: int | None = None, progress: Progress | None = None) -> int:
        """Applies the log up to ``upto`` (default: its head now); returns how far the
        slowest view moved.

        Each page is committed in a thread while the next one is read and parsed (see
        ``commits``), and applied only once the previous page's commit is done; on
        PostgreSQL the next pages are also read in a thread (see ``pages``)."""
        stop = self.head() if upto is None else upto
        start = low = reported = min(self.positions().values(), default=stop)
        with BackgroundCommits() as commits:
            while low < stop:
                moved_back = False
                with self.reader.pages(low, stop) as pages:
                    for rows, covered in pages:
                        page = self._parse(rows)  # while the previous page commits
                        self._prefetch_keys(page)
                        commits.wait()
                        if progress is not None and low > reported:
                            progress(low)
                            reported = low
                        applied = self._apply_page(
                            page, covered_to=covered, fetched_after=low, commit_with=commits.submit
                        )
                        if applied is None:  # a view moved under us
                            moved_back = True
                            break
                        low = covered
                if moved_back:  # read again from the positions
                    commits.wait()
                    low = reported = min(self.positions().values(), default=stop)
            commits.wait()
        if progress is not None and low > reported:
            progress(low)
        return max(low - start, 0)

    def apply(
        self,
        notifications: Sequence[Notification],
        covered_to: int | None = None,
        fetched_after: int | None = None,
    ) -> int | None:
        """Applies ``notifications`` (in log order) and moves every view to ``covered_to``
        (default: the last one), all in one transaction; returns the events applied.

        ``fetched_after``: the position the page was read after. If a view is now behind
        it (a rebuild was swapped in meanwhile), the page would leave a gap: nothing is
        written and ``None`` is returned, so the caller reads again from the positions."""
        rows = [
            (n.id, n.originator_id, n.originator_version, n.topic, n.state) for n in notifications
        ]
        return self._apply_rows(rows, covered_to, fetched_after)

    def _apply_rows(
        self,
        rows: Sequence[Row],
        covered_to: int | None = None,
        fetched_after: int | None = None,
    ) -> int | None:
        """``apply`` of rows (position, originator id, version, topic, state)."""
        page = self._parse(rows)
        self._prefetch_keys(page)
        return self._apply_page(page, covered_to, fetched_after)

    def _parse(self, rows: Sequence[Row]) -> ParsedPage:
        """Parses the rows some view handles (personal fields stay sealed) and names the
        subjects whose keys the page needs."""
        parse = self.decoder.parse_row
        subjects = self.decoder.sealed_subjects
        routes = self.routes
        events: list[tuple[Any, tuple[str, ...]]] = []
        append = events.append
        wanted: set[str] = set()
        unparsed: list[Row] = []
        for row in rows:
            if row[3] not in routes:
                append(UNPARSED)
                continue
            parsed = parse(*row)
            if parsed[1]:
                wanted.update(subjects(*parsed))
            elif parsed[0] is None:
                unparsed.append(row)
            append(parsed)
        if unparsed and self.keys is not None:
            # the mapper opens their fields itself: find their subjects in the stored bytes
            wanted |= self.keys.subjects_named(unparsed)
        return ParsedPage(rows, events, wanted)

    def _prefetch_keys(self, page: ParsedPage) -> None:
        """Reads the keys the page's sealed fields need that are not cached (before the
        page is applied, so that opening them costs no query per subject)."""
        if self.keys is not None:
            self.keys.prefetch_subjects(page.subjects)

    def _apply_page(
        self,
        page: ParsedPage,
        covered_to: int | None = None,
        fetched_after: int | None = None,
        commit_with: CommitWith | None = None,
    ) -> int | None:
        """``apply`` of a parsed page whose keys were prefetched (``commit_with``: see
        ``ViewsDatabase.writing``)."""
        rows = page.rows
        if covered_to is None:
            if not rows:
                return 0
            covered_to = rows[-1][0]
        decoder = self.decoder
        mapper_decode = decoder.mapper_decode
        open_sealed = decoder.open
        routes = self.routes
        with self.db.writing(commit_with=commit_with) as conn:
            stored = read_positions(self.db, conn, self.tables, self.names, lock=True)
            positions = [stored.get(name, 0) for name in self.names]
            if fetched_after is not None and min(positions) < fetched_after:
                return None
            applied = 0
            erasure_topic = self.erasure_topic
            try:
                for view in self.views:
                    begin = getattr(view, "begin_page", None)
                    if begin is not None:
                        begin(self.db, conn, self.tables)
                for row, (parsed, sealed) in zip(rows, page.events, strict=True):
                    handlers = routes.get(row[3])
                    if handlers is None:
                        continue
                    position = row[0]
                    event: Any = None
                    for index, handler in handlers:
                        if position <= positions[index]:
                            continue  # delivered again: this view has it already
                        if event is None:
                            if parsed is None:
                                event = mapper_decode(*row)
                            else:
                                event = parsed
                                if sealed:  # opened now: after any erasure before it
                                    open_sealed(event, sealed)
                            applied += 1
                        handler(event, position)
                    if event is not None and row[3] == erasure_topic:
                        self._forget(event.subject_id)
                moved: dict[str, int] = {}
                for index, view in enumerate(self.views):
                    view.flush(self.db, conn, self.tables)
                    if covered_to > positions[index]:
                        moved[view.name] = covered_to
                write_positions(self.db, conn, self.tables, moved)
            except BaseException:
                for view in self.views:
                    view.discard()
                raise
        return applied

    def _forget(self, subject_id: str) -> None:
        if self.keys is not None:
            self.keys.forget(subject_id)

    # -- following ----------------------------------------------------------------------------

    def follow(
        self,
        stop: threading.Event,
        poll_interval: float = 0.5,
        wake: threading.Event | None = None,
    ) -> None:
        """Applies new events as they are recorded until ``stop`` is set.

        With ``wake`` (a ``LogSignal`` bell, see ``wakeup``), it looks at the log as soon as
        the bell rings and at the latest every ``poll_interval``; the bell is cleared
        before each look, so a commit during a look rings it again. ``stop`` must also
        ring the bell (``ViewFollower.stop`` does)."""
        bell = wake or stop
        failures = 0
        while not stop.is_set():
            if wake is not None:
                wake.clear()
            try:
                moved = self.catch_up()
                failures = 0
            except Exception:
                failures += 1
                log.exception("view follower failed; retrying", attempt=failures)
                stop.wait(min(poll_interval * 2**failures, 30.0))
                continue
            if moved == 0:
                bell.wait(poll_interval)


class ViewFollower:
    """A background thread that keeps the views current while the service runs."""

    def __init__(
        self,
        app: Application[UUID],
        db: ViewsDatabase,
        views: Sequence[str] | None = None,
        *,
        poll_interval: float = 0.5,
        page_size: int = 2000,
        signal: LogSignal | None = None,
    ) -> None:
        """``signal``: rung when something is recorded (the ingest rings it in-process); on
        PostgreSQL the follower also LISTENs for other processes' inserts (``wakeup``)."""
        self.runner = ViewRunner(app, db, views, page_size=page_size)
        self.poll_interval = poll_interval
        self.signal = signal or LogSignal()
        self._stop = threading.Event()
        self._bell = self.signal.bell()
        self._thread: threading.Thread | None = None
        self._notifications: PostgresNotifications | None = None

    def start(self) -> ViewFollower:
        self.runner.ensure_tables()
        self._stop.clear()
        if notify_channel(self.runner.app.recorder) is not None:
            self._notifications = PostgresNotifications(self.runner.app.recorder, self.signal)
            self._notifications.start()
        self._thread = threading.Thread(
            target=self.runner.follow,
            args=(self._stop, self.poll_interval, self._bell),
            name="sferum-audit-views",
            daemon=True,
        )
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def lag(self) -> list[ViewLag]:
        return self.runner.lag()

    def wait_until_current(self, timeout: float = 10.0) -> bool:
        """Waits until every view has reached the head seen now; ``False`` on timeout."""
        deadline = time.monotonic() + timeout
        head = self.runner.head()
        while time.monotonic() < deadline:
            if all(p >= head for p in self.runner.positions().values()):
                return True
            time.sleep(min(self.poll_interval, 0.05))
        return False

    def stop(self, timeout: float | None = 10.0) -> None:
        self._stop.set()
        self._bell.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self._notifications is not None:
            self._notifications.stop()
            self._notifications = None
        self.signal.forget(self._bell)


def start_view_follower(
    settings: Settings,
    *,
    app: Application[UUID] | None = None,
    views: Sequence[str] | None = None,
    views_settings: ViewsSettings | None = None,
    signal: LogSignal | None = None,
) -> ViewFollower:
    """Starts following the log into the configured views database; call ``stop()`` at
    shutdown and ``lag()`` for per-view positions (e.g. for metrics). ``signal``: rung by
    whoever records in this process, so the views follow at once (see ``wakeup``)."""
    from sferum_audit.application.bootstrap import build_audit_log

    options = views_settings or ViewsSettings()
    db = ViewsDatabase.from_settings(settings, options)
    follower = ViewFollower(
        app or build_audit_log(settings),
        db,
        views,
        poll_interval=options.views_poll_interval,
        page_size=options.views_page_size,
        signal=signal,
    )
    return follower.start()
