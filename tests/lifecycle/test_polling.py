"""Polls: faults do not stop them, the cadence is sparse then dense, claims never overlap."""

import threading
from datetime import timedelta

import pytest
import responses
import time_machine
from django.db import connection
from django.utils import timezone

from generations import polling, tasks, tracking
from generations.models import Generation, Mode, Model, Status
from sandbox.services import inject_faults
from tests.lifecycle.conftest import history, ledger, statuses, submit, wait_for


def test_recordinfo_500s_leave_it_in_flight_and_polling_carries_on(
    sandbox_server, inline_jobs, no_sleep, team, bob_membership, kinovi_calls
):
    generation = submit(bob_membership, sandbox_server.api_key(team))
    generation.refresh_from_db()
    # More 500s than the client's retries: this poll gives up, the next one works.
    inject_faults(status=500, count=4, endpoint="recordInfo")

    assert tasks.poll_generation(generation.pk) == "poll failed: ServerError"

    generation.refresh_from_db()
    assert generation.status == Status.WAITING
    assert statuses(generation) == ["queued", "submitting", "waiting"]
    assert generation.next_poll_at > timezone.now()
    assert kinovi_calls.for_task(generation.task_id) == 4

    def finished():
        tasks.poll_generation(generation.pk)
        return Generation.objects.get(pk=generation.pk).status == Status.SUCCESS

    wait_for(finished, timeout=15, interval=0.3, what="success")
    assert ledger(generation) == {"reserve": -200}


@responses.activate
def test_a_malformed_200_leaves_it_in_flight(
    settings, inline_jobs, no_sleep, team, bob_membership, make_key
):
    settings.KINOVI_BASE_URL = "https://kinovi.test/api/v1"
    key = make_key(team)
    generation = submit(bob_membership, key)
    Generation.objects.filter(pk=generation.pk).update(
        status=Status.WAITING, task_id="task_abc", submitted_at=timezone.now()
    )
    url = "https://kinovi.test/api/v1/jobs/recordInfo"
    responses.add(responses.GET, url, status=200, body="<html>maintenance</html>")
    responses.add(responses.GET, url, status=200, json={"taskId": "task_abc", "status": "??"})
    responses.add(
        responses.GET,
        url,
        status=200,
        json={"taskId": "task_abc", "status": "generating", "creditsUsed": 200},
    )

    assert tasks.poll_generation(generation.pk) == "poll failed: MalformedResponse"
    assert tasks.poll_generation(generation.pk) == "poll failed: MalformedResponse"
    assert Generation.objects.get(pk=generation.pk).status == Status.WAITING

    assert tasks.poll_generation(generation.pk) == "waiting -> generating"
    generation.refresh_from_db()
    assert generation.poll_count == 3
    assert generation.next_poll_at is not None


def test_cadence_is_sparse_early_dense_near_the_end_then_backs_off(settings, db):
    settings.KINOVI_POLL_TIME_SCALE = 1.0
    generation = Generation(
        duration=5, model=Model.STANDARD, mode=Mode.KEYFRAME, status=Status.WAITING
    )
    assert polling.expected_seconds(generation) == 90
    offsets = []
    elapsed = 0.0
    while elapsed < 300:
        elapsed = polling.next_offset(generation, elapsed)
        offsets.append(elapsed)
    assert offsets[0] == 45  # nothing before half the expected 90 s
    dense = [round(b - a, 6) for a, b in zip(offsets, offsets[1:], strict=False) if a < 135]
    assert set(dense) == {9.0}  # a tenth of the expected time, up to 1.5x of it
    late = [b - a for a, b in zip(offsets, offsets[1:], strict=False) if a >= 135]
    assert late == sorted(late) and max(late) <= polling.MAX_BACKOFF_INTERVAL
    assert len(offsets) < 25  # vs 150 for a client polling every 2 s for 5 minutes
    # The shortest job (fast, 4 s: about 40 s) is still asked no more often than the vendor's
    # 3-5 s advice.
    fast = Generation(duration=4, model=Model.FAST, mode=Mode.KEYFRAME, status=Status.WAITING)
    first = polling.next_offset(fast, 0.0)
    assert polling.next_offset(fast, first) - first >= polling.DENSE_INTERVAL

    # With a callback expected, polls are a slow safety net.
    generation.callback_token_hash = "x" * 64
    assert polling.next_offset(generation, 0) == 165
    assert polling.next_offset(generation, 165) == 285


def test_long_and_4k_jobs_get_a_longer_window_before_stalled(db):
    short = Generation(duration=5, model=Model.FAST, mode=Mode.KEYFRAME)
    long_4k = Generation(duration=15, model=Model.STANDARD, mode=Mode.KEYFRAME, upscale_4k=True)
    assert polling.stall_after_seconds(short) == polling.VENDOR_STUCK_WINDOW == 600
    assert polling.stall_after_seconds(long_4k) == 4 * (45 + 9 * 15) * 1.5  # 1080 s


@pytest.mark.django_db(transaction=True)
def test_two_claimers_at_once_never_take_the_same_generation(team, bob_membership, make_key):
    key = make_key(team)
    now = timezone.now()
    for i in range(40):
        Generation.objects.create(
            workspace=team,
            creator_id=bob_membership.user_id,
            api_key=key,
            prompt=f"p{i}",
            estimated_credits=200,
            status=Status.GENERATING,
            task_id=f"task_{i}",
            submitted_at=now,
            next_poll_at=now - timedelta(seconds=1),
        )
    barrier = threading.Barrier(2)
    claimed: list[list[int]] = []

    def claimer():
        barrier.wait()
        try:
            claimed.append(tracking.claim_due_polls(limit=30))
        finally:
            connection.close()

    threads = [threading.Thread(target=claimer) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    first, second = claimed
    assert not set(first) & set(second)
    assert len(first) + len(second) == 40
    # Claimed rows are not due again until their lease runs out.
    assert tracking.claim_due_polls() == []


def test_stalled_after_the_window_then_still_able_to_finish(
    sandbox_server, inline_jobs, settings, team, bob_membership
):
    settings.KINOVI_SANDBOX_GENERATE_SECONDS = 3600
    settings.KINOVI_POLL_TIME_SCALE = 1.0
    generation = submit(bob_membership, sandbox_server.api_key(team))
    generation.refresh_from_db()

    assert tasks.sweep()["stalled"] == []
    with time_machine.travel(timezone.now() + timedelta(seconds=601), tick=False):
        result = tasks.sweep()
    assert result["stalled"] == [generation.pk]
    generation.refresh_from_db()
    assert history(generation)[-1] == ("waiting", "stalled", "sweeper")
    assert ledger(generation) == {"reserve": -200}
    assert generation.next_poll_at is not None  # still asked about, rarely

    # A stalled video that finishes after all is recorded as such.
    from sandbox.models import SandboxTask

    SandboxTask.objects.filter(task_id=generation.task_id).update(
        starts_at=timezone.now(), ends_at=timezone.now()
    )
    with time_machine.travel(timezone.now() + timedelta(seconds=602), tick=False):
        tasks.poll_generation(generation.pk)
    generation.refresh_from_db()
    assert statuses(generation)[-2:] == ["stalled", "success"]
