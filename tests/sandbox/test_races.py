"""Concurrent callers on PostgreSQL: the account lock and the webhook claim hold."""

import threading

import pytest
from django.db import connection

import kinovi
from sandbox import tasks
from sandbox.models import SandboxAccount, SandboxTask
from tests.kinovi.conftest import FaultyServer
from tests.sandbox.conftest import later

ASK = dict(
    model="seedance2-fast",
    prompt="Paper boats in a gutter",
    duration=4,
    aspect_ratio="4:3",
    mode="keyframe",
    upscale_4k=False,
)


def run_together(functions):
    barrier = threading.Barrier(len(functions))
    results = [None] * len(functions)

    def run(index, function):
        try:
            barrier.wait(timeout=10)
            results[index] = function()
        except Exception as exc:  # the outcome is what the test inspects
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=pair) for pair in enumerate(functions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def test_parallel_creates_cannot_overrun_the_concurrency_limit(make_account, make_client):
    key, account = make_account(credits=10_000, concurrency_limit=1)
    clients = [make_client(key) for _ in range(4)]
    results = run_together([lambda c=c: c.create_task(**ASK) for c in clients])
    created = [r for r in results if isinstance(r, str)]
    limited = [r for r in results if isinstance(r, kinovi.ConcurrencyLimited)]
    assert (len(created), len(limited)) == (1, 3), results
    assert SandboxAccount.objects.get(pk=account.pk).credits == 10_000 - 112


def test_parallel_creates_cannot_overdraw(make_account, make_client):
    key, account = make_account(credits=250, concurrency_limit=10)
    clients = [make_client(key) for _ in range(4)]
    results = run_together([lambda c=c: c.create_task(**ASK) for c in clients])
    assert sum(isinstance(r, str) for r in results) == 2, results
    assert sum(isinstance(r, kinovi.InsufficientCredits) for r in results) == 2
    assert SandboxAccount.objects.get(pk=account.pk).credits == 250 - 224


@pytest.mark.usefixtures("sandbox_api")
def test_parallel_senders_deliver_each_webhook_once(make_account, make_client, clock):
    receiver = FaultyServer().start()
    receiver.behaviour = (200, b"{}")
    try:
        key, _ = make_account(concurrency_limit=10)
        client = make_client(key)
        ids = {
            client.create_task(
                **{**ASK, "prompt": f"Boat {n} [sandbox:fail]"},
                callback_url=receiver.base_url + "/hook",
            )
            for n in range(6)
        }
        later(clock, 11)
        sent = run_together([tasks.send_due_webhooks for _ in range(3)])
        assert sum(sent) == 6, sent
        posted = [r for r in receiver.requests if r[0] == "POST"]
        assert len(posted) == 6
        assert (
            SandboxTask.objects.filter(task_id__in=ids, webhook_delivered_at__isnull=False).count()
            == 6
        )
    finally:
        receiver.stop()
