"""Tracking at scale: lag between a poll's due time and its execution, one cluster of 2 workers.

Usage:  .venv/bin/python bench/tracking.py [--counts 100,1000,5000] [--runs 2] [--window 60]
                                           [--scale 0.25] [--q-workers 2] [--configs 1x1,25x4]

N generations are put in flight at once (bulk-inserted as the lifecycle leaves them after
createTask: waiting, a sandbox task each, no callback URL, submissions spread over the first
ten seconds of sandbox time), each lasting 60 s at the sandbox (a 5 s standard video, which we
expect to take 90 s). Sandbox time and our cadence are scaled by `--scale`. One gunicorn (2x8)
serves the sandbox; one django-q2 cluster (ORM broker, `--q-workers` workers, one of them held
by the ticker loop) tracks them, started through bench/probe.py, which appends each poll's due
time, claim time and start time to a file. For `--window` seconds after the first poll falls
due, measured: polls started per second and the lag from due to start (p50, p99, in real
seconds: queueing does not scale with the cadence); polls due but not started when the window
closes are reported with their age (the lag they at least have). At scale s, N generations
ask for polls as fast as N / s would at real time. The smallest count is the baseline for
the ratios. Medians over `--runs`.

`--configs` lists poll job shapes as <batch>x<threads> (generations.queue.POLL_BATCH and
POLL_THREADS), measured side by side in each run: 1x1 is one recordInfo per job, as polls
were before batching; the project's own setting is the last one.
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import loadkit  # noqa: E402

LIFE = 60.0  # sandbox seconds, unscaled
BUSIEST = 5.0  # real seconds
SPREAD = 10.0


def in_flight(count: int, *, scale: float, site_url: str) -> tuple[list[int], float]:
    """`count` generations waiting at the sandbox; returns their ids and the first due time."""
    import secrets
    from datetime import timedelta

    from django.db import transaction
    from django.utils import timezone

    from accounts.models import ApiKey, Membership, Role, Workspace
    from accounts.services import create_user
    from generations import polling, pricing
    from generations.models import CreditEntry, Generation, Status
    from sandbox import services as sandbox
    from sandbox.models import SandboxAccount, SandboxTask, hash_key

    tag = secrets.token_hex(4)
    workspace = Workspace.objects.create(name=f"Tracking {tag}")
    user = create_user(email=f"tracking-{tag}@example.com", password=None)
    Membership.objects.create(user=user, workspace=workspace, role=Role.OWNER)
    secret = sandbox.create_account(label=tag, credits=10**9, concurrency_limit=30000)
    account = SandboxAccount.objects.get(key_hash=hash_key(secret))
    key = ApiKey(workspace=workspace, label="Tracking", is_default=True)
    key.secret = secret
    key.status = ApiKey.Status.VERIFIED
    key.save()
    estimate = pricing.estimate(model="seedance-20", duration=5, upscale_4k=False)
    start = timezone.now() + timedelta(seconds=2)
    width, height = sandbox.SIZES["16:9"]
    rows = []
    for n in range(count):
        submitted = start + timedelta(seconds=SPREAD * scale * n / count)
        rows.append((f"task_{secrets.token_hex(16)}", submitted))
    with transaction.atomic():
        SandboxTask.objects.bulk_create(
            SandboxTask(
                task_id=task_id,
                order_id=f"order_{secrets.token_hex(8)}",
                account=account,
                model="seedance-20",
                prompt="Tracking at scale",
                duration=5,
                aspect_ratio="16:9",
                mode="keyframe",
                inputs={},
                public_base=site_url,
                created_at=submitted,
                starts_at=submitted + timedelta(seconds=10 * scale),
                ends_at=submitted + timedelta(seconds=LIFE * scale),
                outcome=SandboxTask.Outcome.SUCCESS,
                credits_charged=estimate.credits,
                width=width,
                height=height,
            )
            for task_id, submitted in rows
        )
        generations = []
        for task_id, submitted in rows:
            g = Generation(
                workspace=workspace,
                creator=user,
                api_key=key,
                prompt="Tracking at scale",
                status=Status.WAITING,
                task_id=task_id,
                estimated_credits=estimate.credits,
                dollars_per_credit=estimate.dollars_per_credit,
                created_at=submitted,
                submitted_at=submitted,
                submit_attempts=1,
            )
            g.next_poll_at = polling.next_poll_at(g, submitted)
            generations.append(g)
        generations = Generation.objects.bulk_create(generations)
        CreditEntry.objects.bulk_create(
            CreditEntry(
                generation=g,
                workspace=workspace,
                user=user,
                api_key=key,
                model=g.model,
                kind=CreditEntry.Kind.RESERVE,
                credits=-g.estimated_credits,
                dollars_per_credit=g.dollars_per_credit,
                created_at=g.submitted_at,
            )
            for g in generations
        )
    return [g.pk for g in generations], min(g.next_poll_at for g in generations).timestamp()


def link_media(task_ids_of, media: list[Path]) -> list[Path]:
    """The rendered template's files hard-linked into each task's folder; the folders made."""
    import os

    from sandbox.media import media_dir
    from sandbox.models import SandboxTask

    folders = []
    for task in SandboxTask.objects.filter(task_id__in=task_ids_of).only("task_id"):
        folder = media_dir(task)
        folder.mkdir(parents=True, exist_ok=True)
        for source in media:
            os.link(source, folder / source.name)
        folders.append(folder)
    return folders


def unlink_media(folders: list[Path]) -> None:
    # A file takes at most 65 000 hard links (ext4): each measurement removes its own.
    import shutil

    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


def one(
    count: int, *, config: str, scale: float, window: float, q_workers: int, workdir: Path, media
) -> dict:
    from django.conf import settings
    from django.utils import timezone

    from generations import lifecycle, queue
    from generations.models import Generation

    settings.KINOVI_POLL_TIME_SCALE = scale
    port = loadkit.free_port()
    site = f"http://127.0.0.1:{port}"
    ids, first_due = in_flight(count, scale=scale, site_url=site)
    folders = link_media(
        Generation.objects.filter(pk__in=ids).values_list("task_id", flat=True), media
    )
    probe = workdir / f"probe-{config}-{count}-{port}.txt"
    batch, threads = config.split("x")
    env = loadkit.site_env(
        port=port,
        media_root=settings.MEDIA_ROOT,
        KINOVI_CALLBACKS="off",
        KINOVI_POLL_TIME_SCALE=scale,
        KINOVI_TICKER_SECONDS=max(window + 30, 60),
        Q_WORKERS=q_workers,
    )
    with (
        loadkit.gunicorn(port=port, env=env, log=workdir / f"web-{port}.log", workers=2, threads=8),
        loadkit.qcluster(
            env=env,
            log=workdir / f"cluster-{port}.log",
            command=[loadkit.PYTHON, "-m", "bench.probe", str(probe), batch, threads],
        ),
    ):
        queue.start_ticker()
        end = first_due + window
        while time.time() < end:
            time.sleep(0.5)
        closed = time.time()
        # Due and not yet started: either still unclaimed, or claimed and waiting in the queue.
        unclaimed = list(
            Generation.objects.filter(
                pk__in=ids,
                status__in=lifecycle.POLLABLE_STATUSES,
                next_poll_at__lte=timezone.now(),
            ).values_list("next_poll_at", flat=True)
        )
        done = Generation.objects.filter(pk__in=ids, status="success").count()
    # Leftovers must not be the next measurement's backlog: take this world out of flight
    # (bench data only) and drop the jobs still queued for it.
    from django_q.models import OrmQ

    Generation.objects.filter(pk__in=ids, status__in=lifecycle.POLLABLE_STATUSES).update(
        status="canceled", next_poll_at=None
    )
    OrmQ.objects.all().delete()
    unlink_media(folders)
    claims: dict[int, list[tuple[float, float]]] = {}
    starts: list[tuple[int, float]] = []
    for line in probe.read_text().splitlines():
        kind, pk, *stamps = line.split()
        if kind == "claim":
            claims.setdefault(int(pk), []).append((float(stamps[0]), float(stamps[1])))
        else:
            starts.append((int(pk), float(stamps[0])))
    # The deepest the queue of claimed, not yet started polls got (the ticker's backpressure).
    events = sorted(
        [(c, 1) for stamps in claims.values() for _, c in stamps] + [(t, -1) for _, t in starts]
    )
    depth = deepest = 0
    for _, step in events:
        depth = max(0, depth + step)
        deepest = max(deepest, depth)
    lags, used = [], {pk: 0 for pk in claims}
    started_at: list[float] = []
    for pk, started in sorted(starts, key=lambda s: s[1]):
        if started > closed or pk not in claims or used[pk] >= len(claims[pk]):
            continue
        due, _ = claims[pk][used[pk]]
        used[pk] += 1
        lags.append(started - due)
        started_at.append(started)
    started_in_window = len(started_at)
    # Capacity: the most polls started in any BUSIEST seconds (the window's average also
    # counts the quiet time once everything finished or before anything was due).
    busiest, first = 0, 0
    for last, moment in enumerate(started_at):
        while moment - started_at[first] > BUSIEST:
            first += 1
        busiest = max(busiest, last - first + 1)
    waiting_claimed = [
        closed - claims[pk][n][0] for pk in claims for n in range(used[pk], len(claims[pk]))
    ]
    pending = waiting_claimed + [closed - due.timestamp() for due in unclaimed]
    return {
        "count": count,
        "polls": started_in_window,
        "rate": started_in_window / window,
        "peak": busiest / BUSIEST,
        "p50": loadkit.median(lags),
        "p99": loadkit.percentile(lags, 0.99),
        "pending": len(pending),
        "pending_age": max(pending, default=0.0),
        "done": done,
        "deepest": deepest,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="100,1000,5000")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--window", type=float, default=60.0, help="real seconds measured")
    parser.add_argument("--scale", type=float, default=0.25)
    parser.add_argument("--q-workers", type=int, default=2)
    parser.add_argument(
        "--configs", help="poll jobs as <batch>x<threads> (default: 1x1 and the project's own)"
    )
    args = parser.parse_args()
    line = loadkit.bench_setup(database="kinovi_bench9_tracking", fresh=True)
    command = " ".join(["bench/tracking.py", *sys.argv[1:]])
    print(loadkit.header("Tracking at scale", command, line))
    workdir = Path(tempfile.mkdtemp(prefix="bench-tracking-"))
    from sandbox.media import ensure_rendered, media_dir
    from sandbox.models import SandboxTask

    # Folders a crashed earlier invocation left behind still hold links to the template.
    sandbox_media = media_dir(SandboxTask(task_id="bench-media")).parent
    unlink_media([p for p in sandbox_media.glob("task_*") if p.is_dir()])
    template = SandboxTask(task_id="bench-media", prompt="bench", duration=5)
    template.width, template.height = 640, 360
    media = list(ensure_rendered(template))

    from generations import queue, tracking

    configs = (args.configs or f"1x1,{queue.POLL_BATCH}x{tracking.POLL_THREADS}").split(",")
    counts = [int(c) for c in args.counts.split(",")]
    results: dict[tuple[str, int], list[dict]] = {}
    for n in range(args.runs):
        for count in counts:
            for config in configs:
                r = one(
                    count,
                    config=config,
                    scale=args.scale,
                    window=args.window,
                    q_workers=args.q_workers,
                    workdir=workdir,
                    media=media,
                )
                results.setdefault((config, count), []).append(r)
                print(
                    f"run {n + 1}, poll jobs {config}, {count} in flight: {r['polls']} polls "
                    f"started in {args.window:.0f} s ({r['rate']:.1f}/s, busiest {BUSIEST:.0f} s "
                    f"{r['peak']:.1f}/s), lag p50 "
                    f"{r['p50']:.1f} s p99 {r['p99']:.1f} s, {r['pending']} due but not started "
                    f"(oldest {r['pending_age']:.0f} s), {r['done']} finished, at most "
                    f"{r['deepest']} claimed polls queued",
                    flush=True,
                )

    def med(config, count, key):
        return statistics.median(r[key] for r in results[config, count])

    base, own = configs[0], configs[-1]
    print(
        f"\nMedians of {args.runs} runs; one cluster of {args.q_workers} workers (one runs the "
        f"ticker loop), ORM broker; time scale {args.scale}: N in flight ask for polls as fast as "
        f"N / {args.scale} would at real time; lags are real seconds (queueing does not scale); "
        f"{args.window:.0f} s measured. Poll jobs <batch>x<threads>; ratios are {own} against "
        f"{base} at the same count.\n"
    )
    print(
        f"| in flight | poll jobs | polls started per s (window / busiest {BUSIEST:.0f} s) | "
        "lag p50 (s) | lag p99 (s) | "
        "due, not started at the end (oldest) | finished in the window | "
        "claimed polls queued, at most |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for count in counts:
        for config in configs:
            print(
                f"| {count} | {config} | {med(config, count, 'rate'):.1f} / "
                f"{med(config, count, 'peak'):.1f} | "
                f"{med(config, count, 'p50'):.1f} | {med(config, count, 'p99'):.1f} | "
                f"{med(config, count, 'pending'):.0f} "
                f"({med(config, count, 'pending_age'):.0f} s) | "
                f"{med(config, count, 'done'):.0f} | {med(config, count, 'deepest'):.0f} |"
            )
    print(
        f"\n| in flight | polls per s over the window, {own} / {base} | busiest {BUSIEST:.0f} s, "
        f"{own} / {base} | lag p50, {base} / {own} |"
    )
    print("|---|---|---|---|")
    for count in counts:
        rate = med(own, count, "rate") / max(med(base, count, "rate"), 1e-9)
        peak = med(own, count, "peak") / max(med(base, count, "peak"), 1e-9)
        lag = med(base, count, "p50") / max(med(own, count, "p50"), 1e-9)
        print(f"| {count} | {rate:.1f}x | {peak:.1f}x | {lag:.1f}x |")


if __name__ == "__main__":
    main()
