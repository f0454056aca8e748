"""Webhook path: deliveries per second and latency from POST to confirmed state, per web setup.

Usage:  .venv/bin/python bench/webhook_path.py [--runs 3] [--deliveries 600] [--concurrency 16]
                                               [--web procfile,2x1] [--sweep 2,4,8,16,32]
                                               [--redis] [--rate 0] [--q-workers 3]

`--web` lists the gunicorn setups measured side by side in one invocation, as workers x
threads: `procfile` is the Procfile's web process (its WEB_CONCURRENCY and WEB_THREADS
defaults, gthread), `2x1` the sync workers it ran before. Each run starts each setup in turn
(the order alternates from run to run, so a drift in the machine's load falls on both) with a
django-q2 cluster (3 workers, ORM broker on PostgreSQL unless --redis) against the bench
database, serving the sandbox as the vendor. `--deliveries` generations wait at the sandbox
with their tasks ended (half fail); one completion webhook each is POSTed at `--concurrency`.
Measured per run and setup:
  - baseline: GET /healthz (a request that touches the database and the broker) per second;
  - deliveries per second (until the last answer) and the answer time p50/p99;
  - latency from a delivery's POST to its generation's confirmed state (recordInfo asked,
    applied, ledger written), p50/p99, and confirmations per second.
Reports medians over the runs per setup, the ratio to each setup's own baseline, and each
setup's figures as a ratio to the last setup listed. `--sweep` first measures the ingestion
rate alone (no cluster) at each concurrency for each setup, to find what the machine takes best.
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import loadkit  # noqa: E402

REDIS_URL = "redis://127.0.0.1:6379/0"


def get_all(url: str, *, count: int, concurrency: int) -> float:
    """Requests per second for `count` GETs of `url` (the baseline)."""
    deliveries = [loadkit.Delivery(0, url, b"")] * count
    import requests

    began = time.perf_counter()
    codes = []

    def one(session, delivery):
        codes.append(session.get(delivery.url, timeout=30).status_code)

    import threading

    cursor = iter(deliveries)
    lock = threading.Lock()

    def worker():
        with requests.Session() as session:
            while True:
                with lock:
                    delivery = next(cursor, None)
                if delivery is None:
                    return
                one(session, delivery)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return len(codes) / (time.perf_counter() - began)


def ingest_rate(results) -> float:
    first = min(r.started for r in results)
    last = max(r.started + r.seconds for r in results)
    return len(results) / (last - first)


def drop_queued_jobs(*, redis: bool) -> None:
    """Drop the confirmations a run without a cluster left queued: the next run's cluster
    would work through them first (the first run after a sweep took 14 to 43 s, not 5, from
    POST to confirmed state)."""
    from django.conf import settings
    from django_q.models import OrmQ

    name = settings.Q_CLUSTER["name"]
    if redis:
        import redis as redis_client

        redis_client.Redis.from_url(REDIS_URL).delete(f"django_q:{name}:q")
    else:
        OrmQ.objects.filter(key=name).delete()


def one_run(
    *,
    count: int,
    concurrency: int,
    cluster: bool,
    redis: bool,
    workdir: Path,
    web=(2, 1),
    q_workers=3,
    rate: float = 0.0,
) -> dict:
    from django.conf import settings

    from generations.models import Generation

    port = loadkit.free_port()
    site = f"http://127.0.0.1:{port}"
    world = loadkit.build_world(
        count=count, site_url=site, media_root=settings.MEDIA_ROOT, duplicate_every=0
    )
    extra = {"Q_WORKERS": q_workers}
    if redis:
        extra["REDIS_URL"] = REDIS_URL
    env = loadkit.site_env(port=port, media_root=settings.MEDIA_ROOT, **extra)
    figures: dict = {}
    with loadkit.gunicorn(
        port=port, env=env, log=workdir / f"gunicorn-{port}.log", workers=web[0], threads=web[1]
    ):
        figures["baseline_rps"] = get_all(
            f"{site}/healthz", count=min(count, 300), concurrency=concurrency
        )
        if not cluster:
            results = loadkit.post_all(world.deliveries, concurrency=concurrency)
            figures["rps"] = ingest_rate(results)
            figures["codes"] = sorted({r.status for r in results})
            drop_queued_jobs(redis=redis)
            return figures
        with loadkit.qcluster(env=env, log=workdir / f"qcluster-{port}.log"):
            results = loadkit.post_all(world.deliveries, concurrency=concurrency, rate=rate)
            loadkit.wait_until(
                lambda: (
                    not Generation.objects.filter(
                        pk__in=world.generation_ids, confirmed_at__isnull=True
                    ).exists()
                ),
                timeout=300,
                interval=0.5,
            )
    confirmed = dict(
        Generation.objects.filter(pk__in=world.generation_ids).values_list("pk", "confirmed_at")
    )
    latencies = [
        confirmed[world.deliveries[r.index].generation_id].timestamp() - r.started
        for r in results
        if confirmed[world.deliveries[r.index].generation_id] is not None
    ]
    first = min(r.started for r in results)
    last = max(c.timestamp() for c in confirmed.values() if c is not None)
    figures.update(
        rps=ingest_rate(results),
        answer_p50=loadkit.median([r.seconds for r in results]),
        answer_p99=loadkit.percentile([r.seconds for r in results], 0.99),
        latency_p50=loadkit.median(latencies),
        latency_p99=loadkit.percentile(latencies, 0.99),
        confirmed=len(latencies),
        confirm_rps=len(latencies) / (last - first),
        codes=sorted({r.status for r in results}),
    )
    return figures


def parse_web(spec: str) -> tuple[str, tuple[int, int]]:
    """`procfile` or `WxT` -> (label, (workers, threads))."""
    if spec == "procfile":
        workers, threads = loadkit.procfile_web()
        return f"{workers}x{threads} (Procfile)", (workers, threads)
    workers, threads = (int(n) for n in spec.split("x"))
    return f"{workers}x{threads}" + (" (sync)" if threads == 1 else ""), (workers, threads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--deliveries", type=int, default=600)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--sweep", default="", help="comma-separated concurrencies, no cluster")
    parser.add_argument("--redis", action="store_true", help="django-q2 on Redis, not the ORM")
    parser.add_argument(
        "--rate", type=float, default=0, help="paced arrivals per second (0: all at once)"
    )
    parser.add_argument("--q-workers", type=int, default=3, help="django-q2 cluster workers")
    parser.add_argument(
        "--web",
        default="procfile,2x1",
        help="comma-separated gunicorn setups, workers x threads or 'procfile' (the last is "
        "the reference for the ratios; 2x1: sync workers)",
    )
    args = parser.parse_args()
    setups = [parse_web(spec) for spec in args.web.split(",")]
    line = loadkit.bench_setup(database="kinovi_bench9_webhooks", fresh=True)
    command = " ".join(["bench/webhook_path.py", *sys.argv[1:]])
    print(loadkit.header("Webhook path", command, line))
    print(f"Load average at the start: {load_average()}\n")
    workdir = Path(tempfile.mkdtemp(prefix="bench-webhook-"))

    if args.sweep:
        print("Ingestion alone (no cluster), 300 deliveries per point:\n")
        print(
            "| gunicorn (workers x threads) | client concurrency | /healthz per s (baseline) "
            "| deliveries per s | ratio |"
        )
        print("|---|---|---|---|---|")
        for concurrency in [int(c) for c in args.sweep.split(",")]:
            for label, web in setups:
                f = one_run(
                    count=300,
                    concurrency=concurrency,
                    cluster=False,
                    redis=args.redis,
                    workdir=workdir,
                    web=web,
                )
                print(
                    f"| {label} | {concurrency} | {f['baseline_rps']:.0f} | {f['rps']:.0f} | "
                    f"{f['rps'] / f['baseline_rps']:.2f} | answers {f['codes']}",
                    flush=True,
                )
        print()

    runs: dict[str, list[dict]] = {label: [] for label, _ in setups}
    for n in range(args.runs):
        for label, web in setups if n % 2 == 0 else setups[::-1]:
            f = one_run(
                count=args.deliveries,
                concurrency=args.concurrency,
                cluster=True,
                redis=args.redis,
                workdir=workdir,
                web=web,
                q_workers=args.q_workers,
                rate=args.rate,
            )
            runs[label].append(f)
            print(
                f"run {n + 1}, {label}: baseline {f['baseline_rps']:.0f}/s, deliveries "
                f"{f['rps']:.0f}/s (answer p50 {f['answer_p50'] * 1000:.0f} ms, p99 "
                f"{f['answer_p99'] * 1000:.0f} ms), POST->confirmed p50 {f['latency_p50']:.2f} s "
                f"p99 {f['latency_p99']:.2f} s, {f['confirmed']}/{args.deliveries} confirmed at "
                f"{f['confirm_rps']:.0f}/s, answers {f['codes']}",
                flush=True,
            )
    if not args.runs:
        print(f"Load average at the end: {load_average()}")
        return

    def med(label, key):
        return statistics.median(r[key] for r in runs[label])

    labels = [label for label, _ in setups]
    reference = labels[-1]
    broker = "Redis" if args.redis else "ORM (PostgreSQL)"
    print(
        f"\nMedians of {args.runs} runs per setup, {args.deliveries} deliveries each, client "
        f"concurrency {args.concurrency}, cluster {args.q_workers} workers, broker {broker}"
        + (f", paced at {args.rate:g} per s" if args.rate else ", all at once")
        + f"; load average at the end: {load_average()}:\n"
    )
    others = labels[:-1]
    print(
        "| figure | "
        + " | ".join(labels)
        + "".join(f" | {label} ÷ {reference}" for label in others)
        + " |"
    )
    print("|---" * (1 + len(labels) + len(others)) + "|")

    def row(name, key, fmt, scale=1.0):
        cells = [fmt.format(med(label, key) * scale) for label in labels]
        ratios = [f"{med(label, key) / med(reference, key):.2f}" for label in others]
        print(f"| {name} | " + " | ".join(cells + ratios) + " |")

    row("GET /healthz per s (baseline)", "baseline_rps", "{:.0f}")
    row("webhook deliveries per s (stored, judged, answered)", "rps", "{:.0f}")
    print(
        "| deliveries per s ÷ the same server's /healthz per s | "
        + " | ".join(f"{med(x, 'rps') / med(x, 'baseline_rps'):.2f}" for x in labels)
        + " |" * (1 + len(others))
    )
    row("answer time p50 (ms)", "answer_p50", "{:.0f}", 1000)
    row("answer time p99 (ms)", "answer_p99", "{:.0f}", 1000)
    row("confirmations per s (recordInfo + state machine)", "confirm_rps", "{:.0f}")
    row("POST -> confirmed p50 (s)", "latency_p50", "{:.2f}")
    row("POST -> confirmed p99 (s)", "latency_p99", "{:.2f}")


def load_average() -> str:
    import os

    return " / ".join(f"{x:.1f}" for x in os.getloadavg()) + " (1 / 5 / 15 min)"


if __name__ == "__main__":
    main()
