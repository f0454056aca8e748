"""Kinovi calls per generation and detection delay: our policy vs the vendor's sample client.

Usage:  .venv/bin/python bench/kinovi_calls.py [--runs 3] [--scale 0.2] [--repeat 2]

A mix of generations lasting 30 s to 4 min at the sandbox (fast and standard, 4 to 15 s, one
4K), some quicker and some slower than our guess from their parameters. Sandbox time and our
poll cadence are both multiplied by `--scale` (0.2: a 4-minute task takes 48 s), so call counts
are those of real time. Delays are given at real time, split the only honest way for a
scaled run: the cluster runs through bench/probe.py, which records each poll's due time, so
the wait our cadence chose (sandbox end -> due time of the poll that saw it) is scaled back,
and the machinery's latency after it (ticker, queue, recordInfo, state machine), which is
real time already, is added as measured. Same for the sample client (its call's start).
With a callback URL the whole delay is machinery and is given as measured.

Each run has two phases, each with its own gunicorn (2x8) serving the site and the sandbox and
its own django-q2 cluster (ORM broker, 4 workers), on the bench database:
  1. no callback URL (polling only) and, at the same time, the vendor's sample client
     (createTask, then recordInfo every 2 s until done) for the same mix: the baseline;
  2. with callback URLs (the sandbox posts the completion webhook; we confirm it).
The sandbox plans each task's life from a tag in its prompt (set right after createTask,
before any poll). Counted: createTask + recordInfo per generation (our own counters, which
tests/lifecycle/test_kinovi_calls.py checks against the sandbox's server), and the delay from
the sandbox's end to our terminal status event.
"""

import argparse
import re
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import loadkit  # noqa: E402

# (model, video seconds, 4K, seconds at the sandbox)
MIX = [
    ("seedance2-fast", 4, False, 30),
    ("seedance2-fast", 8, False, 45),
    ("seedance-20", 5, False, 60),
    ("seedance-20", 5, False, 90),
    ("seedance-20", 10, False, 120),
    ("seedance-20", 5, False, 150),
    ("seedance-20", 15, False, 180),
    ("seedance-20", 10, False, 240),
    ("seedance-20", 15, True, 240),
]
SAMPLE_INTERVAL = 2.0
TAG = re.compile(r"\[bench:len=(\d+)\]")
# Long enough that no task ends on the sandbox's default plan before the bench re-plans it.
DEFAULT_LIFE = 3600


_MEDIA: list = []


def prepare_media() -> None:
    """The sandbox renders a success's MP4 with ffmpeg on first need (seconds on this busy
    machine): the fake vendor's cost, not ours. One rendering, hard-linked into each task's
    folder, takes it out of the measured path."""
    from sandbox.media import ensure_rendered
    from sandbox.models import SandboxTask

    template = SandboxTask(task_id="bench-media", prompt="bench", duration=5)
    template.width, template.height = 640, 360
    _MEDIA[:] = ensure_rendered(template)


def _link_media(task) -> None:
    import os

    from sandbox.media import media_dir

    folder = media_dir(task)
    folder.mkdir(parents=True, exist_ok=True)
    for source in _MEDIA:
        if not (folder / source.name).exists():
            os.link(source, folder / source.name)


def plan_life(task_ids: list[str] | None, *, scale: float, done: set[int]) -> None:
    """Give new sandbox tasks the life their prompt's tag asks for (created_at + length)."""
    from datetime import timedelta

    from sandbox.models import SandboxTask

    tasks = SandboxTask.objects.filter(prompt__contains="[bench:len=").exclude(pk__in=done)
    if task_ids is not None:
        tasks = tasks.filter(task_id__in=task_ids)
    for task in tasks:
        _link_media(task)
        length = int(TAG.search(task.prompt).group(1)) * scale
        ends = task.created_at + timedelta(seconds=length)
        SandboxTask.objects.filter(pk=task.pk).update(
            starts_at=task.created_at + timedelta(seconds=min(10 * scale, length / 4)),
            ends_at=ends,
            webhook_due_at=ends if task.callback_url else None,
        )
        done.add(task.pk)


class Planner(threading.Thread):
    """Re-plans new sandbox tasks every 20 ms (our first poll comes seconds later)."""

    def __init__(self, scale: float) -> None:
        super().__init__(daemon=True)
        self.scale = scale
        self.done: set[int] = set()
        self.stop = threading.Event()

    def run(self) -> None:
        from django.db import connection

        try:
            while not self.stop.is_set():
                plan_life(None, scale=self.scale, done=self.done)
                time.sleep(0.02)
        finally:
            connection.close()


def real_delay(ends: float, due: float, seen: float, scale: float) -> float:
    """The delay at real time, from one scaled run: the wait the cadence chose (from the end
    to the due time of the call that saw it) scales back; the machinery's latency after that
    (queue, ticker, the call, the state machine) is real time already and does not."""
    return max(0.0, due - ends) / scale + (seen - max(due, ends))


def detecting_due(claims: list[tuple[float, float]], seen: float) -> float:
    """Due time of the last poll claimed before the status changed (from bench/probe.py)."""
    due = [d for d, claimed in claims if claimed <= seen]
    return due[-1] if due else seen


def sample_client(secret: str, item, *, scale: float, out: list, planner: Planner) -> None:
    """The vendor's sample: createTask, then recordInfo every 2 s until done."""
    from django.db import connection

    import kinovi
    from sandbox.models import SandboxTask

    model, duration, upscale, length = item
    try:
        with kinovi.KinoviClient(secret) as client:
            task_id = client.create_task(
                model=model,
                prompt=f"Sample client [bench:len={length}]",
                duration=duration,
                aspect_ratio="16:9",
                mode="keyframe",
                upscale_4k=upscale,
            )
            plan_life([task_id], scale=scale, done=planner.done)
            calls = 1
            deadline = time.monotonic() + length * scale * 3 + 30
            while time.monotonic() < deadline:
                time.sleep(SAMPLE_INTERVAL * scale)
                asked = time.time()
                info = client.record_info(task_id)
                calls += 1
                if info.status in ("success", "fail"):
                    seen = time.time()
                    break
            else:
                raise RuntimeError(f"sample client: {task_id} not done in time")
        ends = SandboxTask.objects.get(task_id=task_id).ends_at.timestamp()
        out.append({"item": item, "calls": calls, "delay": real_delay(ends, asked, seen, scale)})
    finally:
        connection.close()


def phase(*, callbacks: bool, scale: float, repeat: int, workdir: Path) -> dict:
    from django.conf import settings

    from accounts.models import ApiKey, Membership, Role, Workspace
    from accounts.services import create_user
    from generations import queue, services
    from generations.models import TERMINAL_STATUSES, Generation, StatusEvent
    from sandbox import services as sandbox
    from sandbox.models import SandboxTask

    port = loadkit.free_port()
    probe = workdir / f"probe-{port}.txt"
    probe.touch()
    env = loadkit.site_env(
        port=port,
        media_root=settings.MEDIA_ROOT,
        KINOVI_CALLBACKS="on" if callbacks else "off",
        KINOVI_POLL_TIME_SCALE=scale,
        KINOVI_SANDBOX_WAIT_SECONDS=DEFAULT_LIFE,
        KINOVI_SANDBOX_GENERATE_SECONDS=DEFAULT_LIFE,
        KINOVI_TICKER_SECONDS=30,
        Q_WORKERS=4,
    )
    settings.KINOVI_BASE_URL = env["KINOVI_BASE_URL"]
    tag = f"{time.time_ns()}"
    workspace = Workspace.objects.create(name=f"Calls {tag}")
    user = create_user(email=f"calls-{tag}@example.com", password=f"pw-{tag}-pw-{tag}")
    membership = Membership.objects.create(user=user, workspace=workspace, role=Role.OWNER)
    key = ApiKey(workspace=workspace, label="Sandbox", is_default=True)
    key.secret = sandbox.create_account(label=tag, credits=10**8, concurrency_limit=1000)
    key.status = ApiKey.Status.VERIFIED
    key.save()
    sample_secret = sandbox.create_account(
        label=f"sample {tag}", credits=10**8, concurrency_limit=1000
    )
    items = MIX * repeat
    planner = Planner(scale)
    sample: list[dict] = []
    with (
        loadkit.gunicorn(port=port, env=env, log=workdir / f"web-{port}.log", workers=2, threads=8),
        loadkit.qcluster(
            env=env,
            log=workdir / f"cluster-{port}.log",
            command=[loadkit.PYTHON, "-m", "bench.probe", str(probe)],
        ),
    ):
        planner.start()
        queue.start_ticker()
        generations = [
            services.submit(
                membership=membership,
                api_key=key,
                prompt=f"A kite over hills [bench:len={length}]",
                model=model,
                duration=duration,
                aspect_ratio="16:9",
                mode="keyframe",
                upscale_4k=upscale,
            )
            for model, duration, upscale, length in items
        ]
        samplers = []
        if not callbacks:
            samplers = [
                threading.Thread(
                    target=sample_client,
                    args=(sample_secret, item),
                    kwargs={"scale": scale, "out": sample, "planner": planner},
                )
                for item in MIX
            ]
            for thread in samplers:
                thread.start()
        ids = [g.pk for g in generations]
        finished = loadkit.wait_until(
            lambda: (
                Generation.objects.filter(pk__in=ids, status__in=TERMINAL_STATUSES).count()
                == len(ids)
            ),
            timeout=max(length for *_, length in MIX) * scale * 4 + 60,
            interval=0.2,
        )
        for thread in samplers:
            thread.join(300)
        planner.stop.set()
        planner.join(5)
    if not finished:
        raise RuntimeError("not every generation finished: see " + str(workdir))
    claims: dict[int, list[tuple[float, float]]] = {}
    for line in probe.read_text().splitlines():
        kind, pk, *stamps = line.split()
        if kind == "claim":
            claims.setdefault(int(pk), []).append((float(stamps[0]), float(stamps[1])))
    ours = []
    for generation, item in zip(
        Generation.objects.filter(pk__in=ids).order_by("pk"), items, strict=True
    ):
        ends = SandboxTask.objects.get(task_id=generation.task_id).ends_at
        event = (
            StatusEvent.objects.filter(generation=generation, to_status__in=TERMINAL_STATUSES)
            .order_by("created_at")
            .first()
        )
        ours.append(
            {
                "item": item,
                "calls": generation.submit_attempts + generation.poll_count,
                # With a callback the news comes by webhook: all of it is machinery (the
                # sandbox's sender, our view, the confirmation), real time already.
                "delay": (event.created_at - ends).total_seconds()
                if callbacks
                else real_delay(
                    ends.timestamp(),
                    detecting_due(claims.get(generation.pk, []), event.created_at.timestamp()),
                    event.created_at.timestamp(),
                    scale,
                ),
                "status": generation.status,
            }
        )
    return {"ours": ours, "sample": sample}


def summary(rows: list[dict]) -> dict:
    return {
        "calls": statistics.mean(r["calls"] for r in rows),
        "delay": statistics.median(r["delay"] for r in rows),
        "relative": statistics.median(r["delay"] / r["item"][3] for r in rows),
        "worst": max(r["delay"] / r["item"][3] for r in rows),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scale", type=float, default=0.2)
    parser.add_argument("--repeat", type=int, default=2, help="generations per mix entry")
    args = parser.parse_args()
    line = loadkit.bench_setup(database="kinovi_bench9_calls", fresh=True)
    command = " ".join(["bench/kinovi_calls.py", *sys.argv[1:]])
    print(loadkit.header("Kinovi calls per generation", command, line))
    workdir = Path(tempfile.mkdtemp(prefix="bench-calls-"))
    prepare_media()
    runs = []
    for n in range(args.runs):
        polled = phase(callbacks=False, scale=args.scale, repeat=args.repeat, workdir=workdir)
        hooked = phase(callbacks=True, scale=args.scale, repeat=args.repeat, workdir=workdir)
        figures = {
            "sample": summary(polled["sample"]),
            "polling": summary(polled["ours"]),
            "webhooks": summary(hooked["ours"]),
            "rows": polled,
        }
        runs.append(figures)
        print(
            f"run {n + 1}: calls/generation sample {figures['sample']['calls']:.1f}, "
            f"polling {figures['polling']['calls']:.1f}, "
            f"webhooks {figures['webhooks']['calls']:.1f}; "
            f"median delay sample {figures['sample']['delay']:.1f} s, "
            f"polling {figures['polling']['delay']:.1f} s "
            f"({figures['polling']['relative']:.1%} of the duration), "
            f"webhooks {figures['webhooks']['delay']:.2f} s; "
            f"max webhook calls {max(r['calls'] for r in hooked['ours'])}"
        )

    def med(kind, key):
        return statistics.median(r[kind][key] for r in runs)

    print(
        f"\nMedians of {args.runs} runs; {len(MIX) * args.repeat} generations per phase "
        f"(the mix x {args.repeat}); the sample client runs the mix once per run; "
        f"time scale {args.scale}.\n"
    )
    print(
        "| | calls per generation (mean) | ratio to sample client | median delay (real s) "
        "| median delay / duration | worst delay / duration |"
    )
    print("|---|---|---|---|---|---|")
    base = med("sample", "calls")
    for kind, label in [
        ("sample", "vendor's sample client (every 2 s), baseline"),
        ("polling", "ours, no callback URL (polling only)"),
        ("webhooks", "ours, with callback URL (webhook + confirmation)"),
    ]:
        print(
            f"| {label} | {med(kind, 'calls'):.1f} | {base / med(kind, 'calls'):.1f}x fewer | "
            f"{med(kind, 'delay'):.2f} | {med(kind, 'relative'):.1%} | {med(kind, 'worst'):.1%} |"
        )
    print("\nPer length (last run, polling only vs sample client):\n")
    print("| model, seconds, 4K | at the sandbox | ours: calls, delay | sample: calls, delay |")
    print("|---|---|---|---|")
    last = runs[-1]["rows"]
    for item in MIX:
        ours = [r for r in last["ours"] if r["item"] == item]
        theirs = [r for r in last["sample"] if r["item"] == item]
        print(
            f"| {item[0]}, {item[1]} s{', 4K' if item[2] else ''} | {item[3]} s | "
            f"{statistics.mean(r['calls'] for r in ours):.1f}, "
            f"{statistics.mean(r['delay'] for r in ours):.1f} s | "
            f"{statistics.mean(r['calls'] for r in theirs):.0f}, "
            f"{statistics.mean(r['delay'] for r in theirs):.1f} s |"
        )


if __name__ == "__main__":
    main()
