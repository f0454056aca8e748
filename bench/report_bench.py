"""Benchmark of the operators' credit usage report on 1 000 000 ledger rows (PostgreSQL).

Usage:  .venv/bin/python bench/report_bench.py [--rows 1000000] [--runs 5] [--rebuild]

Works in its own database (`kinovi_bench` unless BENCH_DATABASE_URL says otherwise), created
and migrated on first use. Rows are made in the database with INSERT ... SELECT
generate_series (a million ORM saves would take the better part of an hour): 50 workspaces,
500 people, 100 keys, both models, a fifth of the generations failed and refunded, a tenth
captured at a different price, spread over 90 days. Then it times, as medians of `--runs`
runs after one warm-up: a `SELECT count(*)` of the ledger (the baseline: one full scan), the
whole report over the 90 days and over one 30-day month, and the ORM fallback's five GROUP BY
queries for comparison. It prints a Markdown block for docs/BENCHMARKS.md.
"""

import argparse
import os
import platform
import statistics
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BENCH_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/kinovi_bench")
os.environ["DATABASE_URL"] = BENCH_URL
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kinovi_site.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")

START = datetime(2026, 1, 1, tzinfo=UTC)
DAYS = 90
WORKSPACES, PEOPLE_PER_WORKSPACE, KEYS_PER_WORKSPACE = 50, 10, 2


def ensure_database(*, fresh: bool) -> None:
    """Create the bench database; `fresh` drops it first (faster than deleting a million rows)."""
    import psycopg

    name = BENCH_URL.rsplit("/", 1)[1]
    if not name.startswith("kinovi_bench"):
        raise SystemExit(f"Refusing to work in {name!r}: the bench database must be kinovi_bench*.")
    admin_url = BENCH_URL.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if fresh:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def populate(rows: int) -> None:
    from django.db import connection, transaction

    from accounts.models import ApiKey, User, Workspace
    from generations.models import Generation

    # reserve for every generation, refund for 20 %, capture for 10 %: 1.3 rows each.
    generations = round(rows / 1.3)
    with transaction.atomic():
        workspaces = Workspace.objects.bulk_create(
            Workspace(name=f"Bench workspace {w:02d}") for w in range(WORKSPACES)
        )
        people = User.objects.bulk_create(
            User(email=f"person{p:03d}@bench.example", password="!")
            for p in range(WORKSPACES * PEOPLE_PER_WORKSPACE)
        )
        template_key = ApiKey(workspace=workspaces[0], label="template")
        template_key.secret = "sk-bench-not-a-real-key-0000"
        keys = ApiKey.objects.bulk_create(
            ApiKey(
                workspace=workspaces[k // KEYS_PER_WORKSPACE],
                label=f"Key {k:03d}",
                secret_ciphertext=template_key.secret_ciphertext,
                last_four=f"{k:04d}",
            )
            for k in range(WORKSPACES * KEYS_PER_WORKSPACE)
        )
        template = Generation.objects.create(
            workspace=workspaces[0],
            creator=people[0],
            api_key=keys[0],
            prompt="A benchmark prompt about a lighthouse in a storm",
            estimated_credits=200,
            status="success",
        )
        ws_ids = [w.pk for w in workspaces]
        user_ids = [u.pk for u in people]
        key_ids = [k.pk for k in keys]
        seconds = DAYS * 86400
        # Every column copied from the template row, except those that vary per row.
        overrides = {
            "public_id": "gen_random_uuid()",
            "workspace_id": f"(%(ws)s::bigint[])[1 + i % {WORKSPACES}]",
            "creator_id": (
                f"(%(users)s::bigint[])[1 + (i % {WORKSPACES}) * {PEOPLE_PER_WORKSPACE}"
                f" + (i / {WORKSPACES}) % {PEOPLE_PER_WORKSPACE}]"
            ),
            "api_key_id": (
                f"(%(keys)s::bigint[])[1 + (i % {WORKSPACES}) * {KEYS_PER_WORKSPACE}"
                f" + (i / 500) % {KEYS_PER_WORKSPACE}]"
            ),
            "model": "CASE WHEN i % 3 = 0 THEN 'seedance2-fast' ELSE 'seedance-20' END",
            "duration": "4 + i % 12",
            "upscale_4k": "(i % 7 = 0)",
            "status": "CASE WHEN i % 10 < 2 THEN 'fail' ELSE 'success' END",
            "task_id": "'task_bench_' || i",
            "estimated_credits": "(4 + i % 12) * 40",
            "credits_used": "CASE WHEN i % 10 < 2 THEN NULL WHEN i % 10 = 2 "
            "THEN (4 + i % 12) * 40 - 20 ELSE (4 + i % 12) * 40 END",
            "created_at": f"%(start)s::timestamptz + make_interval(secs => (i::float8 * {seconds}"
            f" / %(n)s))",
        }
        columns = [f.column for f in Generation._meta.concrete_fields if f.column != "id"]
        select = [overrides.get(c, f"t.{connection.ops.quote_name(c)}") for c in columns]
        params = {
            "ws": ws_ids,
            "users": user_ids,
            "keys": key_ids,
            "start": START,
            "n": generations,
        }
        # Modulo signs become %% for the driver; the %(name)s placeholders stay as they are.
        select = [part.replace("%", "%%").replace("%%(", "%(") for part in select]
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO generations_generation ({', '.join(columns)}) "
                f"SELECT {', '.join(select)} "
                f"FROM generations_generation t, generate_series(1, %(n)s) AS i "
                f"WHERE t.id = {template.pk}",
                params,
            )
            cursor.execute(f"DELETE FROM generations_generation WHERE id = {template.pk}")
            ledger_columns = (
                "generation_id, workspace_id, user_id, api_key_id, model, kind, credits, "
                "dollars_per_credit, created_at"
            )
            common = "g.id, g.workspace_id, g.creator_id, g.api_key_id, g.model"
            cursor.execute(
                f"INSERT INTO generations_creditentry ({ledger_columns}) "
                f"SELECT {common}, 'reserve', -g.estimated_credits, 0.005, g.created_at "
                f"FROM generations_generation g"
            )
            cursor.execute(
                f"INSERT INTO generations_creditentry ({ledger_columns}) "
                f"SELECT {common}, 'refund', g.estimated_credits, 0.005, "
                f"g.created_at + interval '3 minutes' "
                f"FROM generations_generation g WHERE g.status = 'fail'"
            )
            cursor.execute(
                f"INSERT INTO generations_creditentry ({ledger_columns}) "
                f"SELECT {common}, 'capture', g.estimated_credits - g.credits_used, 0.004, "
                f"g.created_at + interval '2 minutes' "
                f"FROM generations_generation g WHERE g.credits_used <> g.estimated_credits"
            )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE generations_generation")
        cursor.execute("VACUUM ANALYZE generations_creditentry")


def timed(fn, runs: int) -> float:
    fn()  # warm-up: caches, plans
    samples = []
    for _ in range(runs):
        began = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - began)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rebuild", action="store_true", help="make the rows again")
    args = parser.parse_args()

    ensure_database(fresh=args.rebuild)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from generations import reports
    from generations.models import CreditEntry

    call_command("migrate", verbosity=0)
    if abs(CreditEntry.objects.count() - args.rows) > args.rows * 0.01:
        connection.close()
        ensure_database(fresh=True)
        call_command("migrate", verbosity=0)
        began = time.perf_counter()
        populate(args.rows)
        print(f"populated in {time.perf_counter() - began:.0f} s", file=sys.stderr)
    rows = CreditEntry.objects.count()

    def count_all():
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM generations_creditentry")
            cursor.fetchone()

    whole = reports.Period(START.date(), START.date() + timedelta(days=DAYS))
    month = reports.Period(date(2026, 2, 1), date(2026, 2, 28))
    with CaptureQueriesContext(connection) as queries:
        report = reports.build_report(whole)
    assert report.total.generations > 0

    load_before = os.getloadavg()[0]
    baseline = timed(count_all, args.runs)
    full = timed(lambda: reports.build_report(whole), args.runs)
    one_month = timed(lambda: reports.build_report(month), args.runs)

    def totals(source=None):
        with reports.without_jit():
            reports.totals(whole, source=source)

    totals_only = timed(totals, args.runs)
    ledger_full = timed(lambda: totals("ledger"), args.runs)
    orm_full = timed(lambda: totals("orm"), args.runs)

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        server = cursor.fetchone()[0]
    cpu = platform.processor() or platform.machine()
    lines = [
        "### Credit usage report (`bench/report_bench.py`)",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()} ({os.cpu_count()} "
        f"cores, {cpu}, PostgreSQL {server.split()[0]}, Python {platform.python_version()}); "
        f"{rows:,} ledger rows over {DAYS} days, {WORKSPACES} workspaces, "
        f"{WORKSPACES * PEOPLE_PER_WORKSPACE} people, {WORKSPACES * KEYS_PER_WORKSPACE} keys; "
        f"median of {args.runs} runs after a warm-up; load average "
        f"{load_before:.1f} before and {os.getloadavg()[0]:.1f} after (the machine is shared).",
        "",
        "| what | median | × baseline |",
        "|---|---:|---:|",
    ]
    for label, seconds in [
        ("baseline: `SELECT count(*)` of the whole ledger", baseline),
        (f"report, whole 90 days (totals + reconciliation, {len(queries)} queries)", full),
        ("totals only, 90 days (GROUPING SETS over the daily rollup + 3 lookups)", totals_only),
        ("report, one month (February)", one_month),
        ("totals without the rollup: GROUPING SETS over the ledger, 90 days", ledger_full),
        ("totals without the rollup: five ORM GROUP BY scans, 90 days", orm_full),
    ]:
        lines.append(f"| {label} | {seconds * 1000:.0f} ms | {seconds / baseline:.1f} |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
