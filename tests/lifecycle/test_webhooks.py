"""The Kinovi callback: stored before judged, confirmed with recordInfo, never trusted as such.

The sandbox plays Kinovi over real HTTP (tasks, recordInfo and the documented webhook body);
jobs run inline so each step can be observed.
"""

import json
import threading
from urllib.parse import urlsplit

import requests
from django.utils import timezone

import kinovi
from generations import services, submission, tasks
from generations.models import Generation, Heartbeat, Status, WebhookDelivery
from sandbox.models import SandboxTask
from sandbox.services import webhook_body
from tests.lifecycle.conftest import (
    history,
    in_flight,
    ledger,
    statuses,
    submit,
    wait_for,
    wait_until_ended,
)


def post(client, path: str, body) -> int:
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(path, data=data, content_type="application/json").status_code


def bad_token_count() -> int:
    beat = Heartbeat.objects.filter(name=Heartbeat.BAD_WEBHOOK_TOKEN).first()
    return beat.count if beat else 0


def test_a_confirmed_callback_is_applied(
    callbacks, sandbox_server, inline_jobs, client, bob_membership, kinovi_calls
):
    generation, task, path = in_flight(sandbox_server, bob_membership)
    assert path == f"/hooks/kinovi/{generation.public_id}/{path.split('/')[-2]}/"
    assert len(path.split("/")[-2]) >= 22  # at least 128 bits of url-safe base64
    wait_until_ended(task)

    assert post(client, path, webhook_body(task)) == 200

    generation.refresh_from_db()
    assert generation.status == Status.SUCCESS
    assert history(generation)[-1] == ("waiting", "success", "webhook")
    delivery = WebhookDelivery.objects.get()
    assert (delivery.outcome, delivery.generation_id) == ("applied", generation.pk)
    assert delivery.remote_addr == "127.0.0.1"
    assert json.loads(delivery.body)["data"]["taskId"] == task.task_id
    assert kinovi_calls.for_task(task.task_id) == 1
    assert ledger(generation) == {"reserve": -200}


def test_wrong_token_is_404_and_nothing_is_stored(
    callbacks, sandbox_server, inline_jobs, client, bob_membership
):
    generation, task, path = in_flight(sandbox_server, bob_membership)
    wait_until_ended(task)
    wrong = path.replace(path.split("/")[-2], "A" * 43)

    assert post(client, wrong, webhook_body(task)) == 404
    assert post(client, f"/hooks/kinovi/{task.pk:08d}-0000-0000-0000-000000000000/x/", {}) == 404

    assert WebhookDelivery.objects.count() == 0
    assert bad_token_count() == 2
    assert Generation.objects.get(pk=generation.pk).status == Status.WAITING


def test_a_callback_before_the_create_answer_is_kept_then_resolved(
    callbacks, sandbox_server, inline_jobs, client, team, bob_membership, kinovi_calls
):
    inline_jobs.paused = True  # hold the submit job: its steps are taken by hand below
    generation = submit(bob_membership, sandbox_server.api_key(team), prompt="Crowd [sandbox:fail]")
    claimed, callback_url = submission._claim(generation)
    assert claimed
    # Kinovi creates the task and its callback comes before we read the createTask answer.
    with kinovi.KinoviClient(generation.api_key.secret) as client_:
        task_id = client_.create_task(
            model="seedance-20",
            prompt=generation.prompt,
            duration=5,
            aspect_ratio="16:9",
            mode="keyframe",
            upscale_4k=False,
            callback_url=callback_url,
        )
    task = SandboxTask.objects.get(task_id=task_id)
    wait_until_ended(task)
    inline_jobs.paused = False

    assert post(client, urlsplit(callback_url).path, webhook_body(task)) == 200
    delivery = WebhookDelivery.objects.get()
    assert delivery.outcome == "early"
    assert Generation.objects.get(pk=generation.pk).status == Status.SUBMITTING

    submission._create_accepted(Generation.objects.get(pk=generation.pk), task_id)

    generation.refresh_from_db()
    delivery.refresh_from_db()
    assert delivery.outcome == "applied"
    assert statuses(generation) == ["queued", "submitting", "waiting", "fail"]
    assert history(generation)[-1][2] == "webhook"
    assert generation.error_code == "2038"
    assert ledger(generation) == {"reserve": -200, "refund": 200}
    assert kinovi_calls.for_task(task_id) == 1


def test_three_concurrent_duplicates_apply_once(
    callbacks, sandbox_server, inline_jobs, bob_membership, kinovi_calls
):
    generation, task, path = in_flight(sandbox_server, bob_membership)
    wait_until_ended(task)
    body = webhook_body(task)
    barrier = threading.Barrier(3)
    answers = []

    def deliver():
        barrier.wait()
        answers.append(requests.post(sandbox_server.url + path, json=body, timeout=20).status_code)

    threads = [threading.Thread(target=deliver) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    generation.refresh_from_db()
    assert generation.status == Status.SUCCESS
    assert [to for _, to, _ in history(generation)].count("success") == 1
    assert ledger(generation) == {"reserve": -200}
    outcomes = sorted(WebhookDelivery.objects.values_list("outcome", flat=True))
    # Each answered 200: judged, or (once the success was confirmed) a late duplicate.
    assert answers == [200, 200, 200]
    assert outcomes.count("applied") == 1
    assert set(outcomes) <= {"applied", "duplicate"}
    assert kinovi_calls.for_task(task.task_id) == 1


def test_a_stale_callback_after_success_changes_nothing(
    callbacks, sandbox_server, inline_jobs, client, bob_membership, kinovi_calls
):
    generation, task, path = in_flight(sandbox_server, bob_membership)
    wait_until_ended(task)
    tasks.poll_generation(generation.pk)
    generation.refresh_from_db()
    assert generation.status == Status.SUCCESS and generation.confirmed_at is not None
    before = (history(generation), ledger(generation))

    # Kinovi's late delivery after the confirmed success: 200 "duplicate", never confirmed
    # again (no recordInfo), not a bad token.
    calls = kinovi_calls.for_task(task.task_id)
    assert post(client, path, webhook_body(task)) == 200

    delivery = WebhookDelivery.objects.get()
    assert delivery.outcome == "duplicate"
    assert "confirm" not in " ".join(inline_jobs.names())
    assert kinovi_calls.for_task(task.task_id) == calls
    assert bad_token_count() == 0
    assert (history(generation), ledger(generation)) == before


def test_a_callback_naming_another_task_is_rejected(
    callbacks, sandbox_server, inline_jobs, client, bob_membership, kinovi_calls
):
    mine, _, path = in_flight(sandbox_server, bob_membership)
    other, other_task, _ = in_flight(
        sandbox_server, bob_membership, prompt="Another video", key=mine.api_key
    )
    wait_until_ended(other_task)

    assert post(client, path, webhook_body(other_task)) == 200

    delivery = WebhookDelivery.objects.get()
    assert delivery.outcome == "rejected"
    assert other_task.task_id in delivery.error and mine.task_id in delivery.error
    assert Generation.objects.get(pk=mine.pk).status == Status.WAITING
    assert Generation.objects.get(pk=other.pk).status == Status.WAITING
    assert kinovi_calls.record_info == {}


def test_a_forged_success_while_kinovi_says_generating_is_ignored(
    callbacks, settings, sandbox_server, inline_jobs, client, bob_membership
):
    settings.KINOVI_SANDBOX_GENERATE_SECONDS = 60
    generation, task, path = in_flight(sandbox_server, bob_membership)
    wait_for(lambda: timezone.now() >= task.starts_at, timeout=10, what="generating")
    forged = {
        "code": 200,
        "message": "success",
        "data": {
            "taskId": task.task_id,
            "state": "success",
            "creditsUsed": 1,
            "output": [{"url": "https://evil.example/video.mp4", "width": 1, "height": 1}],
        },
    }

    assert post(client, path, forged) == 200

    generation.refresh_from_db()
    delivery = WebhookDelivery.objects.get()
    assert delivery.outcome == "ignored"
    assert "claimed success but Kinovi says generating" in delivery.error
    # Kinovi's own answer was applied, and only that.
    assert generation.status == Status.GENERATING
    assert history(generation)[-1] == ("waiting", "generating", "webhook")
    assert generation.video_url == "" and generation.credits_used is None
    assert ledger(generation) == {"reserve": -200}

    # Later, once it really ended, the admin's "process again" confirms the same delivery.
    SandboxTask.objects.filter(pk=task.pk).update(ends_at=timezone.now())
    services.reprocess_delivery(delivery)
    delivery.refresh_from_db()
    generation.refresh_from_db()
    assert generation.status == Status.SUCCESS
    assert generation.video_url.startswith(sandbox_server.url)
    assert delivery.outcome == "applied"


def test_an_unknown_outcome_is_resolved_by_its_callback(
    callbacks, sandbox_server, inline_jobs, client, team, bob_membership, kinovi_calls
):
    inline_jobs.paused = True
    generation = submit(bob_membership, sandbox_server.api_key(team))
    claimed, callback_url = submission._claim(generation)
    with kinovi.KinoviClient(generation.api_key.secret) as client_:
        task_id = client_.create_task(
            model="seedance-20",
            prompt=generation.prompt,
            duration=5,
            aspect_ratio="16:9",
            mode="keyframe",
            upscale_4k=False,
            callback_url=callback_url,
        )
    # ...but the answer was lost (say, a read timeout): the outcome is unknown.
    submission._create_failed(
        Generation.objects.get(pk=generation.pk), kinovi.UnknownOutcome("read timed out")
    )
    inline_jobs.paused = False
    generation.refresh_from_db()
    assert generation.status == Status.UNKNOWN and generation.task_id is None
    assert ledger(generation) == {"reserve": -200}
    task = SandboxTask.objects.get(task_id=task_id)
    wait_until_ended(task)

    assert post(client, urlsplit(callback_url).path, webhook_body(task)) == 200

    generation.refresh_from_db()
    assert generation.task_id == task_id
    assert statuses(generation) == ["queued", "submitting", "unknown", "success"]
    assert history(generation)[-1][2] == "webhook"
    assert ledger(generation) == {"reserve": -200}
    assert kinovi_calls.creates == 1


def test_a_callback_for_an_unknown_outcome_naming_a_foreign_task_is_rejected(
    callbacks, sandbox_server, inline_jobs, client, team, bob_membership
):
    inline_jobs.paused = True
    generation = submit(bob_membership, sandbox_server.api_key(team))
    _, callback_url = submission._claim(generation)
    submission._create_failed(generation, kinovi.UnknownOutcome("read timed out"))
    inline_jobs.paused = False
    # A task of another Kinovi account: recordInfo with our key says 403.
    other_key = sandbox_server.create_secret(label="someone else")
    with kinovi.KinoviClient(other_key) as client_:
        foreign = client_.create_task(
            model="seedance-20",
            prompt="Not ours",
            duration=4,
            aspect_ratio="16:9",
            mode="keyframe",
            upscale_4k=False,
        )

    body = webhook_body(SandboxTask.objects.get(task_id=foreign))
    assert post(client, urlsplit(callback_url).path, body) == 200

    delivery = WebhookDelivery.objects.get()
    assert delivery.outcome == "rejected"
    generation.refresh_from_db()
    assert generation.status == Status.UNKNOWN and generation.task_id is None


def test_oversized_and_malformed_bodies_are_stored_and_rejected(
    callbacks, sandbox_server, inline_jobs, client, bob_membership
):
    generation, _, path = in_flight(sandbox_server, bob_membership)

    assert post(client, path, "x" * (64 * 1024 + 10)) == 413
    assert post(client, path, "{not json") == 400
    assert post(client, path, {"code": 200, "data": {"taskId": "t", "state": "done"}}) == 400

    deliveries = list(WebhookDelivery.objects.order_by("id"))
    assert [d.outcome for d in deliveries] == ["rejected"] * 3
    assert deliveries[0].body_truncated and len(deliveries[0].body) == 64 * 1024
    assert Generation.objects.get(pk=generation.pk).status == Status.WAITING


def test_only_post_is_accepted(callbacks, sandbox_server, inline_jobs, client, bob_membership):
    _, _, path = in_flight(sandbox_server, bob_membership)
    assert client.get(path).status_code == 405
    assert WebhookDelivery.objects.count() == 0
