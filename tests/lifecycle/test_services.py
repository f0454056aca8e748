"""The services the pages call: refusals with clear messages that change nothing, budgets."""

from datetime import UTC, datetime

import pytest
import time_machine

from accounts.models import ApiKey, Membership, Workspace
from generations import budget, lifecycle, queue, services, vendor
from generations.models import Generation, Status, StatusEvent
from kinovi import TaskError, TaskInfo
from tests.lifecycle.conftest import submit

PARAMS = {
    "model": "seedance-20",
    "duration": 5,
    "aspect_ratio": "16:9",
    "mode": "keyframe",
    "upscale_4k": False,
}


def member(cast, team, name) -> Membership:
    return Membership.objects.get(user=cast[name], workspace=team)


@pytest.fixture
def key(team, make_key):
    return make_key(team)


def test_it_queues_with_estimate_event_and_a_submit_job(
    bob_membership, key, django_capture_on_commit_callbacks, monkeypatch
):

    enqueued = []
    monkeypatch.setattr(queue, "enqueue", lambda func, *args: enqueued.append((func, args)))
    with django_capture_on_commit_callbacks(execute=True):
        generation = submit(bob_membership, key, upscale_4k=True)

    assert generation.status == Status.QUEUED
    assert generation.estimated_credits == 5 * (40 + 28)
    assert generation.creator_id == bob_membership.user_id
    event = StatusEvent.objects.get(generation=generation)
    assert (event.from_status, event.to_status, event.source) == ("", "queued", "submit")
    assert enqueued == [("generations.tasks.submit_generation", (generation.pk,))]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"prompt": "   "}, "The prompt is empty"),
        ({"prompt": "x" * 4001}, "4001 characters; Kinovi accepts at most 4000"),
        ({"duration": 3}, "between 4 and 15 seconds"),
        ({"duration": 16}, "between 4 and 15 seconds"),
        ({"duration": "five"}, "whole number of seconds"),
        ({"aspect_ratio": "2:1"}, "Choose an aspect ratio"),
        ({"model": "seedance-30"}, "Choose a model"),
        ({"mode": "video"}, "Choose a mode"),
        ({"upscale_4k": "yes"}, "4K upscale choice"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(bob_membership, key, change, message):
    params = {**PARAMS, "prompt": "A cat", **change}
    with pytest.raises(services.SubmissionRefused, match=message):
        services.submit(membership=bob_membership, api_key=key, **params)
    assert Generation.objects.count() == 0


def test_viewers_cannot_generate(cast, team, key):
    with pytest.raises(services.SubmissionRefused, match="Viewers can look but not generate"):
        submit(member(cast, team, "vera"), key)
    assert Generation.objects.count() == 0


def test_keys_of_other_workspaces_and_revoked_keys_are_refused(
    cast, team, bob_membership, key, make_key
):
    elsewhere = make_key(Workspace.objects.get(memberships__user=cast["charlie"]))
    with pytest.raises(services.SubmissionRefused, match="belongs to another workspace"):
        submit(bob_membership, elsewhere)
    key.revoked_at = datetime(2026, 11, 1, tzinfo=UTC)
    key.save()
    with pytest.raises(services.SubmissionRefused, match="was revoked"):
        submit(bob_membership, key)
    assert Generation.objects.count() == 0


def test_over_budget_is_refused_and_nothing_is_saved(team, bob_membership, key):
    team.monthly_budget_credits = 500
    team.save()
    submit(bob_membership, key)
    submit(bob_membership, key)

    with pytest.raises(services.SubmissionRefused) as refused:
        submit(bob_membership, key)

    assert "costs 200 credits but only 100 of the workspace's 500-credit" in refused.value.message
    assert Generation.objects.count() == 2
    team.monthly_budget_credits = 600
    team.save()
    submit(bob_membership, key)  # exactly up to the budget is fine
    assert Generation.objects.count() == 3


def test_a_batch_is_all_or_nothing(team, bob_membership, key):
    bob_membership.monthly_cap_credits = 1000
    bob_membership.save()
    with pytest.raises(services.SubmissionRefused, match="your 1000-credit monthly cap"):
        services.submit_batch(membership=bob_membership, api_key=key, prompts=["a"] * 6, **PARAMS)
    assert Generation.objects.count() == 0
    made = services.submit_batch(
        membership=bob_membership, api_key=key, prompts=["a", "b", "c", "d", "e"], **PARAMS
    )
    assert len({g.batch_id for g in made}) == 1 and made[0].batch_id is not None
    with pytest.raises(services.SubmissionRefused, match="Prompt 2 is empty"):
        services.submit_batch(membership=bob_membership, api_key=key, prompts=["a", ""], **PARAMS)


def _through(generation, *steps):
    for status, extra in steps:
        lifecycle.apply_status(generation_id=generation.pk, status=status, source="poll", **extra)


def test_spent_this_month_counts_holds_reserves_captures_and_refunds(
    cast, team, bob_membership, key
):
    alice = member(cast, team, "alice")
    with time_machine.travel(datetime(2026, 10, 31, 23, 0, tzinfo=UTC), tick=False):
        last_month = submit(bob_membership, key)
    with time_machine.travel(datetime(2026, 11, 10, 12, 0, tzinfo=UTC), tick=False):
        queued = submit(bob_membership, key)  # held: 200
        in_flight = submit(bob_membership, key)  # reserved: 200
        succeeded = submit(alice, key, duration=10)  # reserved 400, Kinovi charged 420
        failed = submit(bob_membership, key)  # reserved and refunded: 0
        canceled = submit(bob_membership, key)  # never sent: 0
        sent = (Status.SUBMITTING, {})
        _through(last_month, sent, (Status.WAITING, {"task_id": "t0"}))
        _through(in_flight, sent, (Status.WAITING, {"task_id": "t1"}))
        _through(succeeded, sent, (Status.WAITING, {"task_id": "t2"}))
        lifecycle.apply_info(
            generation_id=succeeded.pk,
            info=TaskInfo(task_id="t2", status="success", credits_used=420),
            source="poll",
        )
        _through(failed, sent, (Status.WAITING, {"task_id": "t3"}))
        lifecycle.apply_info(
            generation_id=failed.pk,
            info=TaskInfo(task_id="t3", status="fail", error=TaskError("1", "no")),
            source="poll",
        )
        _through(canceled, (Status.CANCELED, {}))

        assert budget.spent(workspace=team) == 200 + 200 + 420
        assert budget.spent(workspace=team, user=cast["bob"]) == 400
        team.monthly_budget_credits = 1000
        bob_membership.monthly_cap_credits = 500
        status = budget.status(workspace=team, membership=bob_membership)
    assert queued.status == Status.QUEUED
    assert status == {
        "budget": 1000,
        "used": 820,
        "remaining": 180,
        "percent": 82,
        "member_cap": 500,
        "member_used": 400,
        "member_remaining": 100,
        "member_percent": 80,
        "available": 100,
    }


def test_budget_status_without_limits(team, bob_membership):
    status = budget.status(workspace=team, membership=bob_membership)
    assert status["budget"] is None and status["available"] is None and status["used"] == 0


def test_cancel_only_while_queued_and_only_by_its_creator_or_a_manager(
    cast, team, bob_membership, key
):
    generation = submit(bob_membership, key)
    adam = member(cast, team, "adam")
    alice_own = submit(member(cast, team, "alice"), key)

    with pytest.raises(services.ActionRefused, match="Only its creator"):
        services.cancel(generation=alice_own, membership=bob_membership)
    with pytest.raises(services.ActionRefused, match="Viewers"):
        services.cancel(generation=generation, membership=member(cast, team, "vera"))

    services.cancel(generation=generation, membership=adam)
    generation.refresh_from_db()
    assert generation.status == Status.CANCELED
    assert generation.events.last().source == "user"
    with pytest.raises(services.ActionRefused, match="already canceled"):
        services.cancel(generation=generation, membership=bob_membership)

    _through(alice_own, (Status.SUBMITTING, {}))
    with pytest.raises(services.ActionRefused, match="already sent to Kinovi"):
        services.cancel(generation=alice_own, membership=adam)


def test_recheck_explains_what_it_cannot_do(bob_membership, key, monkeypatch):

    enqueued = []
    monkeypatch.setattr(queue, "enqueue", lambda func, *args: enqueued.append((func, args)))
    generation = submit(bob_membership, key)
    with pytest.raises(services.ActionRefused, match="not been sent to Kinovi yet"):
        services.recheck(generation=generation, source="user")
    _through(generation, (Status.SUBMITTING, {}), (Status.UNKNOWN, {}))
    with pytest.raises(services.ActionRefused, match="Only a callback from Kinovi or an operator"):
        services.recheck(generation=Generation.objects.get(pk=generation.pk), source="operator")

    other = submit(bob_membership, key)
    _through(other, (Status.SUBMITTING, {}), (Status.WAITING, {"task_id": "t9"}))
    _through(other, (Status.STALLED, {}))
    with pytest.raises(ValueError):
        services.recheck(generation=other, source="anyone")
    services.recheck(generation=Generation.objects.get(pk=other.pk), source="operator")
    # The poll job is enqueued once the transaction commits (immediately here, outside one).
    assert Generation.objects.get(pk=other.pk).next_poll_at is not None


def test_retry_and_hide(cast, team, bob_membership, key):
    generation = submit(bob_membership, key, duration=8)
    with pytest.raises(services.ActionRefused, match="still on its way"):
        services.retry(generation=generation, membership=bob_membership)
    _through(generation, (Status.SUBMITTING, {}), (Status.REJECTED, {}))
    generation.refresh_from_db()

    child = services.retry(generation=generation, membership=member(cast, team, "alice"))

    assert child.parent_id == generation.pk and child.duration == 8
    assert child.prompt == generation.prompt and child.status == Status.QUEUED
    services.hide(generation=generation, membership=bob_membership)
    assert Generation.objects.get(pk=generation.pk).hidden


def test_retry_falls_back_to_the_default_key_when_its_key_died(team, bob_membership, key, make_key):
    generation = submit(bob_membership, key)
    _through(generation, (Status.CANCELED, {}))
    ApiKey.objects.filter(pk=key.pk).update(status=ApiKey.Status.INVALID, is_default=False)
    fresh = make_key(team, secret="sk_live_fresh_key_9999")

    child = services.retry(
        generation=Generation.objects.get(pk=generation.pk), membership=bob_membership
    )

    assert child.api_key_id == fresh.pk


def test_callback_url_only_when_kinovi_can_reach_us(settings, bob_membership, key):
    generation = submit(bob_membership, key)
    settings.KINOVI_CALLBACKS = False
    assert vendor.callback_url_for(generation, "tok") is None
    settings.KINOVI_CALLBACKS = True
    settings.SITE_URL = "https://studio.example.com"
    assert vendor.callback_url_for(generation, "tok") == (
        f"https://studio.example.com/hooks/kinovi/{generation.public_id}/tok/"
    )
