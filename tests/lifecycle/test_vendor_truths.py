"""Issue 19, what an independent Kinovi double found, each against the sandbox over HTTP and a
real django-q2 cluster: late deliveries answered 2xx, the `unknown` page offering only what
works, a refused key pausing its polls, and a webhook that could not be used hurrying the poll.
"""

import time
from datetime import timedelta

import pytest
import requests
import time_machine
from django.urls import reverse
from django.utils import timezone

from accounts import services as account_services
from accounts.models import ApiKey, Membership
from generations import polling, tasks, tracking
from generations.models import Generation, Heartbeat, Status, WebhookDelivery
from sandbox.models import SandboxAccount, SandboxTask, hash_key
from sandbox.services import inject_faults, webhook_body
from tests.lifecycle.conftest import (
    history,
    ledger,
    statuses,
    submit,
    wait_for,
    wait_for_status,
    wait_until_ended,
)

pytestmark = [pytest.mark.cluster]


def counter(name: str) -> int:
    beat = Heartbeat.objects.filter(name=name).first()
    return beat.count if beat else 0


def with_task(generation) -> Generation:
    """The generation once createTask has answered (in the cluster's submit job)."""
    return wait_for(
        lambda: Generation.objects.filter(pk=generation.pk, task_id__isnull=False).first(),
        timeout=20,
        what="a task id",
    )


def page(client, generation) -> str:
    return client.get(reverse("generation_detail", args=[generation.public_id])).content.decode()


# --- 1. late and repeated deliveries ----------------------------------------------------------


def test_late_and_repeated_deliveries_get_200_change_nothing_and_the_retries_stop(
    sandbox_server, start_q_cluster, settings, team, bob_membership, kinovi_calls
):
    settings.KINOVI_CALLBACKS = True
    start_q_cluster()
    key = sandbox_server.api_key(team)
    late = with_task(submit(bob_membership, key, prompt="A late webhook, slow pan"))
    late_task = SandboxTask.objects.get(task_id=late.task_id)
    # Kinovi's webhook for the first is held until the studio has seen the success by its
    # safety-net poll. The second's callback URL carries a wrong token: the sender's control.
    SandboxTask.objects.filter(pk=late_task.pk).update(webhook_due_at=None)
    control = with_task(submit(bob_membership, key, prompt="A misaddressed webhook, slow pan"))
    wrong = SandboxTask.objects.get(task_id=control.task_id).callback_url.rsplit("/", 2)
    SandboxTask.objects.filter(task_id=control.task_id).update(
        callback_url=f"{wrong[0]}/{'x' * 43}/"
    )

    done = wait_for_status(late, Status.SUCCESS, timeout=30)
    assert history(done)[-1][2] == "poll"
    calls_at_success = kinovi_calls.for_task(late.task_id)
    SandboxTask.objects.filter(pk=late_task.pk).update(webhook_due_at=timezone.now())

    delivered = wait_for(
        lambda: SandboxTask.objects.filter(
            pk=late_task.pk, webhook_delivered_at__isnull=False
        ).first(),
        timeout=20,
        what="the late webhook",
    )
    # The wrong token is retried (the sender retries on anything but a 2xx) ...
    retried = wait_for(
        lambda: SandboxTask.objects.filter(
            task_id=control.task_id, webhook_attempts__gte=2
        ).first(),
        timeout=20,
        what="the misaddressed webhook's retry",
    )
    assert retried.webhook_delivered_at is None and "404" in retried.webhook_last_status
    SandboxTask.objects.filter(pk=retried.pk).update(webhook_due_at=None)  # enough retries
    # ... while the late one got its 200 at the first attempt, and is never sent again.
    time.sleep(1.5)  # past the sender's first retry delay
    delivered.refresh_from_db()
    assert (delivered.webhook_attempts, delivered.webhook_last_status) == (1, "HTTP 200")
    assert delivered.webhook_due_at is None

    # The vendor repeats it: 200 "duplicate" each time, nothing judged, confirmed or counted bad.
    bad_before, late_before = counter(Heartbeat.BAD_WEBHOOK_TOKEN), counter(Heartbeat.LATE_WEBHOOK)
    for _ in range(3):
        answer = requests.post(delivered.callback_url, json=webhook_body(delivered), timeout=10)
        assert (answer.status_code, answer.json()["outcome"]) == (200, "duplicate")
    assert counter(Heartbeat.BAD_WEBHOOK_TOKEN) == bad_before
    assert counter(Heartbeat.LATE_WEBHOOK) == late_before + 3 >= 4
    assert set(
        WebhookDelivery.objects.filter(generation=late).values_list("outcome", flat=True)
    ) == {"duplicate"}
    assert WebhookDelivery.objects.filter(generation=late).count() == 4
    assert kinovi_calls.for_task(late.task_id) == calls_at_success  # no confirmation
    after = Generation.objects.get(pk=late.pk)
    assert statuses(after) == statuses(done)
    assert ledger(after) == {"reserve": -200}
    assert after.completed_at == done.completed_at and after.video_url == done.video_url


# --- 2. the unknown page ----------------------------------------------------------------------


def test_the_unknown_page_offers_only_what_works_and_shows_the_reserve_held(
    sandbox_server, q_cluster, team, cast, bob_membership, login_as, kinovi_calls
):
    key = sandbox_server.api_key(team)
    inject_faults(status=500, count=1, endpoint="createTask")

    generation = wait_for_status(submit(bob_membership, key), Status.UNKNOWN, timeout=20)
    assert generation.task_id is None
    assert ledger(generation) == {"reserve": -200}

    html = page(login_as(cast["bob"], team), generation)
    assert "We never got Kinovi" in html
    assert reverse("generation_recheck", args=[generation.public_id]) not in html
    assert "Re-check" not in html
    assert "Held meanwhile: <strong>200 credits</strong> ($1.00)" in html
    assert "An operator</strong>" in html and "task id from Kinovi's dashboard" in html
    assert "Retry (may pay twice)" in html and "both are charged" in html
    assert "Resolve it in the admin" not in html  # Bob is no operator
    # A viewer is told the same, and offered nothing.
    html = page(login_as(cast["vera"], team), generation)
    assert "Held meanwhile" in html and "Retry" not in html

    # What is not offered does not work either: the re-check is refused before any call.
    client = login_as(cast["bob"], team)
    answer = client.post(reverse("generation_recheck", args=[generation.public_id]), follow=True)
    assert "Only a callback from Kinovi or an operator" in answer.content.decode()
    assert kinovi_calls.record_info == {}
    assert Generation.objects.get(pk=generation.pk).status == Status.UNKNOWN

    # An operator looking at it gets the way to resolve it.
    cast["adam"].is_staff = True
    cast["adam"].save(update_fields=["is_staff"])
    html = page(login_as(cast["adam"], team), generation)
    resolve = reverse("admin:generations_generation_resolve", args=[generation.pk])
    assert f'<a href="{resolve}">Resolve it in the admin</a>' in html


# --- 3. a refused key -------------------------------------------------------------------------


def test_a_refused_key_pauses_its_polls_says_why_and_resumes_when_verified(
    sandbox_server, start_q_cluster, settings, team, cast, bob_membership, login_as, kinovi_calls
):
    settings.KINOVI_SANDBOX_GENERATE_SECONDS = 5
    start_q_cluster()
    key = sandbox_server.api_key(team)
    generation = with_task(submit(bob_membership, key, prompt="A glacier, wide shot"))
    task = SandboxTask.objects.get(task_id=generation.task_id)
    secret_hash = hash_key(key.secret)

    # The account owner revokes the key at Kinovi while the video is being made.
    SandboxAccount.objects.filter(key_hash=secret_hash).update(key_hash="revoked")
    wait_for(
        lambda: ApiKey.objects.filter(pk=key.pk, status=ApiKey.Status.INVALID).exists(),
        timeout=20,
        what="the key to be refused",
    )
    refused_calls = kinovi_calls.for_task(task.task_id)
    time.sleep(2.5)  # at this time scale the dense cadence would ask ~20 times meanwhile
    assert kinovi_calls.for_task(task.task_id) == refused_calls
    paused = Generation.objects.get(pk=generation.pk)
    assert paused.status in (Status.WAITING, Status.GENERATING) and paused.is_paused

    # Past the vendor's window it is not called stalled: the studio knows why no answer comes.
    overdue = paused.submitted_at + timedelta(
        seconds=polling.stall_after_seconds(paused) * polling.scale() + 1
    )
    with time_machine.travel(max(overdue, timezone.now()), tick=False):
        assert tasks.sweep()["stalled"] == []
    html = page(login_as(cast["bob"], team), paused)
    assert "Kinovi refused this video&#x27;s API key, so we stopped asking about it" in html
    assert "Check again" in html and "owner or admin" in html
    assert "Held meanwhile: <strong>200 credits</strong>" in html
    assert reverse("generation_recheck", args=[paused.public_id]) not in html

    # The key works again at Kinovi and an owner re-verifies it: polling resumes at once.
    wait_until_ended(task)
    SandboxAccount.objects.filter(key_hash="revoked").update(key_hash=secret_hash)
    alice = Membership.objects.get(user=cast["alice"], workspace=team)
    verified_at = time.monotonic()
    assert account_services.recheck_key(actor=alice, key=key).status == ApiKey.Status.VERIFIED

    done = wait_for_status(paused, Status.SUCCESS, timeout=15)
    assert time.monotonic() - verified_at < 5
    assert Status.STALLED not in statuses(done)
    assert history(done)[-1][2] == "poll"
    assert ledger(done) == {"reserve": -200}
    assert kinovi_calls.for_task(task.task_id) > refused_calls


# --- 4. a webhook that could not be used hurries the poll -------------------------------------


def test_an_early_or_misaddressed_delivery_hurries_the_poll_at_most_once_a_minute(
    sandbox_server, start_q_cluster, settings, team, bob_membership, kinovi_calls
):
    # Real time (no scaling): the safety-net poll of a 5 s video with a callback is 165 s away,
    # and the sandbox keeps both tasks waiting for 30 s.
    settings.KINOVI_CALLBACKS = True
    settings.KINOVI_POLL_TIME_SCALE = 1.0
    settings.KINOVI_SANDBOX_WAIT_SECONDS = 30
    settings.KINOVI_SANDBOX_GENERATE_SECONDS = 30
    start_q_cluster()
    key = sandbox_server.api_key(team)
    early = with_task(submit(bob_membership, key, prompt="An early webhook, slow pan"))
    flooded = with_task(submit(bob_membership, key, prompt="A flood of forged posts, slow pan"))
    for generation in (early, flooded):
        generation.refresh_from_db()
        assert generation.next_poll_at > timezone.now() + timedelta(seconds=100)
    session = requests.Session()

    # An early delivery: it claims success while Kinovi still says waiting.
    task = SandboxTask.objects.get(task_id=early.task_id)
    url = task.callback_url
    assert session.post(url, json=webhook_body(task), timeout=10).status_code == 200
    delivery = wait_for(
        lambda: WebhookDelivery.objects.filter(generation=early, outcome="ignored").first(),
        timeout=15,
        what="the confirmation",
    )
    assert kinovi_calls.for_task(early.task_id) == 1  # the confirmation
    wait_for(lambda: kinovi_calls.for_task(early.task_id) == 2, timeout=10, what="a hurried poll")
    assert (timezone.now() - delivery.processed_at).total_seconds() < 8

    # 100 forged posts naming another task: refused without a call, and one poll soon after.
    flooded_task = SandboxTask.objects.get(task_id=flooded.task_id)
    forged = webhook_body(flooded_task)
    forged["data"]["taskId"] = "task_someone_elses"
    started = timezone.now()
    for _ in range(100):
        answer = session.post(flooded_task.callback_url, json=forged, timeout=10)
        assert answer.status_code == 200
    assert WebhookDelivery.objects.filter(generation=flooded, outcome="rejected").count() == 100
    wait_for(lambda: kinovi_calls.for_task(flooded.task_id) == 1, timeout=10, what="a hurried poll")
    assert (timezone.now() - started).total_seconds() < 15
    # More posts within the minute (early ones again too) lead to no further poll.
    for _ in range(20):
        session.post(flooded_task.callback_url, json=forged, timeout=10)
    assert session.post(url, json=webhook_body(task), timeout=10).status_code == 200
    time.sleep(5)  # longer than a hurry's delay
    assert kinovi_calls.for_task(flooded.task_id) == 1
    assert kinovi_calls.for_task(early.task_id) == 3  # only the second early one's confirmation
    for generation in (early, flooded):
        generation.refresh_from_db()
        assert generation.status == Status.WAITING, history(generation)
        assert generation.next_poll_at > timezone.now() + timedelta(seconds=60)
    assert tracking.claim_due_polls() == []
