"""Webhook path: deliveries per second and latency from POST to confirmed state (gunicorn x2).

Usage:  .venv/bin/python bench/webhook_path.py [--runs 3] [--deliveries 600] [--concurrency 16]
                                               [--sweep 2,4,8,16,32] [--redis]

Each run starts the Procfile's web process (gunicorn, 2 sync workers) and a django-q2 cluster
(3 workers, ORM broker on PostgreSQL unless --redis) against the bench database, serving the
sandbox as the vendor. `--deliveries` generations wait at the sandbox with their tasks ended
(half fail); one completion webhook each is POSTed at `--concurrency`. Measured per run:
  - baseline: GET /healthz (a request that touches the database and the broker) per second;
  - deliveries per second (until the last answer) and the answer time p50/p99;
  - latency from a delivery's POST to its generation's confirmed state (recordInfo asked,
    applied, ledger written), p50/p99, and confirmations per second.
Reports medians over the runs and the ratio to the baseline. `--sweep` first measures the
ingestion rate alone (no cluster) at each concurrency, to find what the machine takes best.
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import loadkit  # noqa: E402


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
        extra["REDIS_URL"] = "redis://127.0.0.1:6379/0"
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
    parser.add_argument("--web", default="2x1", help="gunicorn workers x threads (2x1: Procfile)")
    args = parser.parse_args()
    web = tuple(int(n) for n in args.web.split("x"))
    line = loadkit.bench_setup(database="kinovi_bench9_webhooks", fresh=True)
    command = " ".join(["bench/webhook_path.py", *sys.argv[1:]])
    print(loadkit.header("Webhook path", command, line))
    workdir = Path(tempfile.mkdtemp(prefix="bench-webhook-"))

    if args.sweep:
        print("Ingestion alone (no cluster), 300 deliveries per point:\n")
        print("| client concurrency | /healthz per s (baseline) | deliveries per s | ratio |")
        print("|---|---|---|---|")
        for concurrency in [int(c) for c in args.sweep.split(",")]:
            f = one_run(
                count=300,
                concurrency=concurrency,
                cluster=False,
                redis=args.redis,
                workdir=workdir,
                web=web,
            )
            print(
                f"| {concurrency} | {f['baseline_rps']:.0f} | {f['rps']:.0f} | "
                f"{f['rps'] / f['baseline_rps']:.2f} | answers {f['codes']}"
            )
        print()

    runs = []
    for n in range(args.runs):
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
        runs.append(f)
        print(
            f"run {n + 1}: baseline {f['baseline_rps']:.0f}/s, deliveries {f['rps']:.0f}/s "
            f"(answer p50 {f['answer_p50'] * 1000:.0f} ms, p99 {f['answer_p99'] * 1000:.0f} ms), "
            f"POST->confirmed p50 {f['latency_p50']:.2f} s p99 {f['latency_p99']:.2f} s, "
            f"{f['confirmed']}/{args.deliveries} confirmed at {f['confirm_rps']:.0f}/s, "
            f"answers {f['codes']}"
        )

    def med(key):
        return statistics.median(r[key] for r in runs)

    broker = "Redis" if args.redis else "ORM (PostgreSQL)"
    print(
        f"\nMedians of {args.runs} runs, {args.deliveries} deliveries each, client concurrency "
        f"{args.concurrency}, gunicorn {args.web} (workers x threads), "
        f"cluster {args.q_workers} workers, broker {broker}"
        + (f", paced at {args.rate:g} per s" if args.rate else ", all at once")
        + ":\n"
    )
    print("| figure | median | ratio to baseline |")
    print("|---|---|---|")
    print(f"| GET /healthz per s (baseline) | {med('baseline_rps'):.0f} | 1.00 |")
    print(
        f"| webhook deliveries per s (stored, judged, answered) | {med('rps'):.0f} | "
        f"{med('rps') / med('baseline_rps'):.2f} |"
    )
    print(
        f"| answer time p50 / p99 | {med('answer_p50') * 1000:.0f} / "
        f"{med('answer_p99') * 1000:.0f} ms | |"
    )
    print(
        f"| confirmations per s (recordInfo + state machine) | {med('confirm_rps'):.0f} | "
        f"{med('confirm_rps') / med('baseline_rps'):.2f} |"
    )
    print(
        f"| POST -> confirmed p50 / p99 | {med('latency_p50'):.2f} / {med('latency_p99'):.2f} s | |"
    )


if __name__ == "__main__":
    main()
