"""createTask faults over a real socket: each generation ends where it must, with an exact ledger,
and Kinovi (the scripted server) counts the createTask calls, so a resend would show."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from accounts.models import ApiKey
from generations import polling, services, slots, tasks, ticker, tracking
from generations.models import CreditEntry, Generation, Status
from tests.faults.scripted import CREATE, RECORD, Reply
from tests.lifecycle.conftest import history, ledger, statuses, submit

NOT_JSON = b'{"taskId": "task_9", "data": '  # a 200 cut off mid-body


@pytest.fixture
def send(bob_membership, make_key, team, inline_jobs, django_capture_on_commit_callbacks):
    """Submit one generation and run its submit job at once, as the cluster would."""
    key = make_key(team)

    def go(prompt="A paper boat on a rainy street, close-up"):
        with django_capture_on_commit_callbacks(execute=True):
            generation = submit(bob_membership, key, prompt=prompt)
        generation.refresh_from_db()
        return generation

    return go


def assert_never_resent(generation, kinovi) -> None:
    """Nothing sends an unknown outcome again: not the dispatcher, the sweeper or a re-check."""
    creates = len(kinovi.calls_to(CREATE))
    assert slots.dispatch() == []
    ticker.tick()
    tasks.sweep()
    with pytest.raises(services.ActionRefused, match="never resubmitted automatically"):
        services.recheck(generation=generation, source="user")
    later = timezone.now() + timedelta(hours=1)
    with time_machine.travel(later, tick=False):
        assert slots.dispatch() == []
        tasks.sweep()
    assert len(kinovi.calls_to(CREATE)) == creates
    assert Generation.objects.get(pk=generation.pk).status == Status.UNKNOWN


@pytest.mark.parametrize(
    ("reply", "what"),
    [
        (Reply(500, {"message": "Internal server error"}), "HTTP 500"),
        (Reply(502, b"<html>Bad gateway</html>"), "HTTP 502"),
        (Reply(200, {"taskId": "task_late"}, delay=1.5), "read timeout"),
        (Reply(reset=True), "connection lost after sending"),
        (Reply(200, NOT_JSON), "no task id"),
        (Reply(200, {"data": {"taskId": ""}}), "no task id"),
    ],
    ids=["500", "502-html", "read-timeout", "reset", "truncated-json", "empty-task-id"],
)
def test_an_answer_that_may_have_created_a_task_is_unknown_after_one_call(
    kinovi, send, reply, what
):
    kinovi.script(CREATE, reply)

    generation = send()

    assert statuses(generation) == ["queued", "submitting", "unknown"], history(generation)
    assert what in generation.error_message
    assert generation.task_id is None
    # Kinovi may hold (and have charged) a task: the estimate stays reserved, once.
    assert ledger(generation) == {"reserve": -200}
    assert len(kinovi.calls_to(CREATE)) == 1
    assert not kinovi.calls_to(RECORD)  # no task id, so nothing to ask about
    assert_never_resent(generation, kinovi)
    assert CreditEntry.objects.filter(generation=generation).count() == 1


def test_429_with_retry_after_waits_that_long_then_submits_once(kinovi, send):
    kinovi.script(
        CREATE,
        Reply(429, {"message": "Concurrency limit reached"}, headers={"Retry-After": "7"}),
    )

    generation = send()

    assert statuses(generation) == ["queued", "submitting", "queued"]
    assert ledger(generation) == {}
    wait = (generation.next_poll_at - timezone.now()).total_seconds()
    assert 6 < wait <= 7
    # Not a moment before Kinovi's Retry-After, however often the ticker looks.
    with time_machine.travel(generation.next_poll_at - timedelta(seconds=1), tick=False):
        assert slots.dispatch() == []
    with time_machine.travel(generation.next_poll_at + timedelta(seconds=1), tick=False):
        assert slots.dispatch() == [generation.pk]
        tasks.submit_generation(generation.pk)

    generation.refresh_from_db()
    assert statuses(generation) == ["queued", "submitting", "queued", "submitting", "waiting"]
    assert generation.task_id == "task_1"
    assert ledger(generation) == {"reserve": -200}
    assert len(kinovi.calls_to(CREATE)) == 2
    assert generation.submit_attempts == 2


def test_429_without_retry_after_backs_off_then_submits_once(kinovi, send, settings):
    settings.KINOVI_POLL_TIME_SCALE = 1.0
    kinovi.script(CREATE, Reply(429, {"message": "Too many tasks", "limit": 3, "current": 3}))

    generation = send()

    assert statuses(generation) == ["queued", "submitting", "queued"]
    wait = (generation.next_poll_at - timezone.now()).total_seconds()
    assert 4 < wait <= 5  # the first back-off step
    assert ApiKey.objects.get(pk=generation.api_key_id).concurrency_limit == 3
    with time_machine.travel(generation.next_poll_at + timedelta(seconds=1), tick=False):
        assert slots.dispatch() == [generation.pk]
        tasks.submit_generation(generation.pk)

    generation.refresh_from_db()
    assert generation.status == Status.WAITING
    assert ledger(generation) == {"reserve": -200}
    assert len(kinovi.calls_to(CREATE)) == 2


def test_a_burst_of_429s_never_creates_twice_and_ends_waiting(kinovi, send, settings):
    settings.KINOVI_POLL_TIME_SCALE = 0.01
    kinovi.script(CREATE, *[Reply(429, {"message": "busy"}, headers={"Retry-After": "0"})] * 5)

    generation = send()
    for _ in range(5):
        with time_machine.travel(timezone.now() + timedelta(seconds=10), tick=False):
            for pk in slots.dispatch():
                tasks.submit_generation(pk)

    generation.refresh_from_db()
    assert generation.status == Status.WAITING, history(generation)
    assert statuses(generation).count("submitting") == 6
    assert [c.answer for c in kinovi.calls_to(CREATE)] == ["429"] * 5 + ["200"]
    assert ledger(generation) == {"reserve": -200}


def test_every_generation_of_a_faulty_batch_ends_in_its_right_state(
    kinovi, bob_membership, make_key, team, inline_jobs, django_capture_on_commit_callbacks
):
    """Seven prompts meet seven different createTask answers, then their tasks finish."""
    kinovi.script(
        CREATE,
        Reply(500, {"message": "boom"}),
        Reply(429, {"message": "busy"}, headers={"Retry-After": "1"}),
        Reply(200, {"taskId": "task_slow"}, delay=1.5),
        Reply(reset=True),
        Reply(200, b"not json at all"),
        Reply(200, {"taskId": "task_ok"}),
        Reply(400, {"message": "Invalid parameters", "errors": [{"path": "inputs.prompt"}]}),
    )
    prompts = [f"Shot {n}: a fox crossing a frozen river" for n in range(7)]
    with django_capture_on_commit_callbacks(execute=True):
        batch = services.submit_batch(
            membership=bob_membership,
            api_key=make_key(team),
            prompts=prompts,
            model="seedance-20",
            duration=5,
            aspect_ratio="16:9",
            mode="keyframe",
            upscale_4k=False,
        )
    by_prompt = {g.prompt: g.pk for g in batch}
    # The 429'd one goes again after its Retry-After and meets the default answer (task_1).
    with time_machine.travel(timezone.now() + timedelta(seconds=2), tick=False):
        for pk in slots.dispatch():
            tasks.submit_generation(pk)
    # Kinovi finishes every task it knows about; the next polls see it.
    later = timezone.now() + timedelta(seconds=polling.VENDOR_STUCK_WINDOW * polling.scale())
    with time_machine.travel(later, tick=False):
        for pk in tracking.claim_due_polls():
            tasks.poll_generation(pk)

    final = {
        n: Generation.objects.get(pk=by_prompt[prompt]).status for n, prompt in enumerate(prompts)
    }
    assert final == {
        0: Status.UNKNOWN,
        1: Status.SUCCESS,
        2: Status.UNKNOWN,
        3: Status.UNKNOWN,
        4: Status.UNKNOWN,
        5: Status.SUCCESS,
        6: Status.REJECTED,
    }
    # One reserve per task that may exist; nothing for the refused one; no capture needed.
    per_generation = {
        n: ledger(Generation.objects.get(pk=by_prompt[p])) for n, p in enumerate(prompts)
    }
    assert per_generation == {
        0: {"reserve": -200},
        1: {"reserve": -200},
        2: {"reserve": -200},
        3: {"reserve": -200},
        4: {"reserve": -200},
        5: {"reserve": -200},
        6: {},
    }
    # Seven prompts, one 429 resent: eight createTask calls, never more.
    assert len(kinovi.calls_to(CREATE)) == 8
    assert sorted(c.task_id for c in kinovi.calls_to(RECORD)) == ["task_1", "task_ok"]
