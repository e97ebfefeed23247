"""Benchmark of the CLI's start: ``sferum-audit --help`` and ``sferum-audit audit``.

Targets on a 2-core machine: ``--help`` under 0.3 s and ``audit`` on the demo data under
0.5 s, wall clock, each a fresh process as a person runs it. The machines are shared and
noisy, so every command runs ``--runs`` times and the fastest run is the figure (the one
least disturbed by other work), printed beside two baselines measured in the same run:
a bare ``python -c pass``, and an import of the libraries ``audit`` cannot do without
(typer, structlog, pydantic-settings, SQLAlchemy for the views, eventsourcing's domain
module for the event classes the queries name). The ratios say how much of the time is ours.

Before the commands were loaded lazily (``cli.main.LazyGroup``) every start imported
the NATS/FastStream stack and the command models: ``--help`` took 1.8-2.0 s and
``audit`` 2.3-2.9 s on this kind of machine. Since ``audit`` over views already at the
log's head stopped importing the application and the view runner (``cli.stores``), the
baseline imports ``eventsourcing.domain`` rather than ``eventsourcing.application``.

    .venv/bin/python scripts/bench_cli_start.py            # demo data made in a temp folder
    .venv/bin/python scripts/bench_cli_start.py --data-dir sferum-audit-data --runs 9
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LIBRARIES = "import typer, structlog, pydantic_settings, sqlalchemy, eventsourcing.domain"
HELP_TARGET = 0.3
AUDIT_TARGET = 0.5


def cli() -> list[str]:
    """The installed console script, or the module when it is not on the path."""
    script = Path(sys.executable).with_name("sferum-audit")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from sferum_audit.cli.main import run; run()"]


def fastest(command: list[str], env: dict[str, str], runs: int) -> float:
    """The shortest wall time of ``runs`` runs of ``command`` (output discarded)."""
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)  # noqa: S603  # our own command lines
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, help="demo data (default: made afresh)")
    parser.add_argument("--runs", type=int, default=7, help="runs of each command")
    args = parser.parse_args()
    env = dict(os.environ, SFERUM_AUDIT_LOG_LEVEL="WARNING", COLUMNS="120")
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as scratch:
        data = args.data_dir or Path(scratch) / "data"
        env["SFERUM_AUDIT_DATA_DIR"] = str(data)
        if args.data_dir is None:
            print(f"recording the demo data into {data} ...", file=sys.stderr)
            demo = [*cli(), "demo", "--direct"]
            subprocess.run(demo, env=env, check=True, stdout=subprocess.DEVNULL)  # noqa: S603  # ours
        warm = [*cli(), "audit"]  # the views catch up once, outside the timing
        subprocess.run(warm, env=env, check=True, stdout=subprocess.DEVNULL)  # noqa: S603  # ours
        bare = fastest([sys.executable, "-c", "pass"], env, args.runs)
        libraries = fastest([sys.executable, "-c", LIBRARIES], env, args.runs)
        help_time = fastest([*cli(), "--help"], env, args.runs)
        audit_time = fastest([*cli(), "audit"], env, args.runs)
    print(f"fastest of {args.runs} runs, wall clock; load average {os.getloadavg()[0]:.2f}")
    print(f"python -c pass                {bare:6.3f} s")
    print(f"import of the libraries       {libraries:6.3f} s  ({LIBRARIES[7:]})")
    for name, seconds, target in (
        ("sferum-audit --help", help_time, HELP_TARGET),
        ("sferum-audit audit", audit_time, AUDIT_TARGET),
    ):
        verdict = "met" if seconds < target else "NOT met"
        print(
            f"{name:<29} {seconds:6.3f} s  target < {target} s ({verdict}); "
            f"{seconds / bare:4.1f}x bare python, {seconds / libraries:4.2f}x the libraries"
        )


if __name__ == "__main__":
    main()
