"""``sferum-audit serve`` in a subprocess, for the crash and shutdown tests.

Usage: ``python pipeline_worker.py <marker file> <seconds to hold each batch> <serve args>``.
With a hold, every batch is recorded, then a line is appended to the marker file, then the
worker waits ``hold`` seconds before the batch is acked: a SIGKILL in that window leaves a
recorded but unacked batch; a SIGTERM must let it finish.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from sferum_audit.cli.main import app
from sferum_audit.consumers.ingest_app import IngestAuditLog


def main() -> None:
    marker, hold, args = Path(sys.argv[1]), float(sys.argv[2]), sys.argv[3:]
    original = IngestAuditLog.handle_batch

    def held(self: IngestAuditLog, commands: Any) -> Any:
        results = original(self, commands)
        with marker.open("a") as out:
            out.write(f"{len(commands)}\n")
        time.sleep(hold)
        return results

    if hold > 0:
        IngestAuditLog.handle_batch = held  # type: ignore[method-assign]
    app(args)


if __name__ == "__main__":
    main()
