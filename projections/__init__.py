"""Read views rebuilt from the log: current state, invitations, audit trail, incidents,
and statistics derived from them (issue #3).

For a long-running service::

    follower = start_view_follower(settings, app=app)   # a daemon thread polling the log
    follower.lag()    # [ViewLag(view, position, head, lag=...), ...] per view
    follower.stop()

For one-off use: ``ViewRunner(app, ViewsDatabase.from_settings(settings)).catch_up()``;
``replay.rebuild`` / ``replay.check`` / ``replay.build_as_of``; ``queries`` for reads.
The views database is ``SFERUM_AUDIT_VIEWS_URL``, else ``<data_dir>/views.sqlite``, else (with
a PostgreSQL event store) the store's database and schema.
"""

from __future__ import annotations

from sferum_audit.projections.runner import (
    ViewFollower,
    ViewLag,
    ViewRunner,
    start_view_follower,
)

__all__ = ["ViewFollower", "ViewLag", "ViewRunner", "start_view_follower"]
