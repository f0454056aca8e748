"""The database drops every connection while a poll job is waiting for Kinovi (what a PostgreSQL
restart or failover does to a running cluster): the next tick carries on and the generation
still ends in its right state, with one createTask and an exact ledger.

The server itself is never restarted (other test runs share it): `pg_terminate_backend` on
every other connection to this test's database is what a restart looks like to the clients.
"""

import threading
import time

import pytest
import requests
from django.db import connection
from django.utils import timezone

from generations.models import Generation, Heartbeat, Status
from tests.faults.scripted import CREATE, RECORD, Reply, task_body
from tests.lifecycle.conftest import history, ledger, statuses, submit, wait_for

pytestmark = [pytest.mark.cluster]


def terminate_other_connections() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def overlapping(calls) -> list[tuple]:
    """Pairs of calls about the same task whose [start, end] intervals intersect."""
    pairs = []
    by_task: dict[str, list] = {}
    for call in calls:
        by_task.setdefault(call.task_id, []).append(call)
    for task_calls in by_task.values():
        task_calls.sort(key=lambda c: c.started)
        for before, after in zip(task_calls, task_calls[1:], strict=False):
            if after.started < before.ended:
                pairs.append((before, after))
    return pairs


def test_connections_dropped_during_a_submit_and_a_poll_and_the_next_tick_recovers(
    sandbox_server, start_q_cluster, kinovi, settings, team, bob_membership, make_key
):
    settings.KINOVI_BASE_URL = kinovi.url
    settings.KINOVI_READ_TIMEOUT = 10.0
    create_sent, poll_sent = threading.Event(), threading.Event()
    kinovi.script(CREATE, Reply(hold=create_sent))
    kinovi.script(RECORD, Reply(200, task_body("task_1", "generating"), hold=poll_sent))
    start_q_cluster()
    generation = submit(bob_membership, make_key(team))

    # 1. A submit job waits for createTask's answer when every connection is dropped.
    kinovi.wait_for_calls(CREATE, 1, timeout=30)
    assert Generation.objects.get(pk=generation.pk).status == Status.SUBMITTING
    assert terminate_other_connections() > 0  # the cluster's workers, pusher, ticker, ...
    create_sent.set()
    # Kinovi created (and charged) task_1: its id must not be lost, or it ends `unknown`.
    waiting = wait_for(
        lambda: Generation.objects.filter(pk=generation.pk, task_id="task_1").first(),
        timeout=15,
        what="the accepted task id to be recorded",
    )
    assert statuses(waiting)[:3] == ["queued", "submitting", "waiting"], history(waiting)

    # 2. A poll job waits for recordInfo's answer when every connection is dropped again.
    kinovi.wait_for_calls(RECORD, 1, timeout=30)
    dropped_at = timezone.now()
    assert terminate_other_connections() > 0
    poll_sent.set()

    started = time.monotonic()
    done = wait_for(
        lambda: Generation.objects.filter(pk=generation.pk, status=Status.SUCCESS).first(),
        timeout=30,
        what="success after the connections were dropped",
    )
    # Well inside the 2-minute claim lease and the minute of the ticker's watchdog: it was
    # the very next ticks, not a timeout, that carried the work on.
    assert time.monotonic() - started < 10

    assert statuses(done) == ["queued", "submitting", "waiting", "generating", "success"]
    assert done.video_url == "https://cdn.kinovi.test/task_1.mp4"
    assert ledger(done) == {"reserve": -200}
    assert len(kinovi.calls_to(CREATE)) == 1
    polls = kinovi.calls_to(RECORD)
    assert len(polls) == 2  # the dropped poll's answer was kept, not asked for again
    assert overlapping(polls) == []
    # The ticker loop lives on: it beats again after the drop (every half second or so).
    wait_for(
        lambda: Heartbeat.objects.get(name=Heartbeat.TICKER).beat_at > dropped_at,
        timeout=5,
        what="the ticker to beat after the drop",
    )


def test_connections_dropped_while_a_callback_is_confirmed_still_resolve_the_unknown(
    sandbox_server, start_q_cluster, kinovi, settings, team, bob_membership, make_key
):
    """Only a callback can resolve an `unknown` (no task id, so nothing to poll): losing its
    confirmation to a dropped connection would leave it unknown for good."""
    settings.KINOVI_BASE_URL = kinovi.url
    settings.KINOVI_READ_TIMEOUT = 10.0
    settings.KINOVI_CALLBACKS = True
    confirming = threading.Event()
    kinovi.script(CREATE, Reply(reset=True))  # created at Kinovi, the answer lost
    kinovi.script(RECORD, Reply(200, task_body("task_77", "success"), hold=confirming))
    start_q_cluster()
    generation = submit(bob_membership, make_key(team))
    wait_for(
        lambda: Generation.objects.filter(pk=generation.pk, status=Status.UNKNOWN).exists(),
        timeout=30,
        what="unknown",
    )

    # Kinovi calls back (to the URL it was given) when task_77 ends.
    callback_url = kinovi.calls_to(CREATE)[0].body["callBackUrl"]
    body = {"code": 200, "msg": "success", "data": task_body("task_77", "success")}
    body["data"]["state"] = body["data"].pop("status")
    assert requests.post(callback_url, json=body, timeout=10).status_code == 200

    kinovi.wait_for_calls(RECORD, 1, timeout=30)  # the confirmation job asks Kinovi
    assert terminate_other_connections() > 0
    confirming.set()

    done = wait_for(
        lambda: Generation.objects.filter(pk=generation.pk, status=Status.SUCCESS).first(),
        timeout=15,
        what="the confirmed callback to resolve it",
    )
    assert statuses(done) == ["queued", "submitting", "unknown", "success"], history(done)
    assert history(done)[-1][2] == "webhook"
    assert done.task_id == "task_77"
    assert ledger(done) == {"reserve": -200}
    assert done.webhook_deliveries.get().outcome == "applied"
    assert len(kinovi.calls_to(CREATE)) == 1
    assert len(kinovi.calls_to(RECORD)) == 1
