"""django-q2 keeps success rows unpruned (its per-job pruning serializes workers); the sweeper
prunes old ones in bounded batches instead (measured by bench/job_results.py)."""

import uuid
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from django_q.models import Failure, Success, Task

from generations import tasks, ticker


def _job(*, age: timedelta, success: bool = True) -> str:
    moment = timezone.now() - age
    pk = uuid.uuid4().hex
    Task.objects.create(
        id=pk,
        name=pk,
        func="generations.tasks.poll_generation",
        started=moment,
        stopped=moment,
        success=success,
        result="done" if success else "boom",
        attempt_count=1,
    )
    return pk


def test_django_q_does_not_prune_per_job():
    assert settings.Q_CLUSTER["save_limit"] == 0


def test_the_sweeper_prunes_old_successes_only(db, monkeypatch):
    old = [_job(age=timedelta(days=2)) for _ in range(3)]
    recent = _job(age=timedelta(hours=1))
    old_failure = _job(age=timedelta(days=2), success=False)
    monkeypatch.setattr(ticker, "PRUNE_BATCH", 2)

    assert ticker.prune_job_results() == 2  # one bounded batch, oldest first
    tasks.sweep()  # the sweeper takes the next batch

    assert not Success.objects.filter(pk__in=old).exists()
    assert Success.objects.filter(pk=recent).exists()
    assert Failure.objects.filter(pk=old_failure).exists()
    assert ticker.prune_job_results() == 0
