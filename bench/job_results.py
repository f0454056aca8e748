"""What django-q2 costs per finished job to keep its result, with and without its own pruning.

Usage:  .venv/bin/python bench/job_results.py [--runs 5] [--jobs 40] [--kept 1000]

With `save_limit: N > 0`, django-q2 runs, after every job, SELECT ... FOR UPDATE over every
kept success row (to delete one when N are kept): a read of N rows and a lock that makes all
workers of all clusters wait for each other. With `save_limit: 0` it only inserts the row; our
sweeper prunes old rows in batches (generations.ticker.prune_job_results). This calls
django_q.monitor.save_task (what a cluster's monitor runs per job) on a table holding
`--kept` success rows, alternating both settings, `--jobs` saves per run; medians of `--runs`.
Baseline: one INSERT of a similar row with the ORM (what saving can cost at least).
"""

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import loadkit  # noqa: E402


def package() -> dict:
    from django.utils import timezone

    now = timezone.now()
    return {
        "id": uuid.uuid4().hex,
        "name": uuid.uuid4().hex,
        "func": "generations.tasks.confirm_delivery",
        "args": (1,),
        "kwargs": {},
        "started": now,
        "stopped": now,
        "result": "applied",
        "success": True,
        "group": None,
        "attempt_count": 1,
        "cluster": "bench",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=40)
    parser.add_argument("--kept", type=int, default=1000)
    args = parser.parse_args()
    line = loadkit.bench_setup(database="kinovi_bench9_jobs", fresh=True)
    from django.utils import timezone
    from django_q import monitor
    from django_q.brokers import get_broker
    from django_q.conf import Conf
    from django_q.models import Task

    print(loadkit.header("Job results", " ".join(["bench/job_results.py", *sys.argv[1:]]), line))
    broker = get_broker()

    def refill() -> None:
        Task.objects.all().delete()
        now = timezone.now()
        Task.objects.bulk_create(
            Task(
                id=uuid.uuid4().hex,
                name=f"kept {n}",
                func="generations.tasks.poll_generation",
                started=now,
                stopped=now,
                success=True,
                result="waiting -> generating",
                attempt_count=1,
            )
            for n in range(args.kept)
        )

    def per_job(limit: int | None) -> float:
        times = []
        for _ in range(args.jobs):
            started = time.perf_counter()
            if limit is None:
                Task.objects.create(**{k: v for k, v in package().items() if k != "cluster"})
            else:
                Conf.SAVE_LIMIT = limit
                monitor.save_task(package(), broker)
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    figures: dict[str, list[float]] = {"baseline": [], "limit": [], "zero": []}
    for _ in range(args.runs):
        refill()
        figures["baseline"].append(per_job(None))
        refill()
        figures["limit"].append(per_job(args.kept))
        refill()
        figures["zero"].append(per_job(0))
    base = statistics.median(figures["baseline"])
    print(
        f"Per finished job, {args.kept} success rows kept, median of {args.runs} runs "
        f"x {args.jobs} jobs:\n"
    )
    print("| saving one job's result | ms | ratio to baseline |")
    print("|---|---|---|")
    for key, label in [
        ("baseline", "plain INSERT (baseline)"),
        ("limit", f"django-q2 save_task, save_limit {args.kept} (before)"),
        ("zero", "django-q2 save_task, save_limit 0 (now; the sweeper prunes)"),
    ]:
        value = statistics.median(figures[key])
        print(f"| {label} | {value * 1000:.1f} | {value / base:.1f} |")
    Task.objects.all().delete()


if __name__ == "__main__":
    main()
