"""Benchmark of ``sferum-audit verify``: events per second, next to the store's raw scan rate.

Builds (or reuses) a log of N events, seals it, then times, in the same run and on the
same store: a raw scan (every row read, nothing else) and ``verify`` (read, re-encode and
hash every row, compare with the sealed leaves, recompute every checkpoint root). The
target is at least 150,000 events/s on a 2-core machine.

The log: sample schools (``application.sample_school``) recorded through
``AuditLog.handle_batch``; recording through the application runs at only ~1-2 thousand
events/s (each new data subject's key is its own commit), so by default the first
``--schools`` schools are recorded for real and the store is then filled up to N with
copies of those stored rows under fresh aggregate ids (same topics, same sealed bytes,
same sizes), which is what ``verify`` cost depends on. ``--faithful`` records every event
through the application instead (slow).

    .venv/bin/python scripts/bench_verify.py                      # SQLite, 1,000,000 events
    .venv/bin/python scripts/bench_verify.py --events 200000 \\
        --database-url postgresql://postgres@127.0.0.1:5432/test  # PostgreSQL
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sferum_audit.application.bootstrap import build_audit_log
from sferum_audit.application.commands import parse_command
from sferum_audit.application.sample_school import sample_school
from sferum_audit.application.service import AuditLog
from sferum_audit.application.settings import Settings
from sferum_audit.integrity.sealer import Sealer
from sferum_audit.integrity.settings import IntegritySettings
from sferum_audit.integrity.store_reader import open_reader
from sferum_audit.integrity.verifier import raw_rows, verify_log

TARGET = 150_000


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the verify workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def record_schools(app: AuditLog, first: int, count: int) -> int:
    events = 0
    for number in range(first, first + count):
        commands = [parse_command(c) for c in sample_school(f"bench-{number:05d}")]
        results = app.handle_batch(commands)
        events += sum(len(r.events) for r in results if r.accepted)
    return events


def amplify(app: AuditLog, base: int, target: int) -> None:
    """Copy the first ``base`` stored rows under fresh ids until the log has ``target``."""
    recorder: Any = app.recorder
    table = recorder.events_table_name
    datastore = recorder.datastore
    if type(recorder).__module__ == "eventsourcing.sqlite":
        import sqlite3

        conn = sqlite3.connect(datastore.pool.db_name, uri=True)
        try:
            count = f"SELECT MAX(rowid) FROM {table}"  # noqa: S608
            while (head := conn.execute(count).fetchone()[0]) < target:
                conn.execute(
                    f"INSERT INTO {table} (originator_id, originator_version, topic, state) "  # noqa: S608
                    "SELECT lower(hex(randomblob(16))), originator_version, topic, state "
                    f"FROM {table} WHERE rowid <= ? ORDER BY rowid LIMIT ?",
                    (base, min(base, target - head)),
                )
                conn.commit()
        finally:
            conn.close()
        return
    from psycopg import sql

    name = sql.Identifier(datastore.schema or "public", table)
    with datastore.get_connection() as conn, conn.cursor() as cur:
        while True:
            cur.execute(sql.SQL("SELECT MAX(notification_id) AS m FROM {}").format(name))
            row = cur.fetchone()
            current = int(row["m"] or 0) if row else 0
            if current >= target:
                break
            cur.execute(
                sql.SQL(
                    "INSERT INTO {} (originator_id, originator_version, topic, state) "
                    "SELECT gen_random_uuid(), originator_version, topic, state FROM {} "
                    "WHERE notification_id <= %s ORDER BY notification_id LIMIT %s"
                ).format(name, name),
                (base, min(base, target - current)),
            )
            conn.commit()


def build_log(app: AuditLog, events: int, schools: int, faithful: bool) -> str:
    head = int(app.recorder.max_notification_id() or 0)
    if head >= events:
        return f"reused a log of {head} events"
    started = time.perf_counter()
    if faithful:
        number = 0
        while head < events:
            record_schools(app, number, 10)
            number += 10
            head = int(app.recorder.max_notification_id() or 0)
            print(f"  recorded {head} events", file=sys.stderr)
        seconds = time.perf_counter() - started
        return f"recorded {head} events through handle_batch in {seconds:.0f} s"
    recorded = record_schools(app, 0, schools) if head == 0 else head
    base = int(app.recorder.max_notification_id() or 0)
    amplify(app, base, events)
    seconds = time.perf_counter() - started
    return (
        f"recorded {recorded} events of {schools} sample schools through handle_batch, then "
        f"copied those rows under fresh ids up to {events} ({seconds:.0f} s)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--data-dir", type=Path, default=None, help="reuse this data folder")
    parser.add_argument("--database-url", default=None, help="PostgreSQL instead of SQLite")
    parser.add_argument("--database-schema", default=None)
    parser.add_argument("--schools", type=int, default=20, help="schools recorded for real")
    parser.add_argument("--faithful", action="store_true", help="record every event for real")
    parser.add_argument("--runs", type=int, default=3, help="timed runs (median reported)")
    parser.add_argument("--keep", action="store_true", help="keep a temporary data folder")
    args = parser.parse_args()
    if args.data_dir is None:
        data_dir = Path(tempfile.mkdtemp(prefix="sferum-bench-verify-"))
        try:
            return run(args, data_dir)
        finally:
            if not args.keep:
                shutil.rmtree(data_dir, ignore_errors=True)
    return run(args, args.data_dir)


def run(args: argparse.Namespace, data_dir: Path) -> int:

    settings = Settings(
        data_dir=data_dir,
        database_url=args.database_url,
        database_schema=args.database_schema,
        aggregate_cache_size=0,
    )
    if args.database_url and args.database_schema:
        import psycopg

        with psycopg.connect(args.database_url, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{args.database_schema}"')
    app = build_audit_log(settings)
    integrity = IntegritySettings(checkpoint_interval_seconds=0)
    print(f"cpus: {os.cpu_count()}; data folder: {data_dir}")
    print(build_log(app, args.events, args.schools, args.faithful))

    sealer = Sealer(app.recorder, data_dir, integrity)
    started = time.perf_counter()
    sealed = sealer.run_once(force=True)
    seal_seconds = time.perf_counter() - started
    print(f"seal: {sealed.describe()} in {seal_seconds:.2f} s")
    sealer.close()

    raw_rates, verify_rates, cpu_rates = [], [], []
    for run in range(args.runs):
        reader = open_reader(app.recorder)
        started = time.perf_counter()
        rows = raw_rows(reader, integrity.integrity_page_size)
        raw_rates.append(rows / (time.perf_counter() - started))
        reader.close()
        cpu_before = cpu_seconds()
        report = verify_log(app.recorder, data_dir, settings=integrity)
        cpu = cpu_seconds() - cpu_before
        if not report.ok:
            print("\n".join(report.lines()))
            return 1
        verify_rates.append(report.compared / report.seconds)
        cpu_rates.append(report.compared / cpu)
        print(
            f"run {run + 1}: raw scan {raw_rates[-1]:,.0f} rows/s; verify "
            f"{verify_rates[-1]:,.0f} events/s ({report.compared} events, {report.seconds:.2f} s, "
            f"{report.workers} processes, {cpu:.2f} CPU s); load average "
            f"{os.getloadavg()[0]:.1f}"
        )
    raw, verify = statistics.median(raw_rates), statistics.median(verify_rates)
    per_cpu = statistics.median(cpu_rates)
    store = "PostgreSQL" if args.database_url else "SQLite"
    print(
        f"\n{store}, {report.compared:,} events, median of {args.runs}: verify {verify:,.0f} "
        f"events/s; raw scan {raw:,.0f} rows/s; verify/raw = {verify / raw:.2f}; "
        f"target {TARGET:,} events/s: {'met' if verify >= TARGET else 'NOT met'}\n"
        f"CPU cost: {1e6 / per_cpu:.1f} us per event ({per_cpu:,.0f} events per CPU second, "
        f"workers and checkpoint pass included); the machine had {os.cpu_count()} CPUs and a "
        f"load average of {os.getloadavg()[1]:.1f} over the last 5 minutes"
    )
    app.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
