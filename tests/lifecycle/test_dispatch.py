"""The dispatcher: never more in flight per key than its limit, and fair between members."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from accounts.models import Membership
from generations import services, slots, tasks
from generations.models import Generation, Status
from tests.lifecycle.conftest import submit


@pytest.fixture
def shared_key(team, make_key):
    key = make_key(team)
    key.concurrency_limit = 2
    key.save()
    return key


def batch_of(membership, key, count):
    """`count` queued videos of one member, oldest first, in batches as large as allowed."""
    made = []
    for start in range(0, count, services.MAX_BATCH):
        made += services.submit_batch(
            membership=membership,
            api_key=key,
            prompts=[f"Shot {i}" for i in range(start, min(count, start + services.MAX_BATCH))],
            model="seedance2-fast",
            duration=4,
            aspect_ratio="9:16",
            mode="keyframe",
            upscale_4k=False,
        )
    return made


def as_sent(pks, status=Status.WAITING):
    """What a successful submit job leaves behind (without calling Kinovi here)."""
    for pk in pks:
        Generation.objects.filter(pk=pk).update(status=status, task_id=f"task_{pk}")


def test_a_batch_of_fifty_does_not_starve_a_teammates_single_video(
    team, cast, shared_key, bob_membership
):
    alice = Membership.objects.get(user=cast["alice"], workspace=team)
    batch = batch_of(alice, shared_key, 50)

    first = slots.dispatch()
    assert first == [batch[0].pk, batch[1].pk]  # two slots: Alice's oldest two
    as_sent(first)
    bobs = submit(bob_membership, shared_key)
    assert slots.dispatch() == []  # no slot is free

    as_sent([batch[0].pk], Status.SUCCESS)  # a slot frees up
    assert slots.dispatch() == [bobs.pk]  # Bob's single video goes before Alice's third
    as_sent([bobs.pk])

    as_sent([batch[1].pk], Status.FAIL)
    assert slots.dispatch() == [batch[2].pk]  # then Alice's batch carries on, in order


def test_the_submit_job_waits_for_its_turn_and_a_slot(team, cast, shared_key, bob_membership):
    alice = Membership.objects.get(user=cast["alice"], workspace=team)
    batch = batch_of(alice, shared_key, 5)
    as_sent([batch[0].pk, batch[1].pk])

    # No slot: the job leaves it queued and calls nobody (there is no server to call here).
    assert tasks.submit_generation(batch[2].pk) == "waiting for a slot"
    as_sent([batch[0].pk], Status.SUCCESS)
    bobs = submit(bob_membership, shared_key)
    # A slot, but it is Bob's turn: Alice's third waits.
    assert tasks.submit_generation(batch[2].pk) == "waiting for a slot"
    assert Generation.objects.get(pk=batch[2].pk).status == Status.QUEUED
    assert slots.fair_order(shared_key.pk)[0] == bobs.pk


def test_without_a_known_limit_a_tick_starts_a_bounded_number(team, make_key, bob_membership):
    key = make_key(team)
    batch_of(bob_membership, key, 15)
    assert len(slots.dispatch()) == slots.UNKNOWN_LIMIT_BATCH
    # The claimed ones are not due again until their lease runs out.
    assert len(slots.dispatch()) == 15 - slots.UNKNOWN_LIMIT_BATCH


def test_an_unknown_outcome_holds_a_slot_only_for_the_vendors_window(
    team, shared_key, bob_membership, settings
):
    settings.KINOVI_POLL_TIME_SCALE = 1.0
    batch = batch_of(bob_membership, shared_key, 3)
    Generation.objects.filter(pk__in=[batch[0].pk, batch[1].pk]).update(
        status=Status.UNKNOWN, submitted_at=timezone.now()
    )
    assert slots.dispatch() == []
    with time_machine.travel(timezone.now() + timedelta(minutes=11), tick=False):
        assert slots.dispatch() == [batch[2].pk]


def test_a_claimed_generation_that_lost_its_slot_is_due_again_at_once(
    team, cast, make_key, bob_membership
):
    key = make_key(team)
    key.concurrency_limit = 1
    key.save()
    alice = Membership.objects.get(user=cast["alice"], workspace=team)
    first, _ = batch_of(alice, key, 2)
    assert slots.dispatch() == [first.pk]  # claimed: not due again for the claim lease
    bobs = submit(bob_membership, key)
    as_sent([bobs.pk])  # meanwhile the only slot was taken

    assert tasks.submit_generation(first.pk) == "waiting for a slot"

    as_sent([bobs.pk], Status.SUCCESS)
    assert slots.dispatch() == [first.pk]  # at once, not after the lease
