"""Shared by the load test and the benchmarks: real processes, in-flight worlds, a POST blaster.

Everything here talks to the project over loopback HTTP (gunicorn serving the site and the
sandbox) and to PostgreSQL; nothing is mocked. Loops are bounded by counts and deadlines.
"""

import contextlib
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
GUNICORN = str(Path(PYTHON).parent / "gunicorn")
# Long and varied enough for Django's checks; these processes only ever see loopback traffic.
SECRET_KEY = "bench-load-" + "q8Wm3Zt6Xr1Pk9Lv4Bn7Hd2Jf5Gs0Yc" * 2
# Our own variables are dropped from the parent environment, so a shell's settings cannot leak.
_OURS = {
    "DEBUG",
    "SECRET_KEY",
    "FIELD_ENCRYPTION_KEYS",
    "ALLOWED_HOSTS",
    "SITE_URL",
    "DATABASE_URL",
    "REDIS_URL",
    "LOG_FORMAT",
    "LOG_LEVEL",
    "KINOVI_SANDBOX",
    "KINOVI_BASE_URL",
    "KINOVI_CALLBACKS",
    "MEDIA_ROOT",
    "Q_CLUSTER_NAME",
    "Q_WORKERS",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url() -> str:
    """The URL of the database this process uses, for subprocesses to share it."""
    from django.db import connection

    s = connection.settings_dict
    return (
        f"postgres://{s.get('USER') or 'postgres'}@{s.get('HOST') or '127.0.0.1'}:"
        f"{s.get('PORT') or 5432}/{s['NAME']}"
    )


def site_env(*, port: int, media_root: Path, **overrides) -> dict[str, str]:
    """Production settings (DEBUG off, JSON logs) on loopback with the sandbox as the vendor.

    The encryption keys are this process's, so a key stored here decrypts there.
    """
    from django.conf import settings

    site = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k not in _OURS}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "kinovi_site.settings",
            "PYTHONUNBUFFERED": "1",
            "DEBUG": "false",
            "SECRET_KEY": SECRET_KEY,
            "FIELD_ENCRYPTION_KEYS": ",".join(settings.FIELD_ENCRYPTION_KEYS),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SECURE_SSL_REDIRECT": "false",
            "SITE_URL": site,
            "DATABASE_URL": database_url(),
            "KINOVI_SANDBOX": "true",
            "KINOVI_BASE_URL": f"{site}/sandbox/api/v1",
            "KINOVI_CALLBACKS": "on",
            "KINOVI_CONNECT_TIMEOUT": "2",
            "KINOVI_READ_TIMEOUT": "10",
            "KINOVI_TICKER_SECONDS": "5",
            "MEDIA_ROOT": str(media_root),
            "LOG_LEVEL": "WARNING",
            # This process's queue name: what it enqueues (the ticker's start, submissions)
            # must reach the cluster; with the ORM broker the queue lives in this database.
            "Q_CLUSTER_NAME": settings.Q_CLUSTER["name"],
        }
    )
    env.update({k: str(v) for k, v in overrides.items()})
    return env


@contextlib.contextmanager
def process(command: list[str], *, env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    """Run a command in its own process group; on exit stop it (TERM, then KILL) and reap it."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            yield proc
        finally:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=20)
            # Whatever of the group is left (a stuck worker) is killed.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def procfile_web() -> tuple[int, int]:
    """Workers and threads of the Procfile's web process when WEB_CONCURRENCY and WEB_THREADS
    are unset: read from the Procfile, so a benchmark of "the Procfile" cannot drift from it."""
    line = next(
        (x for x in (ROOT / "Procfile").read_text().splitlines() if x.startswith("web:")), ""
    )
    workers = re.search(r"--workers \$\{WEB_CONCURRENCY:-(\d+)\}", line)
    threads = re.search(r"--threads \$\{WEB_THREADS:-(\d+)\}", line)
    if not (workers and threads):
        raise RuntimeError(f"Procfile's web line names no WEB_CONCURRENCY/WEB_THREADS: {line!r}")
    return int(workers[1]), int(threads[1])


@contextlib.contextmanager
def gunicorn(
    *,
    port: int,
    env: dict[str, str],
    log: Path,
    workers: int | None = None,
    threads: int | None = None,
):
    """The Procfile's web process on 127.0.0.1:`port`: its workers and threads unless given.

    `threads=1` runs sync workers (the Procfile's web process before it moved to gthread), so
    the two can be measured side by side.
    """
    default_workers, default_threads = procfile_web()
    workers = default_workers if workers is None else workers
    threads = default_threads if threads is None else threads
    command = [
        GUNICORN,
        "kinovi_site.wsgi",
        "--workers",
        str(workers),
        "--bind",
        f"127.0.0.1:{port}",
        "--timeout",
        "30",
        "--backlog",
        "2048",
        # Several servers run at once on this machine: none needs gunicorn's shared socket.
        "--no-control-socket",
    ]
    if threads > 1:
        command += ["--worker-class", "gthread", "--threads", str(threads)]
    with process(command, env=env, log=log) as proc:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", proc=proc, log=log)
        yield proc


@contextlib.contextmanager
def qcluster(*, env: dict[str, str], log: Path, timeout: float = 30, command=None):
    # INFO: django-q2 says "running." at that level, which is how readiness is seen.
    env = {**env, "LOG_LEVEL": "INFO"}
    with process(command or [PYTHON, "manage.py", "qcluster"], env=env, log=log) as proc:
        deadline = time.monotonic() + timeout
        while b"running." not in log.read_bytes():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"qcluster did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        yield proc


def wait_for_http(url: str, *, proc: subprocess.Popen, log: Path, timeout: float = 30) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited early:\n{log.read_text()[-3000:]}")
        try:
            # A worker imports Django on its first request: slow on a busy machine.
            requests.get(url, timeout=10)
            return
        except (requests.ConnectionError, requests.Timeout):
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout} s:\n{log.read_text()[-3000:]}")


# --- a world of generations in flight, whose sandbox tasks have ended ---------------------------


@dataclass
class Delivery:
    generation_id: int
    url: str
    body: bytes
    duplicate: bool = False


@dataclass
class World:
    generation_ids: list[int]
    deliveries: list[Delivery]
    # What Kinovi finally charges per generation (0 for a failure): the ledger must sum to it.
    charged: dict[int, int] = field(default_factory=dict)


def build_world(
    *, count: int, site_url: str, media_root: Path, duplicate_every: int = 2, ended_ago: float = 1
) -> World:
    """`count` generations generating at the sandbox, their tasks already ended, and their
    completion webhooks (every `duplicate_every`-th one sent twice: a third of all deliveries
    are duplicates with the default 2).

    Rows are bulk-inserted as the lifecycle leaves them after createTask (status generating, a
    reserve row each): thousands of real createTask round trips would measure the submit path,
    not the webhook path. Every other task fails (refund); a third of the successes are charged
    less than estimated (capture), so the ledger check covers all three kinds. Success media is
    rendered once and hard-linked into each task's folder (ffmpeg per task would dominate).
    """
    import json
    import secrets

    from django.conf import settings
    from django.db import transaction
    from django.urls import reverse
    from django.utils import timezone

    from accounts.models import ApiKey, Membership, Role, Workspace
    from accounts.models import hash_token as hash_callback_token
    from accounts.services import create_user
    from generations import pricing
    from generations.models import CreditEntry, Generation, Price, Status
    from sandbox import services as sandbox
    from sandbox.media import ensure_rendered, media_dir
    from sandbox.models import SandboxAccount, SandboxTask, hash_key

    if Path(settings.MEDIA_ROOT).resolve() != Path(media_root).resolve():
        raise ValueError("The web process must share this process's MEDIA_ROOT (sandbox media).")
    tag = uuid.uuid4().hex[:8]
    if not Price.objects.exists():
        for model, rate in sandbox.CREDITS_PER_SECOND.items():
            Price.objects.create(
                model=model,
                credits_per_second=rate,
                upscale_4k_credits_per_second=sandbox.UPSCALE_4K_CREDITS_PER_SECOND,
                dollars_per_credit="0.005",
                valid_from=timezone.now() - timedelta(days=1),
            )
    workspace = Workspace.objects.create(name=f"Load {tag}")
    user = create_user(email=f"load-{tag}@example.com", password=secrets.token_urlsafe(16))
    Membership.objects.create(user=user, workspace=workspace, role=Role.OWNER)
    secret = sandbox.create_account(label=f"load {tag}", credits=10**9, concurrency_limit=10**4)
    account = SandboxAccount.objects.get(key_hash=hash_key(secret))
    key = ApiKey(workspace=workspace, label="Load", is_default=True)
    key.secret = secret
    key.status = ApiKey.Status.VERIFIED
    key.save()

    now = timezone.now()
    ends = now - timedelta(seconds=ended_ago)
    estimate = pricing.estimate(model="seedance-20", duration=5, upscale_4k=False)
    width, height = sandbox.frame_size("16:9", "720p")
    plans = []
    for n in range(count):
        fails = n % 2 == 1
        charged = estimate.credits if fails or n % 3 else estimate.credits - 20
        plans.append((f"task_{secrets.token_hex(16)}", secrets.token_urlsafe(32), fails, charged))

    with transaction.atomic():
        tasks = SandboxTask.objects.bulk_create(
            SandboxTask(
                task_id=task_id,
                order_id=f"order_{secrets.token_hex(8)}",
                account=account,
                model="seedance-20",
                prompt="A kite over green hills, load test",
                duration=5,
                aspect_ratio="16:9",
                mode="keyframe",
                inputs={},
                public_base=site_url,
                created_at=ends - timedelta(seconds=60),
                starts_at=ends - timedelta(seconds=50),
                ends_at=ends,
                outcome=SandboxTask.Outcome.FAIL if fails else SandboxTask.Outcome.SUCCESS,
                error_code=sandbox.SERVER_ERROR_CODE if fails else "",
                error_message=sandbox.SERVER_ERROR_MESSAGE if fails else "",
                credits_charged=charged,
                width=width,
                height=height,
            )
            for task_id, _, fails, charged in plans
        )
        generations = Generation.objects.bulk_create(
            Generation(
                workspace=workspace,
                creator=user,
                api_key=key,
                prompt="A kite over green hills, load test",
                status=Status.GENERATING,
                task_id=task_id,
                estimated_credits=estimate.credits,
                dollars_per_credit=estimate.dollars_per_credit,
                created_at=ends - timedelta(seconds=61),
                submitted_at=ends - timedelta(seconds=61),
                started_at=ends - timedelta(seconds=50),
                # A callback is expected: the safety-net poll is minutes away.
                next_poll_at=now + timedelta(hours=1),
                submit_attempts=1,
                callback_token_hash=hash_callback_token(token),
            )
            for task_id, token, _, _ in plans
        )
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

    successes = [t for t in tasks if t.outcome == SandboxTask.Outcome.SUCCESS]
    if successes:
        video, frame = ensure_rendered(successes[0])
        for task in successes[1:]:
            folder = media_dir(task)
            folder.mkdir(parents=True, exist_ok=True)
            os.link(video, folder / video.name)
            os.link(frame, folder / frame.name)

    world = World(generation_ids=[g.pk for g in generations], deliveries=[])
    for n, (generation, task, (_, token, fails, charged)) in enumerate(
        zip(generations, tasks, plans, strict=True)
    ):
        world.charged[generation.pk] = 0 if fails else charged
        url = site_url + reverse("kinovi-webhook", args=[generation.public_id, token])
        body = json.dumps(sandbox.webhook_body(task)).encode()
        world.deliveries.append(Delivery(generation.pk, url, body))
        if duplicate_every and n % duplicate_every == 0:
            # Right behind its original, as a vendor's retry after a slow answer would be.
            world.deliveries.append(Delivery(generation.pk, url, body, duplicate=True))
    return world


# --- the blaster --------------------------------------------------------------------------------


@dataclass
class Result:
    index: int
    status: int  # 0: no HTTP answer (connection error or timeout)
    started: float  # time.time() when the request was sent
    seconds: float
    error: str = ""


def post_all(
    deliveries: list[Delivery], *, concurrency: int, timeout: float = 30, rate: float = 0
) -> list[Result]:
    """POST every delivery once, `concurrency` at a time, in order; one keep-alive session per
    thread (gunicorn's sync workers close each connection, gthread keeps it). With `rate`,
    delivery i is not sent before i / rate seconds (an open-loop, paced arrival)."""
    began = time.monotonic()
    import requests

    results: list[Result | None] = [None] * len(deliveries)
    cursor = iter(range(len(deliveries)))
    lock = threading.Lock()

    def worker() -> None:
        with requests.Session() as session:
            while True:
                with lock:
                    index = next(cursor, None)
                if index is None:
                    return
                delivery = deliveries[index]
                if rate:
                    time.sleep(max(0.0, began + index / rate - time.monotonic()))
                started, tick = time.time(), time.perf_counter()
                try:
                    response = session.post(
                        delivery.url,
                        data=delivery.body,
                        headers={
                            "Content-Type": "application/json",
                            "User-Agent": "Kinovi-Load/1",
                        },
                        timeout=timeout,
                    )
                    results[index] = Result(
                        index, response.status_code, started, time.perf_counter() - tick
                    )
                except requests.RequestException as exc:
                    results[index] = Result(
                        index, 0, started, time.perf_counter() - tick, type(exc).__name__
                    )

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout * len(deliveries) / concurrency + 60)
    return [r for r in results if r is not None]


def wait_until(predicate, *, timeout: float, interval: float = 0.25):
    """Poll `predicate` until it returns something truthy or the deadline passes (then None)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return None


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (p99 of 1 000 values is the 990th smallest)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.5)))
    return ordered[rank - 1]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def machine() -> str:
    """One line naming the machine, for every benchmark's header."""
    import platform

    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        pg = cursor.fetchone()[0]
    memory = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / 2**20:.0f} GiB"
    return (
        f"{os.cpu_count()} CPU cores{memory}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, PostgreSQL {pg.split()[0]} on 127.0.0.1"
    )


# --- benchmarks' own database --------------------------------------------------------------------

BENCH_DATABASE = "kinovi_bench9"


def bench_setup(*, database: str = BENCH_DATABASE, fresh: bool = False) -> str:
    """Point Django at a benchmark database (created and migrated here), and set it up.

    Must run before anything imports a model. `fresh` drops the database first (benchmarks
    whose clusters must not meet another benchmark's leftovers). Returns the machine line for
    the benchmark's header.
    """
    url = os.environ.get("BENCH9_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/x")
    url = url.rsplit("/", 1)[0] + "/" + database
    name = url.rsplit("/", 1)[1]
    if not name.startswith("kinovi_bench"):
        raise SystemExit(f"Refusing to work in {name!r}: a bench database is named kinovi_bench*.")
    import psycopg

    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        if fresh:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    for variable in _OURS:
        os.environ.pop(variable, None)
    os.environ.update(
        {
            "DATABASE_URL": url,
            # The processes started by site_env() sign django-q2 packages with this key: the
            # jobs this process enqueues (the ticker's start, submissions) must verify there.
            "SECRET_KEY": SECRET_KEY,
            "DJANGO_SETTINGS_MODULE": "kinovi_site.settings",
            "LOG_LEVEL": "WARNING",
            "MEDIA_ROOT": str(Path(os.environ.get("TMPDIR", "/tmp")) / f"{name}-media"),
        }
    )
    sys.path.insert(0, str(ROOT))
    # A stopped benchmark still stops the servers and clusters it started (context managers).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return machine()


def header(title: str, command: str, line: str) -> str:
    from datetime import UTC, datetime

    return f"## {title}\n\n`{command}` — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {line}.\n"
