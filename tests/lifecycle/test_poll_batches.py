"""Poll jobs ask about a batch of generations each, several calls at a time (bench/tracking.py):
every answer still goes through the state machine, one bad answer spoils nothing else, and a
poll that hears nothing new costs one UPDATE."""

from datetime import timedelta

import responses
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

import kinovi
from generations import lifecycle, queue, tasks, ticker, tracking
from generations.models import Generation, Status, StatusEvent
from sandbox.models import SandboxTask
from tests.lifecycle.conftest import (
    history,
    ledger,
    queued_email_jobs,
    submit,
    wait_until_ended,
)

BASE = "https://kinovi.test/api/v1"


def flying(membership, key, count: int, *, status=Status.GENERATING) -> list[Generation]:
    """`count` generations in flight and due now, for a mocked Kinovi."""
    made = []
    first = Generation.objects.count()
    for n in range(first, first + count):
        generation = submit(membership, key, prompt=f"Batch video {n}")
        Generation.objects.filter(pk=generation.pk).update(
            status=status,
            task_id=f"task_{n}",
            submitted_at=timezone.now() - timedelta(seconds=30),
            next_poll_at=timezone.now() - timedelta(seconds=1),
        )
        generation.refresh_from_db()
        made.append(generation)
    return made


def test_a_tick_spreads_due_polls_over_the_workers_in_batches(
    db, settings, team, bob_membership, make_key, inline_jobs
):
    inline_jobs.paused = True
    settings.KINOVI_SANDBOX = False
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "workers": 3}
    key = make_key(team)

    few = flying(bob_membership, key, 7)
    polled = ticker.tick()["polls"]

    assert sorted(polled) == sorted(g.pk for g in few)
    batches = [args[0] for name, *args in inline_jobs.calls if name == "poll_batch"]
    # Few due: one batch per worker rather than one worker doing all of them.
    assert [len(b) for b in batches] == [3, 3, 1]
    assert sorted(pk for batch in batches for pk in batch) == sorted(polled)

    inline_jobs.calls.clear()
    many = flying(bob_membership, key, queue.POLL_BATCH * 3 + 5)
    ticker.tick()
    batches = [args[0] for name, *args in inline_jobs.calls if name == "poll_batch"]
    assert max(len(b) for b in batches) == queue.POLL_BATCH
    assert sorted(pk for batch in batches for pk in batch) == sorted(g.pk for g in many)


def test_a_batch_applies_each_answer_from_the_sandbox(
    sandbox_server, settings, inline_jobs, team, bob_membership, kinovi_calls
):
    key = sandbox_server.api_key(team, concurrency_limit=10)
    generations = [submit(bob_membership, key, prompt=f"Batch video {n}") for n in range(6)]
    for generation in generations:
        generation.refresh_from_db()
        assert generation.status == Status.WAITING
    tasks_at_sandbox = SandboxTask.objects.filter(task_id__in=[g.task_id for g in generations])
    # Half have ended at the sandbox (two of them failed); the others are still generating.
    now = timezone.now()
    ended = generations[:3]
    SandboxTask.objects.filter(task_id__in=[g.task_id for g in ended]).update(
        starts_at=now - timedelta(seconds=2), ends_at=now - timedelta(seconds=1)
    )
    SandboxTask.objects.filter(task_id__in=[g.task_id for g in ended[1:]]).update(
        outcome=SandboxTask.Outcome.FAIL
    )
    SandboxTask.objects.filter(task_id__in=[g.task_id for g in generations[3:]]).update(
        starts_at=now - timedelta(seconds=1), ends_at=now + timedelta(hours=1)
    )
    for task in tasks_at_sandbox.filter(task_id__in=[g.task_id for g in ended]):
        wait_until_ended(task)
    # Real-time cadence from here: the next poll is tens of seconds away, however slow the
    # machine is between the batch and the assertions.
    settings.KINOVI_POLL_TIME_SCALE = 1.0

    outcomes = tasks.poll_batch([g.pk for g in generations])

    assert outcomes == {
        generations[0].pk: "waiting -> success",
        generations[1].pk: "waiting -> fail",
        generations[2].pk: "waiting -> fail",
        generations[3].pk: "waiting -> generating",
        generations[4].pk: "waiting -> generating",
        generations[5].pk: "waiting -> generating",
    }
    for generation in generations:
        assert kinovi_calls.for_task(generation.task_id) == 1
        generation.refresh_from_db()
        assert generation.poll_count == 1
    assert ledger(generations[0]) == {"reserve": -200}
    assert ledger(generations[1]) == {"reserve": -200, "refund": 200}
    # The batch's three endings share one e-mail job.
    (job,) = queued_email_jobs(*generations)
    assert sorted(job["args"][0]) == sorted(g.pk for g in ended)
    assert Generation.objects.get(pk=generations[0].pk).video_url
    still = Generation.objects.get(pk=generations[3].pk)
    assert still.next_poll_at > timezone.now()

    # Asked again: the three in flight hear "generating" again, which changes nothing but
    # the poll time; the finished ones are not asked at all.
    again = tasks.poll_batch([g.pk for g in generations])
    assert [again[g.pk] for g in generations] == ["nothing to poll"] * 3 + [
        "generating -> generating"
    ] * 3
    assert kinovi_calls.for_task(generations[0].task_id) == 1
    assert kinovi_calls.for_task(generations[3].task_id) == 2
    assert history(Generation.objects.get(pk=generations[3].pk))[-1][:2] == (
        "waiting",
        "generating",
    )


@responses.activate
def test_one_bad_answer_spoils_nothing_else_in_its_batch(
    settings, inline_jobs, no_sleep, team, bob_membership, make_key
):
    settings.KINOVI_BASE_URL = BASE
    key = make_key(team)
    broken, malformed, denied, other_task, fine = flying(bob_membership, key, 5)

    def answer(request):
        task_id = request.params["taskId"]
        if task_id == broken.task_id:
            return 500, {}, '{"error": "boom"}'
        if task_id == malformed.task_id:
            return 200, {}, "<html>maintenance</html>"
        if task_id == denied.task_id:
            return 429, {"Retry-After": "300"}, '{"error": "slow down"}'
        if task_id == other_task.task_id:
            # The client refuses it (kinovi.py); the state machine never sees it.
            return 200, {}, '{"taskId": "task_somebody_else", "status": "success"}'
        return 200, {}, f'{{"taskId": "{task_id}", "status": "success", "creditsUsed": 150}}'

    responses.add_callback(responses.GET, f"{BASE}/jobs/recordInfo", callback=answer)

    outcomes = tasks.poll_batch([g.pk for g in (broken, malformed, denied, other_task, fine)])

    assert outcomes == {
        broken.pk: "poll failed: ServerError",
        malformed.pk: "poll failed: MalformedResponse",
        denied.pk: "poll failed: ConcurrencyLimited",
        other_task.pk: "poll failed: MalformedResponse",
        fine.pk: "generating -> success",
    }
    fine.refresh_from_db()
    assert (fine.status, fine.credits_used) == (Status.SUCCESS, 150)
    assert ledger(fine) == {"reserve": -200, "capture": 50}
    now = timezone.now()
    for generation in (broken, malformed, other_task):
        generation.refresh_from_db()
        assert generation.status == Status.GENERATING
        assert generation.next_poll_at > now  # back on the cadence, not claimed forever
    denied.refresh_from_db()
    assert denied.next_poll_at >= now + timedelta(seconds=299)  # Kinovi said when


@responses.activate
def test_a_key_that_does_not_decrypt_leaves_the_rest_of_the_batch_polled(
    settings, inline_jobs, no_sleep, team, bob_membership, make_key
):
    from accounts.models import ApiKey

    settings.KINOVI_BASE_URL = BASE
    good_key = make_key(team)
    bad_key = ApiKey(workspace=team, label="Old", status=ApiKey.Status.VERIFIED)
    bad_key.secret = "sk_live_fedcba9876543210"
    bad_key.save()
    readable, unreadable = flying(bob_membership, good_key, 2)
    Generation.objects.filter(pk=unreadable.pk).update(api_key=bad_key)
    ApiKey.objects.filter(pk=bad_key.pk).update(secret_ciphertext="not a token")
    responses.get(
        f"{BASE}/jobs/recordInfo",
        json={"taskId": readable.task_id, "status": "generating"},
    )

    outcomes = tasks.poll_batch([unreadable.pk, readable.pk])

    assert outcomes == {
        unreadable.pk: "key unreadable",
        readable.pk: "generating -> generating",
    }
    assert len(responses.calls) == 1
    unreadable.refresh_from_db()
    assert unreadable.next_poll_at > timezone.now()


@responses.activate
def test_a_batch_out_of_time_hands_the_rest_back_at_once(
    settings, inline_jobs, monkeypatch, team, bob_membership, make_key
):
    settings.KINOVI_BASE_URL = BASE
    monkeypatch.setattr(tracking, "POLL_BATCH_BUDGET", -1.0)
    generations = flying(bob_membership, make_key(team), 3)
    before = timezone.now()

    outcomes = tasks.poll_batch([g.pk for g in generations])

    assert set(outcomes.values()) == {"not asked: the batch ran out of time"}
    assert len(responses.calls) == 0
    for generation in generations:
        generation.refresh_from_db()
        # Due again now, for the next claim: not left under the claim lease for two minutes.
        assert before <= generation.next_poll_at <= timezone.now()


@responses.activate
def test_polls_that_hear_nothing_new_cost_one_update_each(
    settings, inline_jobs, no_sleep, team, bob_membership, make_key
):
    settings.KINOVI_BASE_URL = BASE
    generations = flying(bob_membership, make_key(team), 10)
    responses.add_callback(
        responses.GET,
        f"{BASE}/jobs/recordInfo",
        callback=lambda r: (
            200,
            {},
            f'{{"taskId": "{r.params["taskId"]}", "status": "generating"}}',
        ),
    )
    events = StatusEvent.objects.count()

    with CaptureQueriesContext(connection) as queries:
        outcomes = tasks.poll_batch([g.pk for g in generations])

    assert set(outcomes.values()) == {"generating -> generating"}
    # One read of the batch, one poll count update, then one guarded UPDATE per answer.
    assert len(queries) == 2 + len(generations), [q["sql"] for q in queries]
    assert StatusEvent.objects.count() == events
    for generation in generations:
        generation.refresh_from_db()
        assert generation.poll_count == 1
        assert generation.next_poll_at > timezone.now()


def test_an_answer_about_a_status_that_moved_meanwhile_goes_through_the_state_machine(
    db, team, bob_membership, make_key
):
    (generation,) = flying(bob_membership, make_key(team), 1, status=Status.WAITING)
    seen = Generation.objects.get(pk=generation.pk)  # read before asking: waiting
    # Meanwhile a confirmed webhook moved it on.
    lifecycle.apply_status(
        generation_id=generation.pk, status=Status.GENERATING, source=StatusEvent.Source.WEBHOOK
    )
    info = kinovi.parse_task({"taskId": generation.task_id, "status": "waiting"})

    outcome = lifecycle.apply_info(
        generation_id=generation.pk, info=info, source=StatusEvent.Source.POLL, seen=seen
    )

    assert not outcome.changed
    assert outcome.refused == "generating cannot become waiting"
    assert Generation.objects.get(pk=generation.pk).status == Status.GENERATING
