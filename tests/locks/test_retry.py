"""Transactions rolled back by a deadlock or a serialization failure are run again (retry.py):
bounded, with jitter, logged once, never a 500 nor a lost job."""

import logging
import threading

import psycopg.errors
import pytest
from django.db import OperationalError, connection, transaction
from django.urls import reverse

from accounts.models import ApiKey, AuditEntry, Membership
from generations import budget, lifecycle, queue, retry, services, slots, submission
from generations.models import CreditEntry, Generation, Status, StatusEvent
from kinovi import TaskInfo, TaskStatus
from tests.lifecycle.conftest import ledger, submit

pytestmark = pytest.mark.django_db(transaction=True)


def deadlock() -> OperationalError:
    """What Django raises for PostgreSQL's 40P01: its OperationalError caused by psycopg's."""
    try:
        try:
            raise psycopg.errors.DeadlockDetected("deadlock detected")
        except psycopg.errors.DeadlockDetected as cause:
            raise OperationalError("deadlock detected") from cause
    except OperationalError as wrapped:
        return wrapped


@pytest.fixture
def waits(monkeypatch):
    """The backoffs retry.py would sleep, recorded instead of slept."""
    slept: list[float] = []
    monkeypatch.setattr(retry, "sleep", slept.append)
    return slept


def fail_first(monkeypatch, module, name: str, times: int = 1, error=deadlock):
    """`module.name` raises `error()` its first `times` calls, then works; returns the count."""
    original = getattr(module, name)
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] <= times:
            raise error()
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, flaky)
    return calls


# --- the helper ------------------------------------------------------------------------------


def test_it_retries_contention_only_bounded_with_growing_jitter_and_logs_once(waits, caplog):
    calls = []

    @retry.retried
    def twice_unlucky():
        calls.append(1)
        if len(calls) < 3:
            raise deadlock()
        return "done"

    with caplog.at_level(logging.WARNING, logger="generations.retry"):
        assert twice_unlucky() == "done"
    assert len(calls) == 3 and len(waits) == 2
    assert 0 <= waits[0] <= retry.BASE_DELAY and 0 <= waits[1] <= 2 * retry.BASE_DELAY
    assert [r.getMessage() for r in caplog.records] == [
        "test_it_retries_contention_only_bounded_with_growing_jitter_and_logs_once.<locals>"
        ".twice_unlucky: deadlock; succeeded on try 3"
    ]

    caplog.clear()
    always = []

    @retry.retried
    def hopeless():
        always.append(1)
        raise deadlock()

    with (
        caplog.at_level(logging.WARNING, logger="generations.retry"),
        pytest.raises(OperationalError),
    ):
        hopeless()
    assert len(always) == retry.ATTEMPTS
    assert len(caplog.records) == 1 and "gave up after 5 tries" in caplog.records[0].getMessage()

    other = []

    @retry.retried
    def broken():
        other.append(1)
        raise OperationalError("connection refused")

    with pytest.raises(OperationalError):
        broken()
    assert other == [1]  # not contention: not retried here


def test_serialization_failures_are_retried_too(waits):
    calls = []

    @retry.retried
    def once():
        calls.append(1)
        if len(calls) == 1:
            try:
                raise psycopg.errors.SerializationFailure("could not serialize access")
            except psycopg.errors.SerializationFailure as cause:
                raise OperationalError("could not serialize") from cause
        return len(calls)

    assert once() == 2


def test_inside_an_enclosing_transaction_only_its_opener_retries(waits):
    inner_calls = []

    @retry.retried
    def inner():
        inner_calls.append(1)
        raise deadlock()

    with pytest.raises(OperationalError), transaction.atomic():
        inner()
    assert inner_calls == [1]


def test_a_real_deadlock_between_two_transactions_is_retried(team, cast):
    """Two transactions lock two rows in opposite orders: PostgreSQL kills one, which runs again."""
    first, second = list(Membership.objects.filter(workspace=team).order_by("pk")[:2])
    both_hold_one = threading.Barrier(2)
    tries = {"a": 0, "b": 0}

    def locker(name, one, other):
        @retry.retried
        def run():
            tries[name] += 1
            with transaction.atomic():
                Membership.objects.select_for_update(no_key=True).get(pk=one.pk)
                if tries[name] == 1:
                    both_hold_one.wait(10)
                Membership.objects.select_for_update(no_key=True).get(pk=other.pk)
            return name

        return run

    results = {}

    def thread(name, one, other):
        try:
            results[name] = locker(name, one, other)()
        except Exception as exc:  # reported by the assertion below
            results[name] = exc
        finally:
            connection.close()

    threads = [
        threading.Thread(target=thread, args=("a", first, second)),
        threading.Thread(target=thread, args=("b", second, first)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == {"a": "a", "b": "b"}
    assert sorted(tries.values()) == [1, 2]  # the victim ran once more


# --- where it is used ------------------------------------------------------------------------


def test_a_submission_that_meets_a_deadlock_is_saved_once_with_one_job(
    monkeypatch, waits, team, bob_membership, make_key
):
    jobs = []
    monkeypatch.setattr(queue, "enqueue", lambda func, *args: jobs.append((func, *args)))
    key = make_key(team)
    calls = fail_first(monkeypatch, budget, "check")
    made = services.submit_batch(
        membership=bob_membership,
        api_key=key,
        prompts=["One", "Two"],
        model="seedance-20",
        duration=5,
        aspect_ratio="16:9",
        mode="keyframe",
        upscale_4k=False,
    )
    assert calls["n"] == 2 and len(waits) == 1
    assert Generation.objects.count() == 2 == len(made)
    assert StatusEvent.objects.count() == 2
    # The rolled-back try's on-commit jobs were dropped with it: one job per video.
    assert sorted(jobs) == sorted((queue.SUBMIT, g.pk) for g in made)


def test_a_submission_that_stays_deadlocked_is_refused_in_words_not_a_500(
    monkeypatch, waits, team, cast, bob_membership, make_key, login_as
):
    monkeypatch.setattr(queue, "enqueue", lambda *args: None)
    make_key(team)
    fail_first(monkeypatch, budget, "check", times=100)
    with pytest.raises(services.SubmissionRefused, match="very busy"):
        submit(bob_membership, ApiKey.objects.get())
    page = login_as(cast["bob"], team).post(
        reverse("generation_new"),
        {
            "prompt": "A heron lifting off a misty lake",
            "model": "seedance-20",
            "duration": 5,
            "aspect_ratio": "16:9",
            "mode": "keyframe",
            "api_key": ApiKey.objects.get().pk,
        },
    )
    assert page.status_code in {200, 400}
    assert "very busy" in page.content.decode()
    assert not Generation.objects.exists()


def test_a_claim_that_meets_a_deadlock_claims_once(
    monkeypatch, waits, team, bob_membership, make_key
):
    monkeypatch.setattr(queue, "enqueue", lambda *args: None)
    generation = submit(bob_membership, make_key(team))
    calls = fail_first(monkeypatch, slots, "has_turn")
    claimed, _ = submission._claim(generation)
    assert claimed and calls["n"] == 2
    generation.refresh_from_db()
    assert (generation.status, generation.submit_attempts) == (Status.SUBMITTING, 1)
    assert generation.events.filter(to_status=Status.SUBMITTING).count() == 1


def test_a_recorded_answer_that_meets_a_deadlock_writes_its_ledger_once(
    monkeypatch, waits, team, bob_membership, make_key
):
    """Polls and webhook confirmations record Kinovi's answer through apply_status."""
    monkeypatch.setattr(queue, "enqueue", lambda *args: None)
    generation = submit(bob_membership, make_key(team))
    submission._claim(generation)
    calls = fail_first(monkeypatch, lifecycle, "_write_ledger")
    info = TaskInfo(task_id="task-retry-1", status=TaskStatus.GENERATING)
    outcome = lifecycle.apply_info(
        generation_id=generation.pk, info=info, source=StatusEvent.Source.WEBHOOK
    )
    assert outcome.changed and calls["n"] == 2
    generation.refresh_from_db()
    assert generation.status == Status.GENERATING
    assert ledger(generation) == {CreditEntry.Kind.RESERVE: -generation.estimated_credits}
    assert generation.events.filter(to_status=Status.GENERATING).count() == 1


def test_a_budget_change_that_meets_a_deadlock_is_saved_and_audited_once(
    monkeypatch, waits, team, cast
):
    calls = fail_first(monkeypatch, budget, "log_action")
    budget.update_budget(actor=cast["alice"], workspace=team, monthly_budget_credits=5000)
    team.refresh_from_db()
    assert team.monthly_budget_credits == 5000 and calls["n"] == 2
    assert AuditEntry.objects.filter(action="budget.changed").count() == 1

    fail_first(monkeypatch, budget, "log_action", times=100)
    with pytest.raises(budget.BudgetError, match="very busy"):
        budget.update_budget(actor=cast["alice"], workspace=team, monthly_budget_credits=7000)
    team.refresh_from_db()
    assert team.monthly_budget_credits == 5000
