"""`lifecycle.apply_status`: regressions refused, one event per change, ledger rows exactly once."""

from datetime import UTC, datetime

import pytest

from generations import lifecycle
from generations.models import CreditEntry, Generation, Status, StatusEvent
from kinovi import TaskError, TaskInfo, TaskOutput
from tests.lifecycle.conftest import history, ledger, submit


@pytest.fixture
def waiting(team, bob_membership, make_key):
    generation = submit(bob_membership, make_key(team))
    for status, task_id in [(Status.SUBMITTING, None), (Status.WAITING, "task_1")]:
        lifecycle.apply_status(
            generation_id=generation.pk, status=status, source="submit", task_id=task_id
        )
    return Generation.objects.get(pk=generation.pk)


def info(status, **extra):
    return TaskInfo(task_id="task_1", status=status, **extra)


def success(credits_used=200):
    return info(
        "success",
        credits_used=credits_used,
        outputs=[TaskOutput(url="https://cdn.example/v.mp4", width=1280, height=720, seed=7)],
        completed_at=datetime(2026, 11, 25, 1, 2, 3, tzinfo=UTC),
    )


def apply(generation, task_info, source="poll"):
    return lifecycle.apply_info(generation_id=generation.pk, info=task_info, source=source)


def test_success_stores_the_output_and_keeps_the_reserve(waiting):
    outcome = apply(waiting, success())

    generation = outcome.generation
    assert outcome.changed and outcome.from_status == Status.WAITING
    assert generation.video_url == "https://cdn.example/v.mp4"
    assert (generation.width, generation.height, generation.seed) == (1280, 720, 7)
    assert generation.completed_at == datetime(2026, 11, 25, 1, 2, 3, tzinfo=UTC)
    assert generation.confirmed_at is not None and generation.next_poll_at is None
    assert ledger(generation) == {"reserve": -200}


@pytest.mark.parametrize(("used", "capture"), [(260, -60), (150, 50)])
def test_a_different_credits_used_is_corrected_by_a_signed_capture(waiting, used, capture):
    generation = apply(waiting, success(credits_used=used)).generation

    assert ledger(generation) == {"reserve": -200, "capture": capture}
    assert -sum(ledger(generation).values()) == used == generation.charged_credits


def test_fail_refunds_the_reserve(waiting):
    generation = apply(waiting, info("fail", error=TaskError("2038", "Rules"))).generation

    assert (generation.error_code, generation.error_message) == ("2038", "Rules")
    assert ledger(generation) == {"reserve": -200, "refund": 200}
    assert sum(ledger(generation).values()) == 0


def test_nothing_leaves_a_terminal_state_and_repeats_change_nothing(waiting):
    apply(waiting, success())
    before = (history(waiting), ledger(waiting), CreditEntry.objects.count())

    for late in [success(), info("fail", error=TaskError("1", "x")), info("generating")]:
        outcome = apply(waiting, late, source="webhook")
        assert not outcome.changed and outcome.refused

    assert (history(waiting), ledger(waiting), CreditEntry.objects.count()) == before
    assert Generation.objects.get(pk=waiting.pk).status == Status.SUCCESS


def test_generating_never_goes_back_to_waiting(waiting):
    apply(waiting, info("generating"))
    outcome = apply(waiting, info("waiting"))

    assert not outcome.changed
    assert outcome.refused == "generating cannot become waiting"
    assert outcome.generation.status == Status.GENERATING
    assert outcome.generation.next_poll_at is not None  # polling goes on


def test_an_answer_about_another_task_is_refused(waiting):
    outcome = lifecycle.apply_status(
        generation_id=waiting.pk, status=Status.SUCCESS, source="poll", task_id="task_other"
    )
    assert not outcome.changed
    assert Generation.objects.get(pk=waiting.pk).status == Status.WAITING


def test_compare_and_set_only_from_the_expected_status(waiting):
    outcome = lifecycle.apply_status(
        generation_id=waiting.pk, status=Status.CANCELED, source="user", expect=Status.QUEUED
    )
    assert not outcome.changed
    assert StatusEvent.objects.filter(generation=waiting, to_status="canceled").count() == 0


def test_stalled_can_still_finish_and_each_change_is_one_event(waiting):
    lifecycle.apply_status(generation_id=waiting.pk, status=Status.STALLED, source="sweeper")
    apply(waiting, success())

    assert history(waiting) == [
        ("", "queued", "submit"),
        ("queued", "submitting", "submit"),
        ("submitting", "waiting", "submit"),
        ("waiting", "stalled", "sweeper"),
        ("stalled", "success", "poll"),
    ]


def test_unknown_keeps_the_reserve_and_is_resolved_by_a_confirmed_task(
    team, bob_membership, make_key
):
    generation = submit(bob_membership, make_key(team))
    lifecycle.apply_status(generation_id=generation.pk, status=Status.SUBMITTING, source="submit")
    lifecycle.apply_status(generation_id=generation.pk, status=Status.UNKNOWN, source="submit")
    assert ledger(generation) == {"reserve": -200}

    outcome = lifecycle.apply_info(
        generation_id=generation.pk,
        info=info("fail", error=TaskError("500", "boom")),
        source="webhook",
        task_id="task_1",
    )

    assert outcome.changed and outcome.generation.task_id == "task_1"
    assert ledger(generation) == {"reserve": -200, "refund": 200}


def test_rejected_and_canceled_touch_no_ledger(team, bob_membership, make_key):
    key = make_key(team)
    rejected, canceled = submit(bob_membership, key), submit(bob_membership, key)
    lifecycle.apply_status(generation_id=rejected.pk, status=Status.SUBMITTING, source="submit")
    lifecycle.apply_status(generation_id=rejected.pk, status=Status.REJECTED, source="submit")
    lifecycle.apply_status(generation_id=canceled.pk, status=Status.CANCELED, source="user")

    assert CreditEntry.objects.count() == 0
    # A queued generation cannot jump to waiting without being submitted.
    third = submit(bob_membership, key)
    assert not lifecycle.apply_status(
        generation_id=third.pk, status=Status.WAITING, source="poll"
    ).changed
