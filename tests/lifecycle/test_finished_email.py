"""The "your video is done" e-mail: enqueued once by the lifecycle, sent by a django-q2 job; a
poll batch enqueues one job for all its endings, and the sweeper enqueues what never was."""

import dataclasses
import logging
import socket
from importlib import import_module

import pytest
from django.db import transaction

from generations import lifecycle, notifications, queue
from generations.models import Generation, Status
from generations.notifications import send_finished_email
from kinovi import TaskError, TaskInfo, TaskOutput
from tests.lifecycle.conftest import EMAIL_JOB, queued_email_jobs, submit, wait_for, wait_for_status


def run(job: dict):
    """Runs a decoded job the way a worker does: its function by path, its own arguments."""
    module, name = job["func"].rsplit(".", 1)
    return getattr(import_module(module), name)(*job["args"], **job["kwargs"])


@pytest.fixture
def waiting(team, bob_membership, make_key):
    generation = submit(bob_membership, make_key(team), prompt="A quiet harbour at dawn")
    for status, task_id in [(Status.SUBMITTING, None), (Status.WAITING, "task_1")]:
        lifecycle.apply_status(
            generation_id=generation.pk, status=status, source="submit", task_id=task_id
        )
    return Generation.objects.get(pk=generation.pk)


def success_info():
    return TaskInfo(
        task_id="task_1",
        status="success",
        credits_used=200,
        outputs=[TaskOutput(url="https://cdn.example/v.mp4", width=1280, height=720, seed=7)],
    )


def fail_info():
    return TaskInfo(task_id="task_1", status="fail", error=TaskError("2038", "Rules"))


def test_success_enqueues_one_job_carrying_only_the_pk(
    waiting, django_capture_on_commit_callbacks, mailoutbox
):
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.apply_info(generation_id=waiting.pk, info=success_info(), source="poll")

    (job,) = queued_email_jobs(waiting)
    assert job["args"] == ([waiting.pk],) and job["kwargs"] == {}
    assert run(job) == 1
    (mail,) = mailoutbox
    assert mail.to == ["bob@example.com"]
    assert mail.subject == "Your video is ready: A quiet harbour at dawn"


def test_fail_enqueues_one_job(waiting, django_capture_on_commit_callbacks, mailoutbox):
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.apply_info(generation_id=waiting.pk, info=fail_info(), source="webhook")

    (job,) = queued_email_jobs(waiting)
    assert run(job) == 1
    assert mailoutbox[0].subject.startswith("Your video failed")


def test_rejected_enqueues_one_job(
    team, bob_membership, make_key, django_capture_on_commit_callbacks, mailoutbox
):
    generation = submit(bob_membership, make_key(team))
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.apply_status(
            generation_id=generation.pk, status=Status.SUBMITTING, source="submit"
        )
        lifecycle.apply_status(
            generation_id=generation.pk,
            status=Status.REJECTED,
            source="submit",
            error_code="402",
            error_message="Insufficient credits",
        )

    (job,) = queued_email_jobs(generation)
    assert run(job) == 1
    assert len(mailoutbox) == 1


def test_a_duplicate_confirmation_sends_no_second_email(
    waiting, django_capture_on_commit_callbacks, mailoutbox
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        first = lifecycle.apply_info(generation_id=waiting.pk, info=success_info(), source="poll")
        # The webhook's confirmation and a late poll both see the same ending again.
        again = lifecycle.apply_info(
            generation_id=waiting.pk, info=success_info(), source="webhook"
        )
        late = lifecycle.apply_info(generation_id=waiting.pk, info=fail_info(), source="poll")

    assert first.changed and not again.changed and not late.changed
    assert len(callbacks) == 1
    jobs = queued_email_jobs(waiting)
    assert len(jobs) == 1
    for job in jobs:
        run(job)
    assert len(mailoutbox) == 1


def test_in_flight_changes_and_a_cancel_enqueue_nothing(
    team, bob_membership, make_key, django_capture_on_commit_callbacks
):
    key = make_key(team)
    moving, canceled = submit(bob_membership, key), submit(bob_membership, key)
    with django_capture_on_commit_callbacks(execute=True):
        for status, task_id in [
            (Status.SUBMITTING, None),
            (Status.WAITING, "task_1"),
            (Status.GENERATING, None),
            (Status.STALLED, None),
        ]:
            outcome = lifecycle.apply_status(
                generation_id=moving.pk, status=status, source="poll", task_id=task_id
            )
            assert outcome.changed
        outcome = lifecycle.apply_status(
            generation_id=canceled.pk, status=Status.CANCELED, source="user"
        )
        assert outcome.changed

    assert queued_email_jobs(moving, canceled) == []


def test_the_switch_off_sends_none(waiting, cast, django_capture_on_commit_callbacks, mailoutbox):
    cast["bob"].email_on_finish = False
    cast["bob"].save(update_fields=["email_on_finish"])
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.apply_info(generation_id=waiting.pk, info=success_info(), source="poll")

    # The job reads the switch when it runs, so a change made meanwhile is respected too.
    (job,) = queued_email_jobs(waiting)
    assert run(job) == 0
    assert mailoutbox == []


def test_a_transition_rolled_back_enqueues_nothing(waiting, django_capture_on_commit_callbacks):
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        lifecycle.apply_info(generation_id=waiting.pk, info=success_info(), source="poll")
        raise RuntimeError("the caller's transaction failed")

    assert Generation.objects.get(pk=waiting.pk).status == Status.WAITING
    assert queued_email_jobs(waiting) == []


def test_a_broker_that_refuses_never_breaks_the_lifecycle(
    waiting, monkeypatch, caplog, django_capture_on_commit_callbacks
):
    def refuse(*args, **kwargs):
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(queue, "async_task", refuse)
    with caplog.at_level(logging.ERROR), django_capture_on_commit_callbacks(execute=True):
        outcome = lifecycle.apply_info(generation_id=waiting.pk, info=success_info(), source="poll")

    assert outcome.changed
    assert Generation.objects.get(pk=waiting.pk).status == Status.SUCCESS
    assert any("broker unreachable" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)


def test_a_mail_server_that_refuses_is_logged_not_raised(waiting, settings, caplog):
    # A real SMTP connection to a port where nothing listens.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", port, 2
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    lifecycle.apply_info(generation_id=waiting.pk, info=success_info(), source="poll")

    with caplog.at_level(logging.WARNING, logger="generations.notifications"):
        assert send_finished_email(generation_id=waiting.pk) is False

    (record,) = [r for r in caplog.records if r.name == "generations.notifications"]
    assert str(waiting.public_id) in record.getMessage()
    assert isinstance(record.exc_info[1], ConnectionRefusedError)


@pytest.mark.cluster
def test_a_real_cluster_sends_exactly_one_email_per_ending(
    sandbox_server, start_q_cluster, settings, cast, team, bob_membership, tmp_path
):
    """Webhooks and polls both confirm each ending; the creators still get one e-mail each,
    and a creator with the switch off gets none."""
    from django_q.models import Task

    from accounts.models import Membership

    settings.KINOVI_CALLBACKS = True
    outbox = tmp_path / "outbox"
    start_q_cluster(EMAIL_URL=f"filemail:///{outbox}")
    adam = cast["adam"]
    adam.email_on_finish = False
    adam.save(update_fields=["email_on_finish"])
    key = sandbox_server.api_key(team, concurrency_limit=4)

    ok = submit(bob_membership, key, prompt="A kite over the dunes")
    failed = submit(bob_membership, key, prompt="A riot in the streets [sandbox:fail]")
    quiet = submit(Membership.objects.get(user=adam, workspace=team), key, prompt="A quiet lake")

    for generation in (ok, failed, quiet):
        wait_for_status(generation, {Status.SUCCESS, Status.FAIL}, timeout=40)

    def asked():
        # One job per poll batch or confirmation that saw endings: count generations, not jobs.
        jobs = list(Task.objects.filter(func=EMAIL_JOB).values_list("args", "result"))
        return (
            jobs
            if sorted(pk for args, _ in jobs for pk in args[0])
            == sorted([ok.pk, failed.pk, quiet.pk])
            else None
        )

    jobs = wait_for(asked, timeout=20, what="e-mail jobs for the three endings")
    wait_for(lambda: len(list(outbox.glob("*.log"))) >= 1, timeout=5, what="the outbox")

    assert Generation.objects.get(pk=failed.pk).status == Status.FAIL
    assert sum(result for _, result in jobs) == 2
    sent = set(
        Generation.objects.filter(finished_email_sent_at__isnull=False).values_list("pk", flat=True)
    )
    assert sent == {ok.pk, failed.pk}
    text = "".join(path.read_text() for path in outbox.glob("*.log"))
    assert text.count("To: bob@example.com") == 2
    assert "adam@example.com" not in text
    assert text.count("Subject: Your video is ready: A kite over the dunes") == 1
    assert text.count("Subject: Your video failed") == 1


def test_a_poll_batch_enqueues_one_job_for_all_its_endings(
    team, bob_membership, make_key, django_capture_on_commit_callbacks, mailoutbox
):
    key = make_key(team)
    generations = []
    for n in range(3):
        generation = submit(bob_membership, key, prompt=f"Harbour {n}")
        for status, task_id in [(Status.SUBMITTING, None), (Status.WAITING, f"task_{n}")]:
            lifecycle.apply_status(
                generation_id=generation.pk, status=status, source="submit", task_id=task_id
            )
        generations.append(generation)

    with notifications.one_job_for_many():
        with django_capture_on_commit_callbacks(execute=True):
            for n, generation in enumerate(generations):
                info = dataclasses.replace(success_info(), task_id=f"task_{n}")
                lifecycle.apply_info(generation_id=generation.pk, info=info, source="poll")
        assert queued_email_jobs(*generations) == []  # nothing until the batch is over

    (job,) = queued_email_jobs(*generations)
    assert job["args"] == ([g.pk for g in generations],)
    assert run(job) == 3
    assert len(mailoutbox) == 3
    assert run(job) == 0  # delivered twice by django-q2: nobody gets a second e-mail


def test_the_sweeper_enqueues_the_emails_whose_job_never_ran(
    waiting, monkeypatch, django_capture_on_commit_callbacks, mailoutbox
):
    from datetime import timedelta

    import time_machine
    from django.utils import timezone

    from generations import tasks

    def refuse(*args, **kwargs):
        raise ConnectionError("broker unreachable")

    with monkeypatch.context() as broken:
        broken.setattr(queue, "async_task", refuse)
        with django_capture_on_commit_callbacks(execute=True):
            lifecycle.apply_info(generation_id=waiting.pk, info=success_info(), source="poll")
    assert queued_email_jobs(waiting) == []

    assert tasks.sweep()["emails"] == []  # its job may still be on its way: not yet
    with time_machine.travel(timezone.now() + notifications.UNSENT_AFTER + timedelta(seconds=1)):
        assert tasks.sweep()["emails"] == [waiting.pk]
    (job,) = queued_email_jobs(waiting)
    assert run(job) == 1
    assert len(mailoutbox) == 1
    with time_machine.travel(timezone.now() + notifications.UNSENT_AFTER + timedelta(seconds=2)):
        assert tasks.sweep()["emails"] == []  # sent: never again
    with time_machine.travel(timezone.now() + notifications.UNSENT_WITHIN + timedelta(minutes=1)):
        Generation.objects.filter(pk=waiting.pk).update(finished_email_sent_at=None)
        assert tasks.sweep()["emails"] == []  # too old to be worth an e-mail now
