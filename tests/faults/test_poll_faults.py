"""recordInfo faults: flapping, malformed answers and a key revoked mid-flight never corrupt a
generation; it still ends in its right state (or a visible `stalled`) with an exact ledger."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from accounts.models import ApiKey
from generations import polling, services, tasks, tracking, vendor
from generations.models import CreditEntry, Generation, Status
from sandbox.models import SandboxAccount
from tests.faults.scripted import CREATE, RECORD, Reply, task_body
from tests.lifecycle.conftest import history, ledger, statuses, submit


@pytest.fixture
def waiting(
    kinovi,
    bob_membership,
    make_key,
    team,
    inline_jobs,
    no_sleep,
    django_capture_on_commit_callbacks,
):
    """A generation Kinovi accepted as task_1, waiting for its first poll."""
    with django_capture_on_commit_callbacks(execute=True):
        generation = submit(bob_membership, make_key(team))
    generation.refresh_from_db()
    assert (generation.status, generation.task_id) == (Status.WAITING, "task_1")
    return generation


def poll(generation) -> str:
    return tasks.poll_generation(generation.pk)


def test_flapping_recordinfo_still_reaches_success_without_regressing(kinovi, waiting):
    # 500 then 200 inside one poll: the client's retry carries it.
    kinovi.script(RECORD, 500, Reply(200, task_body("task_1", "generating")))
    assert poll(waiting) == "waiting -> generating"

    # More 500s than the client retries: this poll gives up, the row is untouched.
    kinovi.script(RECORD, 500, 503, 500, 502)
    assert poll(waiting) == "poll failed: ServerError"
    after_failure = Generation.objects.get(pk=waiting.pk)
    assert after_failure.status == Status.GENERATING
    assert after_failure.next_poll_at > timezone.now()

    # A stale "waiting" after "generating" (a lagging replica at Kinovi) is not a regression.
    kinovi.script(RECORD, 500, Reply(200, task_body("task_1", "waiting")))
    assert poll(waiting) == "generating -> generating"

    kinovi.script(RECORD, 500, Reply(200, task_body("task_1", "success")), 500)
    assert poll(waiting) == "generating -> success"

    done = Generation.objects.get(pk=waiting.pk)
    assert statuses(done) == ["queued", "submitting", "waiting", "generating", "success"]
    assert done.video_url == "https://cdn.kinovi.test/task_1.mp4"
    assert (done.width, done.height, done.credits_used) == (1280, 720, 200)
    assert ledger(done) == {"reserve": -200}
    answers = [c.answer for c in kinovi.calls_to(RECORD)]
    assert answers == ["500", "200", "500", "503", "500", "502", "500", "200", "500", "200"]
    assert done.poll_count == 4  # jobs, not HTTP attempts
    # A finished generation is not asked about again; the left-over 500 is never consumed.
    assert poll(done) == "nothing to poll"
    assert len(kinovi.calls_to(RECORD)) == 10
    assert len(kinovi.calls_to(CREATE)) == 1


@pytest.mark.parametrize(
    "reply",
    [
        Reply(200, b'{"taskId": "task_1", "status": "succ'),
        Reply(200, b"[]"),
        Reply(200, b"\xff\xfe not utf-8"),
        Reply(200, task_body("task_2", "success")),
        Reply(200, {**task_body("task_1", "success"), "output": [{"width": 1280}]}),
        Reply(200, {**task_body("task_1", "generating"), "status": "paused"}),
        Reply(200, {**task_body("task_1", "success"), "creditsUsed": "lots"}),
    ],
    ids=[
        "truncated",
        "a-list",
        "not-utf8",
        "another-task",
        "success-without-url",
        "unknown-status",
        "bad-credits",
    ],
)
def test_a_malformed_recordinfo_changes_nothing_and_the_next_poll_works(kinovi, waiting, reply):
    kinovi.script(RECORD, reply)

    assert poll(waiting) == "poll failed: MalformedResponse"

    still = Generation.objects.get(pk=waiting.pk)
    assert still.status == Status.WAITING
    assert still.video_url == "" and still.credits_used is None
    assert still.next_poll_at > timezone.now()
    assert ledger(still) == {"reserve": -200}
    assert len(kinovi.calls_to(RECORD)) == 1  # a malformed 200 is not retried in a loop

    kinovi.script(RECORD, Reply(200, task_body("task_1", "fail")))
    assert poll(still) == "waiting -> fail"
    failed = Generation.objects.get(pk=waiting.pk)
    assert ledger(failed) == {"reserve": -200, "refund": 200}
    assert sum(ledger(failed).values()) == 0


def test_a_key_revoked_at_kinovi_mid_flight(
    sandbox_server, inline_jobs, no_sleep, settings, team, bob_membership, kinovi_calls
):
    """401 on poll: the key is marked refused, the in-flight video's polls pause (it is never
    called `stalled`: the studio knows why no answer comes); a queued one is never sent."""
    settings.KINOVI_SANDBOX_GENERATE_SECONDS = 600
    key = sandbox_server.api_key(team, concurrency_limit=5)
    flying = submit(bob_membership, key, prompt="A glacier calving into the sea, wide shot")
    flying.refresh_from_db()
    assert flying.status == Status.WAITING
    inline_jobs.paused = True  # the next submission sits in the broker, not yet run
    queued = submit(bob_membership, key, prompt="Fireflies in a dark forest, macro lens")

    # The account owner revokes the key at Kinovi.
    SandboxAccount.objects.update(key_hash="revoked")

    assert poll(flying) == "poll failed: AuthenticationFailed"
    assert kinovi_calls.for_task(flying.task_id) == 1  # a 401 is not retried
    key.refresh_from_db()
    assert key.status == ApiKey.Status.INVALID
    assert "401" in key.status_detail
    flying.refresh_from_db()
    assert flying.status == Status.WAITING
    # Paused: due (so asked at once when the key works again), but never claimed meanwhile.
    assert flying.next_poll_at <= timezone.now()
    assert tracking.claim_due_polls() == []

    # The queued one's submit job runs now: refused before anything is sent, nothing charged.
    for func, args in inline_jobs.pending:
        inline_jobs.run(func, args)
    inline_jobs.paused = False
    queued.refresh_from_db()
    assert statuses(queued) == ["queued", "canceled"], history(queued)
    assert "refused by Kinovi" in queued.error_message
    assert kinovi_calls.creates == 1
    assert ledger(queued) == {}

    # Past the vendor's window it is still not called stalled, and a re-check is refused
    # before any call: both would only hear 401 again.
    late = timezone.now() + timedelta(seconds=polling.stall_after_seconds(flying) + 1)
    with time_machine.travel(late, tick=False):
        assert tasks.sweep()["stalled"] == []
        with pytest.raises(services.ActionRefused, match="refused this video's API key"):
            services.recheck(generation=Generation.objects.get(pk=flying.pk), source="user")
    flying.refresh_from_db()
    assert statuses(flying) == ["queued", "submitting", "waiting"]
    assert flying.error_message == ""  # a refused key is the key's problem, not the video's
    # Kinovi may have charged it: the reserve stays, exactly once.
    assert ledger(flying) == {"reserve": -200}
    assert CreditEntry.objects.filter(workspace=team).count() == 1
    assert kinovi_calls.for_task(flying.task_id) == 1
    assert kinovi_calls.creates == 1


@pytest.fixture
def sleeps(monkeypatch):
    """The jobs' client records how long it would have slept between retries."""
    import kinovi as client_module

    waited: list[float] = []
    monkeypatch.setattr(
        vendor, "client_for", lambda secret: client_module.KinoviClient(secret, sleep=waited.append)
    )
    return waited


def test_recordinfo_429_waits_as_long_as_kinovi_says(kinovi, waiting, sleeps):
    kinovi.script(
        RECORD,
        Reply(429, {"message": "Too many requests"}, headers={"Retry-After": "2"}),
        Reply(200, task_body("task_1", "generating")),
    )
    assert poll(waiting) == "waiting -> generating"
    assert len(sleeps) == 1 and sleeps[0] >= 2

    # Longer than a worker should block: no wait inside the job, and no poll before it.
    sleeps.clear()
    kinovi.script(RECORD, Reply(429, {"message": "Slow down"}, headers={"Retry-After": "90"}))
    assert poll(waiting) == "poll failed: ConcurrencyLimited"
    assert sleeps == []
    generation = Generation.objects.get(pk=waiting.pk)
    assert generation.next_poll_at >= timezone.now() + timedelta(seconds=89)
    assert generation.status == Status.GENERATING
    assert len(kinovi.calls_to(RECORD)) == 3

    # Without Retry-After: the client's own growing, jittered back-off, then the cadence.
    kinovi.script(RECORD, *[Reply(429, {"message": "busy"})] * 4)
    assert poll(waiting) == "poll failed: ConcurrencyLimited"
    assert len(sleeps) == 3 and sleeps[0] < sleeps[2]
    assert Generation.objects.get(pk=waiting.pk).next_poll_at > timezone.now()
    assert ledger(generation) == {"reserve": -200}
