"""A refused key's generations are paused and resumed by the claim alone; a hurried poll is
bounded. The whole path against the sandbox and a cluster is in test_vendor_truths.py."""

from datetime import timedelta

from django.utils import timezone

from accounts.models import ApiKey
from generations import lifecycle, polling, tasks, tracking
from generations.models import Generation, Status


def in_flight(team, cast, key, **fields) -> Generation:
    now = timezone.now()
    return Generation.objects.create(
        workspace=team,
        creator=cast["bob"],
        api_key=key,
        prompt="A paused video",
        estimated_credits=200,
        status=fields.pop("status", Status.WAITING),
        task_id=fields.pop("task_id", "task_paused_1"),
        submitted_at=now - timedelta(seconds=30),
        next_poll_at=fields.pop("next_poll_at", now + timedelta(seconds=90)),
        **fields,
    )


def second_key(team, secret: str) -> ApiKey:
    key = ApiKey(workspace=team, label="Second", status=ApiKey.Status.VERIFIED)
    key.secret = secret
    key.save()
    return key


def test_a_key_refused_elsewhere_pauses_its_generations_until_it_is_verified(team, cast, make_key):
    key = make_key(team)
    generation = in_flight(team, cast, key)
    other = in_flight(team, cast, second_key(team, "sk_live_other_key_000001"), task_id="task_2")
    ApiKey.objects.filter(pk=key.pk).update(status=ApiKey.Status.INVALID)  # e.g. a createTask 401

    tasks.sweep()  # the sweeper's net: due now, so resumed at once later
    generation.refresh_from_db()
    assert generation.next_poll_at <= timezone.now()
    other.refresh_from_db()
    assert other.next_poll_at > timezone.now()  # another key's schedule is untouched
    assert tracking.claim_due_polls() == []
    assert generation.is_paused and generation.recheck_refusal() is not None

    ApiKey.objects.filter(pk=key.pk).update(status=ApiKey.Status.VERIFIED)
    assert tracking.claim_due_polls() == [generation.pk]


def test_a_hurry_moves_the_poll_earlier_at_most_once_a_minute(team, cast, make_key):
    generation = in_flight(team, cast, make_key(team))
    now = timezone.now()

    assert lifecycle.hurry(generation_id=generation.pk, now=now)
    generation.refresh_from_db()
    assert generation.next_poll_at == now + timedelta(seconds=polling.HURRY_DELAY)
    # The poll then puts the next one back on its cadence; more posts within the minute
    # change nothing, one after it hurries again.
    Generation.objects.filter(pk=generation.pk).update(next_poll_at=now + timedelta(seconds=90))
    assert not lifecycle.hurry(generation_id=generation.pk, now=now + timedelta(seconds=59))
    assert lifecycle.hurry(generation_id=generation.pk, now=now + timedelta(seconds=61))
    # Never later than what was due anyway, and never for a finished video.
    assert not lifecycle.hurry(generation_id=generation.pk, now=now + timedelta(seconds=200))
    done = in_flight(team, cast, second_key(team, "sk_live_other_key_02"), task_id="t3")
    Generation.objects.filter(pk=done.pk).update(status=Status.SUCCESS, next_poll_at=None)
    assert not lifecycle.hurry(generation_id=done.pk, now=now)
