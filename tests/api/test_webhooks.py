"""Outbound webhooks: signed per Standard Webhooks, retried, guarded against SSRF, listed."""

import json
import socket
import time

import pytest
import requests
from django.urls import reverse
from standardwebhooks.webhooks import Webhook

from accounts.models import AuditEntry
from api import webhooks
from api.models import Callback, Delivery, WebhookSecret
from api.vendor import parse_task_id
from generations.models import Generation, Status
from tests.api.conftest import SEED_BODY
from tests.api.receiver import Receiver


@pytest.fixture
def fast_retries(settings):
    settings.API_WEBHOOK_RETRY_SECONDS = [0.2, 0.2, 0.2]
    settings.API_WEBHOOK_READ_TIMEOUT = 1.0


def _with_callback(url):
    return {**SEED_BODY, "callBackUrl": url}


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/hook",
        "http://internal.example/hook",  # a name that resolves to a private address
    ],
)
def test_private_and_loopback_targets_are_refused(url, settings, monkeypatch):
    settings.API_WEBHOOK_ALLOW_PRIVATE = False
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: [(2, 1, 6, "", ("10.0.0.7", 443))])
    assert webhooks.refusal(url) is not None
    settings.API_WEBHOOK_ALLOW_PRIVATE = True
    assert webhooks.refusal(url) is None


def test_a_public_target_passes(settings, monkeypatch):
    settings.API_WEBHOOK_ALLOW_PRIVATE = False
    monkeypatch.setattr(
        socket, "getaddrinfo", lambda *a, **k: [(2, 1, 6, "", ("93.184.216.34", 443))]
    )
    assert webhooks.refusal("https://hooks.example.com/x") is None
    assert webhooks.refusal("https://93.184.216.34/x") is None
    assert webhooks.refusal("ftp://93.184.216.34/x") is not None


@pytest.mark.django_db
def test_create_task_refuses_a_loopback_callback(api, cast, make_token, team_key, settings):
    settings.API_WEBHOOK_ALLOW_PRIVATE = False
    response = api.create(make_token(cast["bob"]), _with_callback("http://127.0.0.1:9/h"))
    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == "callBackUrl"
    assert not Generation.objects.exists()


def _finish(generation, status=Status.SUCCESS):
    """The generation ends, as the lifecycle saves it (status in update_fields)."""
    generation.status = status
    generation.video_url = "https://cdn.example.com/v.mp4" if status == Status.SUCCESS else ""
    generation.save(update_fields=["status", "video_url"])


@pytest.mark.django_db
def test_a_refused_target_is_never_contacted(
    api, cast, make_token, team_key, settings, fast_retries, django_capture_on_commit_callbacks
):
    settings.API_WEBHOOK_ALLOW_PRIVATE = True
    with Receiver() as receiver:
        api.create(make_token(cast["bob"]), _with_callback(receiver.hook_url))
        settings.API_WEBHOOK_ALLOW_PRIVATE = False  # changed before the task ends
        generation = Generation.objects.get()
        _finish(generation)
        delivery = webhooks.start(generation.pk)
        assert webhooks.deliver(delivery.pk) == "failed"
        assert receiver.requests == []
    delivery.refresh_from_db()
    attempt = delivery.attempt_rows.get()
    assert attempt.status_code is None and "not allowed" in attempt.error


@pytest.mark.django_db
def test_fails_twice_then_200_is_three_signed_attempts(
    api, cast, team, make_token, team_key, settings, fast_retries, client, login_as
):
    settings.API_WEBHOOK_ALLOW_PRIVATE = True
    with Receiver([500, 503, 200]) as receiver:
        task = api.create(make_token(cast["bob"]), _with_callback(receiver.hook_url)).json()
        generation = Generation.objects.get(public_id=parse_task_id(task["taskId"]))
        assert Callback.objects.get().generation == generation
        _finish(generation)
        delivery = webhooks.start(generation.pk)
        assert webhooks.deliver(delivery.pk) == "delivered"
        seen = receiver.requests

    assert len(seen) == 3
    secret = webhooks.secret_for(team)
    ids = set()
    for request in seen:
        payload = Webhook(secret).verify(request["body"], request["headers"])
        ids.add(request["headers"]["webhook-id"])
        assert payload["data"]["taskId"] == task["taskId"]
        assert payload["data"]["state"] == "success" and payload["code"] == 200
        assert payload["data"]["output"][0]["url"] == "https://cdn.example.com/v.mp4"
    assert len(ids) == 1  # the same message id on every retry, for deduplication
    with pytest.raises(Exception, match="signature"):
        Webhook(secret).verify(seen[0]["body"] + b" ", seen[0]["headers"])
    delivery.refresh_from_db()
    assert delivery.state == Delivery.State.DELIVERED and delivery.attempts == 3
    assert [a.status_code for a in delivery.attempt_rows.all()] == [500, 503, 200]
    # The deliveries page lists every attempt with its status and body.
    login_as(cast["bob"], team)
    page = client.get(reverse("api_webhooks")).content.decode()
    for code in ("HTTP 500", "HTTP 503", "HTTP 200", "received"):
        assert code in page
    assert secret in page


@pytest.mark.django_db
def test_gives_up_after_the_schedule_and_can_be_sent_again(
    api,
    cast,
    team,
    make_token,
    team_key,
    settings,
    fast_retries,
    client,
    login_as,
    django_capture_on_commit_callbacks,
):
    settings.API_WEBHOOK_ALLOW_PRIVATE = True
    with Receiver([500] * 4 + [200]) as receiver:
        api.create(make_token(cast["bob"]), _with_callback(receiver.hook_url))
        generation = Generation.objects.get()
        _finish(generation, Status.FAIL)
        delivery = webhooks.start(generation.pk)
        assert webhooks.deliver(delivery.pk) == "failed"
        assert len(receiver.requests) == 4  # the first and three retries
        login_as(cast["bob"], team)
        with django_capture_on_commit_callbacks(execute=False):
            response = client.post(reverse("api_webhook_resend", args=[delivery.pk]))
        assert response.status_code == 302
        assert webhooks.deliver(delivery.pk) == "delivered"
        body = json.loads(receiver.requests[-1]["body"])
    assert body["data"]["state"] == "fail" and body["data"]["creditsUsed"] == 0
    assert AuditEntry.objects.filter(action="webhook.resent").exists()


@pytest.mark.django_db
def test_a_timeout_is_an_attempt_that_is_retried(
    api, cast, make_token, team_key, settings, fast_retries
):
    settings.API_WEBHOOK_ALLOW_PRIVATE = True
    settings.API_WEBHOOK_READ_TIMEOUT = 0.3
    settings.API_WEBHOOK_RETRY_SECONDS = [0.1]
    with Receiver(delay=0.6) as receiver:
        api.create(make_token(cast["bob"]), _with_callback(receiver.hook_url))
        generation = Generation.objects.get()
        _finish(generation)
        delivery = webhooks.start(generation.pk)
        started = time.monotonic()
        assert webhooks.deliver(delivery.pk) == "failed"
        assert time.monotonic() - started < 5
    errors = [a.error for a in Delivery.objects.get().attempt_rows.all()]
    assert len(errors) == 2 and all("did not answer" in e for e in errors)


@pytest.mark.django_db
def test_only_owners_rotate_the_secret(client, login_as, cast, team):
    first = webhooks.secret_for(team)
    login_as(cast["adam"], team)
    client.raise_request_exception = False
    assert client.post(reverse("api_webhook_rotate")).status_code == 403
    assert webhooks.secret_for(team) == first
    login_as(cast["alice"], team)
    assert client.post(reverse("api_webhook_rotate")).status_code == 302
    assert webhooks.secret_for(team) != first
    assert first not in WebhookSecret.objects.get().secret_ciphertext
    assert AuditEntry.objects.filter(action="webhook_secret.rotated").count() == 1


@pytest.mark.cluster
@pytest.mark.django_db(transaction=True)
def test_the_cluster_delivers_when_the_task_ends(
    sandbox_server, start_q_cluster, cast, team, make_token, settings
):
    """End to end: a script's createTask with callBackUrl, the sandbox makes the video, the
    cluster's worker sends the signed envelope (failing twice first) to a real receiver."""
    sandbox_server.api_key(team, created_by=cast["alice"])
    token = make_token(cast["bob"])
    settings.API_WEBHOOK_ALLOW_PRIVATE = True  # the live server's own check at createTask
    with Receiver([500, 500, 200]) as receiver:
        start_q_cluster(API_WEBHOOK_ALLOW_PRIVATE="true", API_WEBHOOK_RETRY_SECONDS="0.3,0.3,0.3")
        created = requests.post(
            f"{sandbox_server.url}/api/v1/jobs/createTask",
            json=_with_callback(receiver.hook_url),
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert created.status_code == 200, created.text
        deadline = time.monotonic() + 60
        while not Delivery.objects.filter(state=Delivery.State.DELIVERED).exists():
            assert time.monotonic() < deadline, (
                Generation.objects.values_list("status"),
                receiver.requests,
            )
            time.sleep(0.3)
        seen = list(receiver.requests)
    assert len(seen) == 3
    payload = Webhook(webhooks.secret_for(team)).verify(seen[-1]["body"], seen[-1]["headers"])
    assert payload["data"]["taskId"] == created.json()["taskId"]
    assert payload["data"]["state"] == "success"
    generation = Generation.objects.get()
    assert payload["data"]["output"][0]["url"] == generation.video_url


@pytest.mark.django_db
def test_the_sweep_starts_a_delivery_the_signal_missed(api, cast, make_token, team_key, settings):
    settings.API_WEBHOOK_ALLOW_PRIVATE = True
    api.create(make_token(cast["bob"]), _with_callback("https://hooks.example.com/done"))
    generation = Generation.objects.get()
    # Ended by a bulk UPDATE: no post_save, so only the sweep can notice.
    Generation.objects.filter(pk=generation.pk).update(status=Status.SUCCESS)
    assert not Delivery.objects.exists()

    assert webhooks.sweep() == 1  # one delivery started and due

    delivery = Delivery.objects.get()
    assert delivery.generation == generation and delivery.state == Delivery.State.PENDING
    assert delivery.payload["data"]["state"] == "success"
    assert webhooks.sweep() == 1 and Delivery.objects.count() == 1  # started once only
