"""What keeps two clusters from doing the same background work twice, raced on PostgreSQL with
threads (each its own connection): the ticker's lease, and the sweeper's compare-and-set."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from generations import polling, queue, tasks, ticker
from generations.models import CreditEntry, Generation, Heartbeat, Status, StatusEvent

pytestmark = [pytest.mark.django_db(transaction=True)]


def race(target, count: int = 2) -> list:
    """Run `target` in `count` threads released at the same instant; their results."""
    barrier = threading.Barrier(count)
    results: list = []

    def run():
        barrier.wait()
        try:
            results.append(target())
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def test_two_tickers_started_at_once_run_one_loop(monkeypatch, settings):
    settings.KINOVI_SANDBOX = False
    ticks: list[int] = []
    monkeypatch.setattr(ticker, "tick", lambda: ticks.append(threading.get_ident()))
    monkeypatch.setattr(queue, "start_ticker", lambda: None)  # no handover in this test

    results = race(lambda: tasks.ticker(seconds=1.2), count=3)

    assert sorted(results) == [
        "another ticker holds the lease",
        "another ticker holds the lease",
        "handed over",
    ]
    assert len(set(ticks)) == 1 and len(ticks) >= 2  # one thread did every tick
    beat = Heartbeat.objects.get(name=Heartbeat.TICKER)
    assert beat.lease_owner == "" and beat.lease_until is None  # released for the next one


def test_a_ticker_whose_lease_was_taken_over_stops(monkeypatch, settings):
    settings.KINOVI_SANDBOX = False
    monkeypatch.setattr(queue, "start_ticker", lambda: None)

    def stolen():
        # Another cluster took the lease (say this loop stalled past it): this loop must stop.
        Heartbeat.objects.filter(name=Heartbeat.TICKER).update(
            lease_owner="someone-else", lease_until=timezone.now() + timedelta(seconds=60)
        )

    monkeypatch.setattr(ticker, "tick", stolen)

    assert tasks.ticker(seconds=5) == "lease lost"
    assert Heartbeat.objects.get(name=Heartbeat.TICKER).lease_owner == "someone-else"


def test_two_sweepers_at_once_resolve_each_row_once(team, cast, make_key):
    key = make_key(team)
    now = timezone.now()
    long_ago = now - ticker.submitting_timeout() - timedelta(seconds=polling.VENDOR_STUCK_WINDOW)

    def make(n: int, status: str, **fields) -> Generation:
        generation = Generation.objects.create(
            workspace=team,
            creator=cast["bob"],
            api_key=key,
            prompt=f"row {n}",
            estimated_credits=200,
            status=status,
            submitted_at=long_ago,
            **fields,
        )
        if status != Status.SUBMITTING:
            CreditEntry.objects.create(
                generation=generation,
                workspace=team,
                user=cast["bob"],
                api_key=key,
                model=generation.model,
                kind=CreditEntry.Kind.RESERVE,
                credits=-200,
                dollars_per_credit=generation.dollars_per_credit,
            )
        return generation

    orphans = [make(n, Status.SUBMITTING) for n in range(15)]
    overdue = [make(n, Status.GENERATING, task_id=f"task_{n}") for n in range(15, 30)]

    results = race(tasks.sweep)

    assert sorted(pk for r in results for pk in r["unknown"]) == sorted(g.pk for g in orphans)
    assert sorted(pk for r in results for pk in r["stalled"]) == sorted(g.pk for g in overdue)
    for generation in orphans:
        events = StatusEvent.objects.filter(generation=generation, to_status=Status.UNKNOWN)
        assert events.count() == 1
        assert CreditEntry.objects.filter(generation=generation).count() == 1
    for generation in overdue:
        events = StatusEvent.objects.filter(generation=generation, to_status=Status.STALLED)
        assert events.count() == 1
        assert CreditEntry.objects.filter(generation=generation).count() == 1
