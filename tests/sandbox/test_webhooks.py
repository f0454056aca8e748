"""Completion webhooks: the documented envelope, sent to a local receiver, retried, claimed."""

import json

import pytest

from kinovi import parse_webhook
from sandbox import tasks
from sandbox.models import SandboxAccount, SandboxTask
from sandbox.services import CreateInputs, create_task
from tests.kinovi.conftest import FaultyServer, free_port
from tests.sandbox.conftest import later


@pytest.fixture
def receiver():
    server = FaultyServer().start()
    server.behaviour = (200, b"{}")
    yield server
    server.stop()


@pytest.fixture
def start_task(make_account, sandbox_timings, clock):
    _, account = make_account(credits=1000)

    def start(callback_url, prompt="Fireflies over a pond", **changes):
        inputs = CreateInputs(
            model="seedance-20",
            prompt=prompt,
            duration=4,
            aspect_ratio="1:1",
            mode="keyframe",
            resolution="480p",
            upscale_4k=False,
            callback_url=callback_url,
            raw_inputs={"prompt": prompt},
        )
        return create_task(account=account, inputs=inputs, public_base="http://sandbox.test")

    start.account = account
    return start


def delivered(server):
    return [json.loads(body) for method, _, _, body in server.requests if method == "POST"]


def test_success_envelope(receiver, start_task, clock):
    task = start_task(receiver.base_url + "/hook")
    assert tasks.send_due_webhooks() == 0  # not ended yet
    later(clock, 61)
    assert tasks.send_due_webhooks() == 1
    (envelope,) = delivered(receiver)
    assert (envelope["code"], envelope["message"]) == (200, "success")
    data = envelope["data"]
    assert data["taskId"] == task.task_id and data["orderId"].startswith("order_")
    assert (data["state"], data["creditsUsed"], data["error"]) == ("success", 60, None)
    (output,) = data["output"]
    assert output["url"] == f"http://sandbox.test/sandbox/media/{task.task_id}/video.mp4"
    assert (output["width"], output["height"]) == (480, 480)
    assert data["completeTime"] - data["createTime"] == 60_000
    info = parse_webhook(envelope)  # our own client reads it back
    assert info.status == "success" and info.output.width == 480
    fresh = SandboxTask.objects.get(pk=task.pk)
    assert fresh.webhook_delivered_at and fresh.webhook_due_at is None
    assert fresh.video_path  # rendered before the URL was announced
    assert tasks.send_due_webhooks() == 0  # never sent twice
    assert len(delivered(receiver)) == 1


def test_fail_envelope_and_refund(receiver, start_task, clock):
    start_task(receiver.base_url + "/hook", prompt="Something [sandbox:fail]")
    assert SandboxAccount.objects.get(pk=start_task.account.pk).credits == 940
    later(clock, 11)
    assert tasks.send_due_webhooks() == 1
    data = delivered(receiver)[0]["data"]
    assert data["state"] == "fail"
    assert data["creditsUsed"] == 0 and data["output"] is None and data["completeTime"] is None
    assert data["error"]["code"] == "2038" and "violates" in data["error"]["message"]
    assert SandboxAccount.objects.get(pk=start_task.account.pk).credits == 1000


def test_non_2xx_is_retried_with_backoff_then_delivered(receiver, start_task, clock):
    task = start_task(receiver.base_url + "/hook")
    later(clock, 61)
    receiver.behaviour = (500, b"down")
    assert tasks.send_due_webhooks() == 0
    fresh = SandboxTask.objects.get(pk=task.pk)
    assert (fresh.webhook_attempts, fresh.webhook_last_status) == (1, "HTTP 500")
    assert tasks.send_due_webhooks() == 0  # not due again yet
    assert len(receiver.requests) == 1
    receiver.behaviour = (204, b"")
    later(clock, 1.5)
    assert tasks.send_due_webhooks() == 1
    assert len(receiver.requests) == 2
    assert SandboxTask.objects.get(pk=task.pk).webhook_attempts == 2


def test_gives_up_after_a_few_attempts(start_task, clock):
    task = start_task(f"http://127.0.0.1:{free_port()}/nobody-listens")
    later(clock, 61)
    for delay in (*tasks.RETRY_DELAYS, 0):
        assert tasks.send_due_webhooks() == 0
        later(clock, delay + 0.5)
    fresh = SandboxTask.objects.get(pk=task.pk)
    assert fresh.webhook_attempts == tasks.MAX_ATTEMPTS
    assert fresh.webhook_due_at is None and fresh.webhook_delivered_at is None
    assert fresh.webhook_last_status.startswith("gave up")


def test_tasks_without_callback_are_never_sent(start_task, clock):
    start_task("")
    later(clock, 61)
    assert not SandboxTask.objects.filter(webhook_due_at__isnull=False).exists()
    assert tasks.send_due_webhooks() == 0


def test_a_claimed_delivery_is_not_taken_by_another_sender(receiver, start_task, clock):
    task = start_task(receiver.base_url + "/hook")
    later(clock, 61)
    # Another cluster claimed it a moment ago (its lease pushes the due time out).
    SandboxTask.objects.filter(pk=task.pk).update(webhook_due_at=task.ends_at + tasks.LEASE)
    assert tasks.send_due_webhooks() == 0
    assert receiver.requests == []


def test_nothing_due_costs_one_query(start_task, django_assert_num_queries, receiver):
    start_task(receiver.base_url + "/hook")
    with django_assert_num_queries(1):
        assert tasks.send_due_webhooks() == 0
