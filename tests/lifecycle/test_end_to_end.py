"""A generation's whole life against the sandbox over HTTP, run by a real django-q2 cluster."""

import pytest
import requests

from generations.models import Status, WebhookDelivery
from tests.lifecycle.conftest import history, ledger, statuses, submit, wait_for_status

pytestmark = [pytest.mark.cluster]


def assert_successful(done, *, last_source: str) -> None:
    assert done.status == Status.SUCCESS, history(done)
    seen = statuses(done)
    assert seen[:3] == ["queued", "submitting", "waiting"]
    assert seen[-1] == "success"
    assert set(seen[3:-1]) <= {"generating"}
    assert history(done)[-1][2] == last_source
    assert done.task_id.startswith("task_")
    # 720p: the resolution every createTask names unless chosen otherwise.
    assert (done.width, done.height, done.credits_used) == (1280, 720, 200)
    assert done.video_url and done.last_frame_url and done.seed is not None
    assert done.completed_at is not None
    assert ledger(done) == {"reserve": -200}
    assert done.confirmed_at is not None and done.next_poll_at is None
    video = requests.get(done.video_url, timeout=10)
    assert video.status_code == 200
    assert video.headers["Content-Type"] == "video/mp4"


def test_polling_path_reaches_success(sandbox_server, q_cluster, team, bob_membership):
    key = sandbox_server.api_key(team)

    generation = submit(bob_membership, key)

    done = wait_for_status(generation, {Status.SUCCESS, Status.FAIL}, timeout=40)
    assert_successful(done, last_source="poll")
    assert done.callback_token_hash == ""
    assert not WebhookDelivery.objects.exists()


def test_webhook_path_reaches_the_same_end(
    sandbox_server, start_q_cluster, settings, team, bob_membership
):
    settings.KINOVI_CALLBACKS = True
    start_q_cluster()
    key = sandbox_server.api_key(team)

    generation = submit(bob_membership, key)

    done = wait_for_status(generation, {Status.SUCCESS, Status.FAIL}, timeout=40)
    assert_successful(done, last_source="webhook")
    assert len(done.callback_token_hash) == 64
    delivery = WebhookDelivery.objects.get()
    assert delivery.generation_id == done.pk
    assert (delivery.outcome, delivery.claimed_status) == ("applied", "success")
    assert delivery.claimed_task_id == done.task_id


def test_a_failing_prompt_fails_and_is_refunded(sandbox_server, q_cluster, team, bob_membership):
    key = sandbox_server.api_key(team)

    generation = submit(bob_membership, key, prompt="A riot in the streets [sandbox:fail]")

    done = wait_for_status(generation, {Status.SUCCESS, Status.FAIL}, timeout=40)
    assert done.status == Status.FAIL, history(done)
    assert statuses(done)[:3] == ["queued", "submitting", "waiting"]
    assert done.error_code == "2038"
    assert "violates platform rules" in done.error_message
    assert ledger(done) == {"reserve": -200, "refund": 200}
    assert sum(ledger(done).values()) == 0
    assert done.charged_credits == 0
    assert done.video_url == ""


def test_two_clusters_never_poll_the_same_task_at_once(
    sandbox_server, start_q_cluster, team, bob_membership, kinovi_calls
):
    clusters = [start_q_cluster(), start_q_cluster()]
    key = sandbox_server.api_key(team, concurrency_limit=6)

    generations = [submit(bob_membership, key, prompt=f"Shot {i}") for i in range(6)]

    for generation in generations:
        done = wait_for_status(generation, {Status.SUCCESS, Status.FAIL}, timeout=60)
        assert done.status == Status.SUCCESS, history(done)
        assert ledger(done) == {"reserve": -200}
        intervals = sorted(kinovi_calls.intervals[done.task_id])
        assert len(intervals) == kinovi_calls.for_task(done.task_id) >= 1
        for (_, end), (next_start, _) in zip(intervals, intervals[1:], strict=False):
            assert next_start >= end, f"overlapping recordInfo for {done.task_id}"
    assert kinovi_calls.creates == 6
    # Both clusters were really running (each logged its own start).
    assert all(b"running." in c.log_path.read_bytes() for c in clusters)
