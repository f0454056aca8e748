"""Gallery pages at 100 000 generations: server time and queries, beside SELECT count(*).

Usage:  .venv/bin/python bench/gallery_pages.py [--rows 100000] [--runs 7] [--rebuild]

One team workspace with `--rows` generations over a year (five members, both models, every
status, a fifth of the prompts mentioning a lighthouse), made in the database with INSERT ...
SELECT generate_series from one ORM-made template (100 000 ORM saves would take long), plus
a neighbour workspace of a fifth that size. Kept between invocations (`--rebuild` remakes
it). Timed in-process through Django's full stack (middleware, session, the view, the
template), medians of `--runs` after one warm-up, with the queries counted:
  - baseline: SELECT count(*) FROM generations_generation (one scan of the same table);
  - the first page; a filtered page (status done); member + model; a prompt search for a
    common word (a fifth of the rows) and one for rare words (3 rows of the workspace);
  - page 500 (reached with the keyset cursor of the 12 000th row, as "Older" 499 times would).
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import loadkit  # noqa: E402

WORKSPACE = "Gallery bench"
MEMBERS = 5


def populate(rows: int) -> None:
    from django.db import connection, transaction

    from accounts.models import ApiKey, Membership, Role, Workspace
    from accounts.services import create_user
    from generations.models import Generation

    with transaction.atomic():
        Workspace.objects.filter(name__in=[WORKSPACE, f"{WORKSPACE} neighbour"]).update(
            name="Gallery bench (old)"
        )
        team = Workspace.objects.create(name=WORKSPACE)
        neighbour = Workspace.objects.create(name=f"{WORKSPACE} neighbour")
        people = []
        for n in range(MEMBERS):
            person = create_user(
                email=f"gallery{time.time_ns()}-{n}@bench.example", password=None, name=f"P{n}"
            )
            Membership.objects.create(
                user=person, workspace=team, role=Role.OWNER if n == 0 else Role.MEMBER
            )
            people.append(person)
        Membership.objects.create(user=people[0], workspace=neighbour, role=Role.OWNER)
        keys = []
        for workspace in (team, neighbour):
            key = ApiKey(workspace=workspace, label="Bench", is_default=True)
            key.secret = "sk-bench-not-a-real-key-0000"
            key.save()
            keys.append(key)
        template = Generation.objects.create(
            workspace=team,
            creator=people[0],
            api_key=keys[0],
            prompt="template",
            status="success",
            estimated_credits=200,
        )
        columns = [
            f.column
            for f in Generation._meta.concrete_fields
            if f.column
            not in {
                "id",
                "public_id",
                "workspace_id",
                "creator_id",
                "api_key_id",
                "prompt",
                "status",
                "model",
                "created_at",
                "task_id",
                "video_url",
            }
        ]
        statuses = (
            "ARRAY['success','success','success','success','fail','success','canceled',"
            "'rejected','success','generating']"
        )
        people_ids = "ARRAY[" + ",".join(str(p.pk) for p in people) + "]"
        for workspace, key, count in ((team, keys[0], rows), (neighbour, keys[1], rows // 5)):
            with connection.cursor() as cursor:
                cursor.execute(
                    f"""
                    INSERT INTO generations_generation
                        (public_id, workspace_id, creator_id, api_key_id, prompt, status, model,
                         created_at, video_url, {", ".join(columns)})
                    SELECT gen_random_uuid(), %s, ({people_ids})[1 + n %% {MEMBERS}], %s,
                        CASE WHEN n %% 5 = 0 THEN 'A lighthouse in a storm, slow zoom ' || n
                             ELSE 'A red kite over green hills, take ' || n END,
                        ({statuses})[1 + n %% 10],
                        CASE WHEN n %% 3 = 0 THEN 'seedance2-fast' ELSE 'seedance-20' END,
                        now() - make_interval(secs => n * 315.0),
                        CASE WHEN n %% 10 IN (0, 1, 2, 3, 5, 8)
                             THEN 'https://cdn.example/v/' || n || '.mp4' ELSE '' END,
                        {", ".join(f"t.{c}" for c in columns)}
                    FROM generations_generation t, generate_series(1, %s) AS n
                    WHERE t.id = %s
                    """,
                    [workspace.pk, key.pk, count, template.pk],
                )
        template.delete()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE generations_generation")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--explain", action="store_true", help="print each page's slowest SQL")
    args = parser.parse_args()
    line = loadkit.bench_setup()
    from django.db import connection, reset_queries
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from accounts.models import Membership, Workspace
    from generations.models import Generation

    team = Workspace.objects.filter(name=WORKSPACE).first()
    if args.rebuild or team is None or team.generations.count() != args.rows:
        began = time.perf_counter()
        populate(args.rows)
        print(f"(populated in {time.perf_counter() - began:.0f} s)")
        team = Workspace.objects.get(name=WORKSPACE)
    total = Generation.objects.count()
    command = " ".join(["bench/gallery_pages.py", *sys.argv[1:]])
    print(loadkit.header("Gallery pages", command, line))

    owner = Membership.objects.filter(workspace=team, role="owner").first().user
    member = Membership.objects.filter(workspace=team, role="member").first().user
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(owner, backend="django.contrib.auth.backends.ModelBackend")
    session = client.session
    session["workspace_id"] = team.pk
    session.save()

    visible = Generation.objects.filter(workspace=team, hidden=False).order_by("-created_at", "-id")
    row = visible.values("created_at", "pk")[499 * 24 - 1]
    cursor = f"{int(row['created_at'].timestamp() * 1_000_000)}-{row['pk']}"
    pages = [
        ("first page", "/"),
        ("filtered: status done", "/?status=success"),
        ("filtered: member + model", f"/?member={member.pk}&model=seedance2-fast"),
        ("search: prompt contains lighthouse", "/?q=lighthouse"),
        ("search: rare words, 3 matches", "/?q=ZOOM+4240"),
        ("page 500 (keyset cursor)", f"/?before={cursor}"),
    ]

    def count_all():
        with connection.cursor() as c:
            c.execute("SELECT count(*) FROM generations_generation")
            return c.fetchone()[0]

    def timed(fn) -> float:
        fn()  # warm-up
        times = []
        for _ in range(args.runs):
            started = time.perf_counter()
            fn()
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    base = timed(count_all)
    print(
        f"{args.rows:,} generations in the workspace, {total:,} in the table; "
        f"medians of {args.runs} runs after a warm-up; in-process through the whole Django "
        "stack (no network), DEBUG on.\n"
    )
    print("| request | server time (ms) | queries | ratio to count(*) |")
    print("|---|---|---|---|")
    print(
        f"| `SELECT count(*)` on generations_generation (baseline) | {base * 1000:.1f} | 1 | 1.00 |"
    )
    for label, url in pages:
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        assert b"gallery" in response.content.lower()
        # The request_started signal empties the query log: start from an empty one.
        reset_queries()
        with CaptureQueriesContext(connection) as queries:
            client.get(url)
        if args.explain:
            for query in sorted(queries, key=lambda q: -float(q["time"]))[:2]:
                print(f"    {float(query['time']) * 1000:.1f} ms: {query['sql'][:300]}")
        reset_queries()
        seconds = timed(lambda url=url: client.get(url))
        print(
            f"| {label} (`{url[:40]}`) | {seconds * 1000:.1f} | {len(queries)} | "
            f"{seconds / base:.2f} |"
        )


if __name__ == "__main__":
    main()
