"""Races on PostgreSQL with real threads (each its own connection), released together."""

import json
import threading

import pytest
from django.db import connection

from generations import budget, lifecycle, services, tasks
from generations.models import CreditEntry, Generation, Price, Status, WebhookDelivery
from kinovi import close_shared_session
from sandbox.services import webhook_body
from tests.lifecycle.conftest import history, in_flight, ledger, wait_until_ended

pytestmark = pytest.mark.django_db(transaction=True)


def run_together(functions) -> list:
    """Runs the callables in threads released at the same instant; returns results/exceptions."""
    barrier = threading.Barrier(len(functions))
    results: list = [None] * len(functions)

    def run(index, function):
        try:
            barrier.wait(timeout=20)
            results[index] = function()
        except Exception as exc:  # the test inspects what each thread ran into
            results[index] = exc
        finally:
            close_shared_session()
            connection.close()

    threads = [threading.Thread(target=run, args=pair) for pair in enumerate(functions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    return results


def arrive_together(barrier):
    apply_info = lifecycle.apply_info

    def wrapped(**kwargs):
        barrier.wait(timeout=20)
        return apply_info(**kwargs)

    return wrapped


def test_twenty_concurrent_submissions_against_a_budget_for_five(
    team, cast, bob_membership, make_key, inline_jobs
):
    inline_jobs.paused = True  # only the budget matters here, not the submission
    team.monthly_budget_credits = 1000  # five 5-second standard videos of 200 credits
    team.save()
    key = make_key(team)

    def one(i):
        return lambda: services.submit(
            membership=bob_membership,
            api_key=key,
            model="seedance-20",
            prompt=f"Video number {i}",
            duration=5,
            aspect_ratio="16:9",
            mode="keyframe",
            upscale_4k=False,
        )

    results = run_together([one(i) for i in range(20)])

    made = [r for r in results if isinstance(r, Generation)]
    refused = [r for r in results if isinstance(r, services.SubmissionRefused)]
    assert (len(made), len(refused)) == (5, 15), [r for r in results if isinstance(r, Exception)]
    assert all("monthly budget" in r.message for r in refused)
    assert Generation.objects.count() == 5
    assert budget.spent(workspace=team) == 1000
    assert len(inline_jobs.pending) == 5


def test_concurrent_batches_never_overdraw_a_member_cap(team, cast, bob_membership, make_key):
    bob_membership.monthly_cap_credits = 1000
    bob_membership.save()
    key = make_key(team)

    def batch():
        return services.submit_batch(
            membership=bob_membership,
            api_key=key,
            prompts=["One", "Two", "Three"],
            model="seedance-20",
            duration=5,
            aspect_ratio="16:9",
            mode="keyframe",
            upscale_4k=False,
        )

    results = run_together([batch for _ in range(4)])

    # 3 × 200 = 600 per batch: one batch fits under 1000, a second would not, all or nothing.
    assert sum(isinstance(r, list) for r in results) == 1
    assert sum(isinstance(r, services.SubmissionRefused) for r in results) == 3
    assert Generation.objects.count() == 3


def test_poller_and_webhook_confirming_at_once_apply_once(
    callbacks, sandbox_server, inline_jobs, client, bob_membership, monkeypatch
):
    # Our price says 180 for 5 s, Kinovi charges 200: the success needs a capture row too.
    Price.objects.filter(model="seedance-20").update(credits_per_second=36)
    key = sandbox_server.api_key(bob_membership.workspace, concurrency_limit=3)
    rounds = [
        in_flight(sandbox_server, bob_membership, prompt=f"Round {attempt}", key=key)
        for attempt in range(3)
    ]
    for generation, task, path in rounds:
        wait_until_ended(task)
        inline_jobs.paused = True  # the delivery is stored and judged; its job waits
        response = client.post(path, json.dumps(webhook_body(task)), "application/json")
        assert response.status_code == 200
        inline_jobs.paused = False
        delivery = WebhookDelivery.objects.get(generation=generation)
        assert delivery.outcome == "received"

        # Both have Kinovi's answer in hand, then apply it at the same instant.
        both_answered = threading.Barrier(2)
        monkeypatch.setattr(lifecycle, "apply_info", arrive_together(both_answered))
        run_together(
            [
                lambda g=generation: tasks.poll_generation(g.pk),
                lambda d=delivery: tasks.confirm_delivery(d.pk),
            ]
        )

        monkeypatch.undo()
        generation.refresh_from_db()
        delivery.refresh_from_db()
        assert generation.status == Status.SUCCESS
        successes = [e for e in history(generation) if e[1] == "success"]
        assert len(successes) == 1, history(generation)
        assert ledger(generation) == {"reserve": -180, "capture": -20}
        assert delivery.outcome in {"applied", "duplicate"}
        assert delivery.outcome == ("applied" if successes[0][2] == "webhook" else "duplicate")
    assert CreditEntry.objects.count() == 6
