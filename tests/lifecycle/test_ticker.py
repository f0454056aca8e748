"""The ticker's lease and pass, and the schedules registered after every migrate."""

import os
import signal
import threading
import time
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from django_q.models import Schedule

from generations import queue, tasks, ticker
from generations.models import Generation, Heartbeat, Price, Status
from tests.lifecycle.conftest import submit


def test_schedules_are_registered_once(db):
    ticker.register_schedules()
    ticker.register_schedules()

    schedules = Schedule.objects.filter(name__in=queue.SCHEDULES)
    assert sorted(schedules.values_list("name", "func", "schedule_type", "minutes")) == [
        ("budget warnings", "generations.tasks.send_due_budget_warnings", "I", 5),
        ("kinovi sweeper", "generations.tasks.sweep", "I", 1),
        ("kinovi ticker", "generations.tasks.ticker", "I", 1),
    ]


@pytest.mark.django_db(transaction=True)
def test_schedules_and_prices_survive_a_flush():
    from django.core.management import call_command

    call_command("flush", interactive=False, verbosity=0)

    assert Schedule.objects.filter(name__in=queue.SCHEDULES).count() == len(queue.SCHEDULES) == 3
    assert set(Price.objects.values_list("model", flat=True)) == {"seedance-20", "seedance2-fast"}


def test_one_ticker_holds_the_lease_until_it_lapses(db):
    assert ticker.take_lease("first")
    assert ticker.take_lease("first")  # renewing
    assert not ticker.take_lease("second")
    assert tasks.ticker(seconds=1) == "another ticker holds the lease"

    with time_machine.travel(timezone.now() + ticker.TICKER_LEASE + timedelta(seconds=1)):
        assert ticker.take_lease("second")
    assert Heartbeat.objects.get(name=Heartbeat.TICKER).lease_owner == "second"


def test_a_tick_enqueues_due_polls_and_submissions_and_beats(
    db, team, bob_membership, make_key, inline_jobs
):
    inline_jobs.paused = True
    key = make_key(team)
    queued = submit(bob_membership, key)
    polled = submit(bob_membership, key)
    Generation.objects.filter(pk=polled.pk).update(
        status=Status.GENERATING,
        task_id="task_1",
        submitted_at=timezone.now(),
        next_poll_at=timezone.now() - timedelta(seconds=1),
    )

    result = ticker.tick()

    assert result == {"polls": [polled.pk], "submissions": [queued.pk]}
    assert inline_jobs.calls == [
        ("poll_batch", [polled.pk]),
        ("submit_generation", queued.pk),
    ]
    assert ticker.tick() == {"polls": [], "submissions": []}  # both claimed


def test_the_ticker_loops_then_hands_over(db, inline_jobs, settings):
    inline_jobs.paused = True
    settings.KINOVI_SANDBOX = False

    assert tasks.ticker(seconds=0.6) == "handed over"

    beat = Heartbeat.objects.get(name=Heartbeat.TICKER)
    assert beat.count >= 2 and beat.lease_owner == "" and beat.lease_until is None
    assert inline_jobs.names() == ["ticker"]


def test_ctrl_c_ends_the_ticker_loop_at_its_next_tick(db, inline_jobs, settings):
    """The cluster waits for its running jobs on Ctrl-C: a ticker running out its minute
    would hold `make run` (and a qcluster in a terminal) for up to that long."""
    inline_jobs.paused = True
    settings.KINOVI_SANDBOX = False
    handler = signal.getsignal(signal.SIGINT)
    interrupt = threading.Timer(0.3, os.kill, args=(os.getpid(), signal.SIGINT))
    started = time.monotonic()
    interrupt.start()

    result = tasks.ticker(seconds=30)

    assert result == "interrupted; handed over"
    assert time.monotonic() - started < 3
    # The lease is free and the next loop is queued for whichever cluster runs next.
    beat = Heartbeat.objects.get(name=Heartbeat.TICKER)
    assert beat.lease_owner == "" and beat.lease_until is None
    assert inline_jobs.names() == ["ticker"]
    # This process's own Ctrl-C handling is back.
    assert signal.getsignal(signal.SIGINT) is handler
