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

The runner is imported when first asked for: a listing whose views are current reads
``projections.database`` and ``queries`` without loading the catch-up machinery.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sferum_audit.projections.runner import (
        ViewFollower,
        ViewLag,
        ViewRunner,
        start_view_follower,
    )

__all__ = ["ViewFollower", "ViewLag", "ViewRunner", "start_view_follower"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("sferum_audit.projections.runner"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
