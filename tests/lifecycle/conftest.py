"""Helpers for the lifecycle tests: a team with a sandbox key, bounded waits, readable history."""

import time
from urllib.parse import urlsplit

import pytest
from django.utils import timezone

from accounts.models import Membership
from generations import services
from generations.models import CreditEntry, Generation, Status


@pytest.fixture
def bob_membership(cast, team):
    return Membership.objects.get(user=cast["bob"], workspace=team)


def wait_for(predicate, *, timeout: float = 30.0, interval: float = 0.1, what: str = "it"):
    """Poll `predicate` until it returns something truthy, for at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def wait_for_status(generation, statuses, *, timeout: float = 30.0) -> Generation:
    statuses = {statuses} if isinstance(statuses, str) else set(statuses)

    def done():
        fresh = Generation.objects.get(pk=generation.pk)
        return fresh if fresh.status in statuses else None

    try:
        return wait_for(done, timeout=timeout, what=f"status in {sorted(statuses)}")
    except AssertionError:
        fresh = Generation.objects.get(pk=generation.pk)
        raise AssertionError(
            f"{fresh.status} after {timeout} s, wanted {sorted(statuses)}; events: {history(fresh)}"
        ) from None


def history(generation) -> list[tuple[str, str, str]]:
    return [
        (e.from_status, e.to_status, e.source)
        for e in generation.events.order_by("created_at", "id")
    ]


def statuses(generation) -> list[str]:
    return [to for _, to, _ in history(generation)]


def ledger(generation) -> dict[str, int]:
    return dict(CreditEntry.objects.filter(generation=generation).values_list("kind", "credits"))


def submit(membership, key, prompt="A red kite over green hills, slow pan", **params):
    defaults = {
        "model": "seedance-20",
        "duration": 5,
        "aspect_ratio": "16:9",
        "mode": "keyframe",
        "upscale_4k": False,
    }
    defaults.update(params)
    return services.submit(membership=membership, api_key=key, prompt=prompt, **defaults)


class KinoviCalls:
    """Counts the calls reaching the sandbox (served in this process by the live server)."""

    def __init__(self) -> None:
        import threading

        self.creates = 0
        self.record_info: dict[str, int] = {}
        # (start, end) of each recordInfo request per task, to see whether any overlapped.
        self.intervals: dict[str, list[tuple[float, float]]] = {}
        self._current = threading.local()

    def __call__(self, sender, environ=None, **kwargs) -> None:
        from urllib.parse import parse_qs

        path = (environ or {}).get("PATH_INFO", "")
        if path.endswith("/sandbox/api/v1/jobs/createTask"):
            self.creates += 1
        elif path.endswith("/sandbox/api/v1/jobs/recordInfo"):
            task_id = parse_qs(environ.get("QUERY_STRING", "")).get("taskId", [""])[0]
            self.record_info[task_id] = self.record_info.get(task_id, 0) + 1
            self._current.started = (task_id, time.monotonic())

    def finished(self, sender, **kwargs) -> None:
        started = getattr(self._current, "started", None)
        if started is not None:
            task_id, at = started
            self.intervals.setdefault(task_id, []).append((at, time.monotonic()))
            self._current.started = None

    def for_task(self, task_id: str) -> int:
        return self.record_info.get(task_id, 0)


@pytest.fixture
def kinovi_calls():
    from django.core.signals import request_finished, request_started

    calls = KinoviCalls()
    request_started.connect(calls)
    request_finished.connect(calls.finished)
    yield calls
    request_started.disconnect(calls)
    request_finished.disconnect(calls.finished)


class InlineJobs:
    """Runs enqueued jobs at once, in the enqueuing thread, and remembers them."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.paused = False
        self.pending: list[tuple] = []

    def __call__(self, func: str, *args, **kwargs) -> None:
        self.calls.append((func.rsplit(".", 1)[-1], *args))
        if self.paused:
            self.pending.append((func, args))
            return
        self.run(func, args)

    @staticmethod
    def run(func: str, args) -> None:
        from importlib import import_module

        module, name = func.rsplit(".", 1)
        getattr(import_module(module), name)(*args)

    def names(self) -> list[str]:
        return [name for name, *_ in self.calls]


@pytest.fixture
def inline_jobs(monkeypatch):
    """django-q2 jobs run synchronously (for tests that drive one step at a time)."""
    from generations import queue

    jobs = InlineJobs()
    monkeypatch.setattr(queue, "enqueue", jobs)
    return jobs


@pytest.fixture
def no_sleep(monkeypatch):
    """The jobs' Kinovi client retries without really sleeping between attempts."""
    import kinovi
    from generations import vendor

    monkeypatch.setattr(
        vendor, "client_for", lambda secret: kinovi.KinoviClient(secret, sleep=lambda s: None)
    )


@pytest.fixture
def make_key(db):
    """A verified default key of `workspace` with any secret (for tests that mock Kinovi)."""
    from accounts.models import ApiKey

    def make(workspace, secret="sk_live_0123456789abcdef"):
        key = ApiKey(workspace=workspace, label="Main", is_default=True)
        key.secret = secret
        key.status = ApiKey.Status.VERIFIED
        key.save()
        return key

    return make


@pytest.fixture
def callbacks(settings, sandbox_server):
    settings.KINOVI_CALLBACKS = True


def in_flight(sandbox_server, membership, prompt="A lighthouse in a storm, slow zoom", key=None):
    """A generation submitted with a callback URL (jobs inline): waiting, with its sandbox task."""
    key = key or sandbox_server.api_key(membership.workspace)
    generation = submit(membership, key, prompt=prompt)
    generation.refresh_from_db()
    assert generation.status == Status.WAITING, history(generation)
    from sandbox.models import SandboxTask

    task = SandboxTask.objects.get(task_id=generation.task_id)
    return generation, task, urlsplit(task.callback_url).path


def wait_until_ended(task) -> None:
    wait_for(lambda: timezone.now() >= task.ends_at, timeout=10, what="the sandbox task to end")


EMAIL_JOB = "generations.tasks.send_finished_emails"


def queued_email_jobs(*generations) -> list[dict]:
    """The e-mail jobs the broker holds for these generations, decoded (nothing consumed)."""
    from django_q.brokers import get_broker
    from django_q.models import OrmQ
    from django_q.signing import SignedPackage

    broker = get_broker()
    if hasattr(broker.connection, "lrange"):  # Redis
        raw = broker.connection.lrange(broker.list_key, 0, -1)
    else:
        raw = [q.payload for q in OrmQ.objects.all()]
    pks = {g.pk for g in generations}
    jobs = [SignedPackage.loads(payload) for payload in raw]
    return [job for job in jobs if job["func"] == EMAIL_JOB and set(job["args"][0]) & pks]
