"""Benchmark: replay of all views against the raw scan rate of the event store.

Not a test. Generates a region's log (hundreds of sample schools, ~580 events each, written
with ``handle_batch`` in big batches) into SQLite and/or PostgreSQL, then measures, each
phase in its own subprocess (so its peak memory is its own):

- scan: every record read in pages through the store's ``select_notifications``;
- replay: the full rebuild of all views (``replay``), events/s and its ratio to the scan;
- memory: peak RSS of a replay up to 100,000 events against the full one;
- audit queries: filtered audit-trail reads over 1,000,000 moderation entries (a table of
  that size made for the purpose; the region's own log holds far fewer), p50/p95.

    .venv/bin/python scripts/bench_replay.py --events 1000000 --store both --keep

PostgreSQL comes from ``SFERUM_AUDIT_TEST_POSTGRES_URL`` (or ``--postgres-url``); the
store gets its own schema, ``bench_<events>``, kept with ``--keep`` for the next run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

DEFAULT_DIR = Path("/tmp/sferum-audit-bench")  # noqa: S108  # a benchmark's scratch space
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- stores ---------------------------------------------------------------------------------------


def store_settings(store: str, events: int, data_dir: Path, pg_url: str) -> Any:
    from sferum_audit.application.settings import Settings

    base = data_dir / f"{store}-{events}"
    if store == "sqlite":
        return Settings(data_dir=base, aggregate_cache_size=5000)
    return Settings(
        data_dir=base,
        database_url=pg_url,
        database_schema=f"bench_{events}",
        aggregate_cache_size=5000,
    )


def fast_audit_log(settings: Any) -> Any:
    """The application with its subject-key table written without a flush per key (only
    for generating the benchmark's log quickly; reading is unchanged)."""
    import sqlalchemy as sa
    from sqlalchemy import event

    from sferum_audit.application.service import AuditLog
    from sferum_audit.application.store import persistence_environment
    from sferum_audit.application.subject_keys import SubjectKeys, sqlalchemy_url

    url = sqlalchemy_url(settings, "subject-keys.sqlite")
    options: dict[str, Any] = {}
    if url.startswith("postgresql"):
        options["connect_args"] = {"options": "-csynchronous_commit=off"}
        if settings.database_schema:
            options["execution_options"] = {
                "schema_translate_map": {None: settings.database_schema}
            }
    engine = sa.create_engine(url, **options)
    if url.startswith("sqlite"):

        def fast(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.execute("PRAGMA journal_mode=WAL")
            dbapi_connection.execute("PRAGMA synchronous=OFF")

        event.listen(engine, "connect", fast)
    return AuditLog(env=persistence_environment(settings), subject_keys=SubjectKeys(engine))


def ensure_schema(settings: Any) -> None:
    if not settings.database_url:
        return
    import psycopg

    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{settings.database_schema}"')


def drop_store(settings: Any) -> None:
    shutil.rmtree(settings.data_dir, ignore_errors=True)
    if settings.database_url:
        import psycopg

        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{settings.database_schema}" CASCADE')


# -- phases (each runs in its own process) --------------------------------------------------------


def phase_generate(settings: Any, events: int, batch: int) -> dict[str, Any]:
    from sferum_audit.application.commands import parse_command
    from sferum_audit.application.sample_school import sample_school

    ensure_schema(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = fast_audit_log(settings)
    meta = settings.data_dir / "generated.json"
    schools = json.loads(meta.read_text())["schools"] if meta.exists() else 0
    head = int(app.recorder.max_notification_id() or 0)
    started = time.perf_counter()
    written_from = head
    pending: list[Any] = []
    base = datetime(2024, 9, 2, 8, 0, tzinfo=UTC)
    while head < events:
        school_id = f"r39-{schools:05d}"
        start = base + timedelta(hours=schools % 2000)
        pending += [parse_command(c) for c in sample_school(school_id, seed=schools, start=start)]
        schools += 1
        if len(pending) >= batch:
            results = app.handle_batch(pending)
            rejected = [r for r in results if not r.accepted]
            if rejected:
                raise SystemExit(f"sample school rejected: {rejected[0].as_dict()}")
            pending = []
            head = int(app.recorder.max_notification_id() or 0)
            meta.write_text(json.dumps({"schools": schools, "events": head}))
            rate = (head - written_from) / (time.perf_counter() - started)
            print(f"  {head:,} events, {schools} schools, {rate:,.0f} ev/s", file=sys.stderr)
    seconds = time.perf_counter() - started
    return {
        "events": head,
        "schools": schools,
        "seconds": seconds,
        "rate": (head - written_from) / seconds if head > written_from else None,
    }


def phase_scan(settings: Any, page: int) -> dict[str, Any]:
    from sferum_audit.application.bootstrap import build_audit_log

    app = build_audit_log(settings)  # keep it: a collected application closes its pool
    recorder = app.recorder
    started = time.perf_counter()
    position, count = 1, 0
    while True:
        notifications = recorder.select_notifications(position, page)
        if not notifications:
            break
        count += len(notifications)
        position = notifications[-1].id + 1
    seconds = time.perf_counter() - started
    return {"events": count, "seconds": seconds, "rate": count / seconds}


def views_db(settings: Any, tag: str) -> Any:
    """A views database of its own for this measurement (a file, or a schema)."""
    from sferum_audit.projections.database import ViewsDatabase
    from sferum_audit.projections.settings import sqlalchemy_postgres_url

    if not settings.database_url:
        path = settings.data_dir / f"views-{tag}.sqlite"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return ViewsDatabase.sqlite_file(path)
    import psycopg

    schema = f"{settings.database_schema}_views_{tag}"
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return ViewsDatabase(sqlalchemy_postgres_url(settings.database_url), schema)


def phase_replay(settings: Any, upto: int | None, page: int) -> dict[str, Any]:
    from sferum_audit.application.bootstrap import build_audit_log
    from sferum_audit.projections.replay import rebuild

    app = build_audit_log(settings)
    db = views_db(settings, "full" if upto is None else str(upto))
    started = time.perf_counter()
    result = rebuild(app, db, upto=upto, page_size=page)
    seconds = time.perf_counter() - started
    with db.reading() as conn:
        audit_rows = conn.exec_driver_sql('SELECT count(*) FROM "audit_trail"').scalar_one()
    db.dispose()
    return {
        "events": result.position,
        "seconds": seconds,
        "rate": result.position / seconds,
        "audit_rows": audit_rows,
        "digests": result.digests,
    }


def phase_queries(settings: Any, rows: int, samples: int) -> dict[str, Any]:
    """Fills an audit trail of ``rows`` moderation entries, indexed as the live view is,
    and times filtered reads through ``queries.audit_rows``."""
    from sferum_audit.projections.queries import AuditFilter, audit_rows
    from sferum_audit.projections.registry import VIEW_NAMES
    from sferum_audit.projections.tables import SPEC_BY_NAME

    db = views_db(settings, "audit1m")
    rng = random.Random(1065)  # noqa: S311  # benchmark data
    schools = [f"r39-{n:05d}" for n in range(2000)]
    actions = ["content-removed", "content-blocked", "member-blocked", "member-unblocked",
               "liability-warned"]  # fmt: skip
    grounds = ["4.2.1", "4.2.2", "4.2.3", "4.2.4", "4.2.5", "4.2.6", "law", "third-party-rights"]
    authorities = ["2.3", "2.4", "2.5"]
    roles = {"2.3": "administrator", "2.4": "teacher", "2.5": "class-teacher"}
    chats = ["class-5a", "parents-5a", "class-7b", "class-9v", "subject-math", "free-olymp"]
    base = datetime(2024, 9, 1, tzinfo=UTC)
    spec = SPEC_BY_NAME["audit_trail"]
    started = time.perf_counter()
    with db.writing() as conn:
        db.live.create(conn, list(VIEW_NAMES), with_indexes=False)
    marks = ", ".join(db.placeholder for _ in spec.columns)
    sql = f'INSERT INTO "audit_trail" VALUES ({marks})'  # noqa: S608
    chunk: list[tuple[Any, ...]] = []
    for position in range(1, rows + 1):
        school = rng.choice(schools)
        authority = rng.choice(authorities)
        chat = rng.choice(chats)
        at = (base + timedelta(seconds=position * 30)).isoformat(timespec="microseconds")
        chunk.append(
            (
                position,
                school,
                chat.split("-")[-1],
                chat,
                "class",
                rng.choice(actions),
                f"{school}-t-{rng.randint(1, 8)}",
                roles[authority],
                authority,
                rng.choice(grounds),
                f"{school}-s-{rng.randint(1, 40)}",
                f"m-{position}",
                "нарушение правил",
                None,
                at,
                at,
                f"c-{position}",
                f"c-{position}",
                f"e-{position}",
            )
        )
        if len(chunk) == 20_000:
            with db.writing() as conn:
                db.executemany(conn, sql, chunk)
            chunk = []
    with db.writing() as conn:
        db.executemany(conn, sql, chunk)
        db.live.create_indexes(conn, ["audit_trail"])
    fill_seconds = time.perf_counter() - started
    if not db.is_sqlite:
        with db.writing() as conn:
            conn.exec_driver_sql('ANALYZE "audit_trail"')

    def random_filter() -> AuditFilter:
        school = rng.choice(schools)
        kind = rng.randrange(8)
        if kind == 0:
            return AuditFilter(moderator=f"{school}-t-{rng.randint(1, 8)}")
        if kind == 1:
            return AuditFilter(target=f"{school}-s-{rng.randint(1, 40)}")
        if kind == 2:
            return AuditFilter(chat=rng.choice(chats), school=school)
        if kind == 3:
            return AuditFilter(authority=rng.choice(authorities), ground=rng.choice(grounds))
        if kind == 4:
            return AuditFilter(action=rng.choice(actions))
        if kind == 5:
            return AuditFilter(school=school, authority=rng.choice(authorities))
        if kind == 6:
            since = base + timedelta(days=rng.randint(0, 300))
            return AuditFilter(since=since, until=since + timedelta(days=1))
        return AuditFilter(ground=rng.choice(grounds), since=base + timedelta(days=200))

    results: dict[str, Any] = {"rows": rows, "fill_seconds": fill_seconds}
    for label, limit in (("page of 100, newest first", 100), ("selective, no limit", None)):
        timings = []
        returned = []
        for _ in range(samples):
            flt = random_filter()
            if limit is None:
                school = rng.choice(schools)
                flt = rng.choice(
                    [
                        AuditFilter(moderator=f"{school}-t-{rng.randint(1, 8)}"),
                        AuditFilter(target=f"{school}-s-{rng.randint(1, 40)}"),
                        AuditFilter(school=school, chat=rng.choice(chats)),
                    ]
                )
            t0 = time.perf_counter()
            found = audit_rows(db, flt, limit=limit, newest_first=limit is not None)
            timings.append((time.perf_counter() - t0) * 1000)
            returned.append(len(found))
        timings.sort()
        results[label] = {
            "p50_ms": round(statistics.median(timings), 2),
            "p95_ms": round(timings[int(len(timings) * 0.95) - 1], 2),
            "max_ms": round(timings[-1], 2),
            "mean_rows": round(statistics.mean(returned), 1),
        }
    db.dispose()
    return results


# -- driver ---------------------------------------------------------------------------------------


def run_phase(args: argparse.Namespace, store: str, phase: str, *extra: str) -> dict[str, Any]:
    command = [
        sys.executable, __file__, "--phase", phase, "--store", store, "--events",
        str(args.events), "--data-dir", str(args.data_dir), "--postgres-url", args.postgres_url,
        "--page-size", str(args.page_size), *extra,
    ]  # fmt: skip
    done = subprocess.run(command, check=True, capture_output=False, stdout=subprocess.PIPE)  # noqa: S603
    result: dict[str, Any] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--store", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--keep", action="store_true", help="reuse (and keep) a generated store")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DIR)
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("SFERUM_AUDIT_TEST_POSTGRES_URL") or DEFAULT_PG,
    )
    parser.add_argument("--page-size", type=int, default=2000, help="events per view page")
    parser.add_argument("--memory-at", type=int, default=100_000)
    parser.add_argument("--audit-rows", type=int, default=1_000_000)
    parser.add_argument("--query-samples", type=int, default=400)
    parser.add_argument("--batch", type=int, default=3000, help="commands per handle_batch")
    parser.add_argument("--skip-queries", action="store_true")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--upto", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.phase:
        store = args.store
        settings = store_settings(store, args.events, args.data_dir, args.postgres_url)
        if args.phase == "generate":
            result = phase_generate(settings, args.events, args.batch)
        elif args.phase == "scan":
            result = phase_scan(settings, 1000)
        elif args.phase == "replay":
            result = phase_replay(settings, args.upto, args.page_size)
        else:
            result = phase_queries(settings, args.audit_rows, args.query_samples)
        result["peak_rss_mib"] = round(peak_rss_mib(), 1)
        print(json.dumps(result))
        return

    stores = ["sqlite", "postgres"] if args.store == "both" else [args.store]
    report: dict[str, dict[str, Any]] = {}
    generators = {}
    for store in stores:
        settings = store_settings(store, args.events, args.data_dir, args.postgres_url)
        if not args.keep:
            drop_store(settings)
        command = [
            sys.executable, __file__, "--phase", "generate", "--store", store, "--events",
            str(args.events), "--data-dir", str(args.data_dir), "--postgres-url",
            args.postgres_url, "--batch", str(args.batch),
        ]  # fmt: skip
        print(f"[{store}] generating the log (up to {args.events:,} events)", file=sys.stderr)
        generators[store] = subprocess.Popen(command, stdout=subprocess.PIPE)  # noqa: S603
    for store, process in generators.items():  # both stores are written at once (2 cores)
        out, _ = process.communicate()
        if process.returncode:
            raise SystemExit(f"[{store}] generation failed")
        report[store] = {"generate": json.loads(out.decode().strip().splitlines()[-1])}
    for store in stores:
        print(f"[{store}] scan, replay, memory", file=sys.stderr)
        report[store]["scan"] = run_phase(args, store, "scan")
        report[store]["replay"] = run_phase(args, store, "replay")
        report[store]["replay_small"] = run_phase(
            args, store, "replay", "--upto", str(args.memory_at)
        )
        if not args.skip_queries:
            print(f"[{store}] audit queries over {args.audit_rows:,} entries", file=sys.stderr)
            report[store]["queries"] = run_phase(
                args, store, "queries", "--audit-rows", str(args.audit_rows)
            )
        if not args.keep:
            drop_store(store_settings(store, args.events, args.data_dir, args.postgres_url))
    print_report(report, args)


def print_report(report: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    print(json.dumps(report, indent=2, ensure_ascii=False, default=str), file=sys.stderr)
    print(f"\nreplay benchmark, {args.events:,} events requested, page {args.page_size}")
    for store, r in report.items():
        scan, replay, small = r["scan"], r["replay"], r["replay_small"]
        ratio = replay["rate"] / scan["rate"]
        growth = replay["peak_rss_mib"] / small["peak_rss_mib"] - 1
        print(
            f"[{store}] log: {r['generate']['events']:,} events, {r['generate']['schools']} schools"
        )
        print(f"  raw scan        {scan['rate']:>10,.0f} ev/s   ({scan['seconds']:.1f} s)")
        print(
            f"  replay (all)    {replay['rate']:>10,.0f} ev/s   ({replay['seconds']:.1f} s, "
            f"{replay['audit_rows']:,} audit rows)   ratio {ratio:.0%} of scan"
        )
        print(
            f"  peak memory     {small['peak_rss_mib']:.0f} MiB at {small['events']:,} events, "
            f"{replay['peak_rss_mib']:.0f} MiB at {replay['events']:,} ({growth:+.0%})"
        )
        if "queries" in r:
            q = r["queries"]
            for label in ("page of 100, newest first", "selective, no limit"):
                s = q[label]
                print(
                    f"  audit query ({label}) over {q['rows']:,} entries: p50 {s['p50_ms']} ms,"
                    f" p95 {s['p95_ms']} ms, max {s['max_ms']} ms, ~{s['mean_rows']} rows"
                )


if __name__ == "__main__":
    main()
