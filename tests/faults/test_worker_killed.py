"""A cluster killed (SIGKILL, as a crashed host) while its worker waits for createTask: a new
cluster takes over, django-q2 redelivers the lost job, the sweeper resolves the row to a
visible `unknown` with its reserve, and Kinovi never sees a second createTask."""

import os
import signal
import threading
import time
from datetime import timedelta

import pytest
from django.db.models import F
from django.utils import timezone
from django_q.models import OrmQ, Success
from django_q.tasks import async_task

from generations import ticker
from generations.models import Generation, Heartbeat, Status
from tests.faults.scripted import CREATE, Reply
from tests.lifecycle.conftest import history, ledger, submit, wait_for

pytestmark = [pytest.mark.cluster]

SUBMIT = "generations.tasks.submit_generation"


def test_a_cluster_killed_mid_submit_never_sends_a_second_createtask(
    sandbox_server, start_q_cluster, kinovi, settings, team, bob_membership, make_key
):
    settings.KINOVI_BASE_URL = kinovi.url
    settings.KINOVI_READ_TIMEOUT = 60.0
    never = threading.Event()  # Kinovi holds the answer until the test ends
    kinovi.script(CREATE, Reply(hold=never))
    first = start_q_cluster()
    generation = submit(bob_membership, make_key(team))

    kinovi.wait_for_calls(CREATE, 1, timeout=30)
    assert Generation.objects.get(pk=generation.pk).status == Status.SUBMITTING
    os.killpg(first.pid, signal.SIGKILL)  # every process of the cluster, mid-request
    first.wait(timeout=10)

    second = start_q_cluster()
    # The dead cluster's ticker loop held the lease; it runs out by itself.
    wait_for(
        lambda: Heartbeat.objects.filter(
            name=Heartbeat.TICKER, lease_until__lt=timezone.now()
        ).exists(),
        timeout=15,
        what="the dead ticker's lease to run out",
    )
    # The dead worker never acknowledged its job; django-q2 hands it out again once the
    # job's `retry` window has passed. That window is moved into the past here, as ten
    # minutes passing would.
    lost = [q for q in OrmQ.objects.all() if q.task.get("func") == SUBMIT]
    # (The submit enqueued at commit, and maybe the dispatcher's own for the same row.)
    assert lost and {q.task["args"] for q in lost} == {(generation.pk,)}
    OrmQ.objects.update(lock=timezone.now() - timedelta(seconds=1))

    def rerun():
        results = list(Success.objects.filter(func=SUBMIT).values_list("result", flat=True))
        return results if len(results) == len(lost) else None

    redelivered = wait_for(rerun, timeout=20, what="the lost jobs to run in the new cluster")
    # Each saw the row in submitting and stopped there.
    assert redelivered == ["not queued"] * len(lost)
    assert Generation.objects.get(pk=generation.pk).status == Status.SUBMITTING

    # The sweeper (a job in the new cluster) only acts once a live worker would surely have
    # heard back; that much time is moved into the past on the row.
    Generation.objects.filter(pk=generation.pk).update(
        submitted_at=F("submitted_at") - ticker.submitting_timeout() - timedelta(seconds=1)
    )
    async_task("generations.tasks.sweep")
    swept = wait_for(
        lambda: Generation.objects.filter(pk=generation.pk, status=Status.UNKNOWN).first(),
        timeout=20,
        what="the sweeper to resolve the orphaned submission",
    )
    assert history(swept) == [
        ("", "queued", "submit"),
        ("queued", "submitting", "submit"),
        ("submitting", "unknown", "sweeper"),
    ]
    assert "may or may not have created" in swept.error_message
    assert ledger(swept) == {"reserve": -200}  # it may have been charged
    wait_for(
        lambda: Heartbeat.objects.filter(name=Heartbeat.SWEEPER, beat_at__isnull=False).exists(),
        timeout=10,
        what="the sweeper's beat",
    )

    # The new cluster's ticker loop (the dead one's job rerun, or the watchdog schedule's)
    # dispatches and polls again: still one createTask.
    since = timezone.now()
    wait_for(
        lambda: Heartbeat.objects.filter(name=Heartbeat.TICKER, beat_at__gt=since).exists(),
        timeout=45,
        what="the new cluster's ticker loop",
    )
    assert second.poll() is None
    time.sleep(0.5)
    assert len(kinovi.calls_to(CREATE)) == 1
    assert Generation.objects.get(pk=generation.pk).status == Status.UNKNOWN
