"""Response times of the console's audit trail page on a large log (a benchmark, not a test).

    .venv/bin/python scripts/bench_web_audit.py [--rows 1000000] [--postgres-url URL]

1. Records the sample school (the real log: school, staff, chats, a week of moderation) in
   a fresh store (SQLite in a temporary folder, or a fresh PostgreSQL schema), creates
   console accounts for an administrator and a class teacher, and builds the views.
2. Adds ``--rows`` synthetic rows to the audit trail view of that school (positions after
   the log's head, so the views' own catch-up leaves them alone): moderators, chats,
   grounds, actions and targets spread as a busy school's years would be.
3. Signs in through the ASGI app (Starlette's TestClient, in process: no network) and
   requests ``/audit`` with each filter of the page ``--requests`` times; prints p50, p95
   and p95 against the 200 ms target for each.

Each request pays for everything a real one does: the session lookup, the views' catch-up
check, the person's standing (roles, chats under control), the filtered query and the
rendering of up to a page of rows.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from starlette.testclient import TestClient

from sferum_audit.application.bootstrap import build_audit_log
from sferum_audit.application.commands import parse_command
from sferum_audit.application.sample_school import sample_school
from sferum_audit.application.settings import Settings
from sferum_audit.projections.database import ViewsDatabase
from sferum_audit.projections.tables import SPECS
from sferum_audit.web.accounts import Accounts
from sferum_audit.web.app import create_app
from sferum_audit.web.settings import WebSettings

TARGET_MS = 200.0
PASSWORD = "benchmark password 58"  # noqa: S105  # a benchmark account in a temporary store
ACTIONS = ("content-removed", "content-blocked", "member-blocked", "liability-warned")
# Indexes the audit trail view does not have yet, led by the school every console query
# filters on (``--proposed-indexes`` adds them to measure what they buy).
PROPOSED_INDEXES = (
    "school_id, occurred_at",
    "school_id, target_id, position",
    "school_id, chat_id, position",
    "school_id, moderator_id, position",
    "school_id, ground, position",
)
GROUNDS = ("4.2.1", "4.2.2", "4.2.3", "4.2.4", "4.2.5", "4.2.6", "law", "third-party-rights")


def fresh_settings(args: argparse.Namespace, folder: Path) -> Settings:
    if not args.postgres_url:
        return Settings(data_dir=folder / "data")
    import psycopg

    schema = f"bench_web_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return Settings(
        data_dir=folder / "data", database_url=args.postgres_url, database_schema=schema
    )


def record_school(settings: Settings, school: str) -> None:
    app = build_audit_log(settings)
    try:
        results = app.handle_batch([parse_command(c) for c in sample_school(school)])
        assert all(r.accepted for r in results)
    finally:
        app.close()
    accounts = Accounts(settings)
    try:
        for login, person in (("admin", "adm-1"), ("class-teacher", "t-1")):
            accounts.create(
                login=login,
                school_id=school,
                person_id=f"{school}-{person}",
                password=PASSWORD,
                created_by=f"{school}-adm-1",
            )
    finally:
        accounts.close()


def add_rows(
    settings: Settings, school: str, rows: int, seed: int, proposed_indexes: bool = False
) -> None:
    rng = random.Random(seed)  # noqa: S311  # synthetic rows, not secrets
    db = ViewsDatabase.from_settings(settings)
    table = db.live.table("audit_trail")
    columns = next(s for s in SPECS if s.name == "audit_trail").column_names
    chats = [f"class-{c}" for c in ("5a", "7b", "9v")] + [f"chat-{n}" for n in range(40)]
    moderators = [f"{school}-t-{n}" for n in range(1, 7)] + [f"{school}-m-{n}" for n in range(30)]
    start = 10_000_000
    chunk = 20_000
    began = time.perf_counter()
    for offset in range(0, rows, chunk):
        batch: list[dict[str, Any]] = []
        for i in range(offset, min(rows, offset + chunk)):
            day = 1 + i * 2000 // rows  # the rows spread over about five and a half years
            moment = f"{2020 + day // 366}-{1 + (day % 366) // 31 % 12:02d}-{1 + day % 28:02d}"
            at = f"{moment}T10:{i % 60:02d}:00.000000+00:00"
            values: dict[str, Any] = dict.fromkeys(columns)
            values |= {
                "position": start + i,
                "school_id": school,
                "chat_id": rng.choice(chats),
                "action": rng.choice(ACTIONS),
                "moderator_id": rng.choice(moderators),
                "moderator_role": "teacher",
                "authority": rng.choice(("2.3", "2.4", "2.5")),
                "ground": rng.choice(GROUNDS),
                "target_id": f"{school}-s-{rng.randrange(5000):04d}",
                "message_id": f"msg-{i}",
                "reason": "Нарушение правил чата (синтетическая запись)",
                "occurred_at": at,
                "recorded_at": at,
                "command_id": f"bench-{i}",
                "event_id": f"bench-event-{i}",
            }
            batch.append(values)
        with db.engine.begin() as conn:
            conn.execute(table.insert(), batch)
    if proposed_indexes:
        with db.engine.begin() as conn:
            for n, columns_of in enumerate(PROPOSED_INDEXES):
                name = f"ix_bench_proposed_{n}"
                conn.execute(sa.text(f"CREATE INDEX {name} ON {table.name} ({columns_of})"))
    if db.is_sqlite:
        with db.engine.begin() as conn:
            conn.execute(sa.text("ANALYZE"))
    else:
        with db.engine.begin() as conn:
            conn.execute(sa.text(f"ANALYZE {table.name}"))
    print(f"added {rows:,} audit rows in {time.perf_counter() - began:.0f} s")
    db.dispose()


def measure(client: TestClient, url: str, requests: int) -> list[float]:
    client.get(url)  # warm: first-use caches of the database and the templates
    times = []
    for _ in range(requests):
        began = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - began) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    return times


def sign_in(client: TestClient, login: str) -> None:
    import re

    client.cookies.clear()
    page = client.get("/sign-in").text
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found
    response = client.post(
        "/sign-in", data={"login": login, "password": PASSWORD, "csrf_token": found.group(1)}
    )
    assert response.status_code == 303, response.text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--postgres-url", default=os.environ.get("SFERUM_AUDIT_BENCH_POSTGRES_URL"))
    parser.add_argument("--seed", type=int, default=58)
    parser.add_argument(
        "--proposed-indexes",
        action="store_true",
        help="add the indexes of PROPOSED_INDEXES before measuring",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        settings = fresh_settings(args, Path(folder))
        school = "bench-58"
        record_school(settings, school)
        web = WebSettings(secure_cookies=False)
        with TestClient(create_app(settings, web), follow_redirects=False) as client:
            sign_in(client, "admin")  # builds the views of the real log first
            add_rows(settings, school, args.rows, args.seed, args.proposed_indexes)
            scenarios = [
                ("admin", "/audit"),
                ("admin", "/audit?ground=4.2.4"),
                ("admin", f"/audit?moderator={school}-m-7"),
                ("admin", "/audit?chat=chat-3&action=member-blocked"),
                ("admin", f"/audit?target={school}-s-0042"),
                ("admin", "/audit?since=2022-01-01T00:00&until=2022-02-01T00:00"),
                ("admin", "/audit?authority=2.5&ground=law&action=content-blocked"),
                ("class-teacher", "/audit"),
                ("class-teacher", "/audit?ground=4.2.6"),
            ]
            print(
                f"{args.rows:,} synthetic rows + the sample school; {args.requests} requests each"
            )
            print(f"{'who':<14} {'page':<62} {'p50 ms':>8} {'p95 ms':>8} {'p95/200':>8}")
            current = ""
            for who, url in scenarios:
                if who != current:
                    sign_in(client, who)
                    current = who
                times = sorted(measure(client, url, args.requests))
                p50 = statistics.median(times)
                p95 = times[max(0, int(len(times) * 0.95) - 1)]
                print(f"{who:<14} {url:<62} {p50:8.1f} {p95:8.1f} {p95 / TARGET_MS:8.2f}")


if __name__ == "__main__":
    main()
