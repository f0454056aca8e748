"""The e-mail to a creator when their generation ends."""

import logging
import smtplib
import threading

import pytest
from django.db import connections

from generations import notifications
from generations.models import Generation
from generations.notifications import send_finished_email, wants_email

pytestmark = pytest.mark.django_db


def test_success_email(mailoutbox, make_generation, cast, settings):
    g = make_generation(status="success", credits_used=200, prompt="A quiet harbour at dawn")
    assert send_finished_email(generation_id=g.pk) is True
    (mail,) = mailoutbox
    assert mail.to == ["bob@example.com"]
    assert mail.subject == "Your video is ready: A quiet harbour at dawn"
    assert f"{settings.SITE_URL}/videos/{g.public_id}/" in mail.body
    assert "charged 200 credits" in mail.body


def test_failure_email_explains(mailoutbox, make_generation):
    g = make_generation(
        status="fail", error_code="2038", error_message="Your input text violates platform rules"
    )
    assert send_finished_email(generation_id=g.pk) is True
    (mail,) = mailoutbox
    assert mail.subject.startswith("Your video failed")
    assert "moderation rejected the prompt" in mail.body
    assert "code 2038" in mail.body


@pytest.mark.parametrize("status", ["queued", "generating", "canceled", "unknown"])
def test_nothing_for_unfinished_or_canceled(mailoutbox, make_generation, status):
    g = make_generation(status=status)
    assert send_finished_email(generation_id=g.pk) is False
    assert mailoutbox == []


def test_nothing_for_a_missing_generation_or_an_inactive_creator(mailoutbox, make_generation, cast):
    g = make_generation(status="success")
    assert send_finished_email(generation_id=0) is False
    cast["bob"].is_active = False
    cast["bob"].save()
    assert send_finished_email(generation_id=g.pk) is False
    assert mailoutbox == []


def test_the_switch_is_respected(cast):
    bob = cast["bob"]
    assert wants_email(bob)
    bob.email_on_finish = False  # the accounts area's per-user switch
    assert not wants_email(bob)


def sent_at(generation):
    return Generation.objects.values_list("finished_email_sent_at", flat=True).get(pk=generation.pk)


def test_a_job_run_twice_sends_one_email(mailoutbox, make_generation):
    g = make_generation(status="success")
    assert sent_at(g) is None
    # django-q2 delivers at least once: the same job may run again.
    assert send_finished_email(generation_id=g.pk) is True
    marked = sent_at(g)
    assert marked is not None
    assert send_finished_email(generation_id=g.pk) is False
    assert len(mailoutbox) == 1
    assert sent_at(g) == marked


def test_two_overlapping_runs_send_one_email(
    transactional_db, mailoutbox, make_generation, monkeypatch
):
    """A second run starts while the first is talking to the mail server."""
    g = make_generation(status="success")
    real_send_mail = notifications.send_mail
    sending, go_on = threading.Event(), threading.Event()
    calls = []

    def slow_first_send(*args, **kwargs):
        calls.append(threading.current_thread().name)
        if len(calls) == 1:
            sending.set()
            assert go_on.wait(10)
        return real_send_mail(*args, **kwargs)

    monkeypatch.setattr(notifications, "send_mail", slow_first_send)
    results = {}

    def first_run():
        try:
            results["first"] = send_finished_email(generation_id=g.pk)
        finally:
            connections.close_all()

    worker = threading.Thread(target=first_run, name="first")
    worker.start()
    try:
        assert sending.wait(10), "the first run never reached the mail server"
        results["second"] = send_finished_email(generation_id=g.pk)
    finally:
        go_on.set()
        worker.join(10)
    assert results == {"first": True, "second": False}
    assert calls == ["first"]
    assert len(mailoutbox) == 1


def test_a_refused_send_releases_the_claim_for_a_rerun(
    mailoutbox, make_generation, monkeypatch, caplog
):
    g = make_generation(status="fail")
    real_send_mail = notifications.send_mail

    def refuse(*args, **kwargs):
        raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")

    monkeypatch.setattr(notifications, "send_mail", refuse)
    with caplog.at_level(logging.WARNING, logger="generations.notifications"):
        assert send_finished_email(generation_id=g.pk) is False
    assert sent_at(g) is None
    (record,) = [r for r in caplog.records if r.name == "generations.notifications"]
    assert str(g.public_id) in record.getMessage()
    assert "bob@example.com" not in caplog.text

    # An operator runs the job again once the mail server is back: it sends, once.
    monkeypatch.setattr(notifications, "send_mail", real_send_mail)
    assert send_finished_email(generation_id=g.pk) is True
    assert send_finished_email(generation_id=g.pk) is False
    assert len(mailoutbox) == 1 and mailoutbox[0].to == ["bob@example.com"]


def test_the_switch_off_sends_nothing_and_claims_nothing(mailoutbox, make_generation, cast):
    g = make_generation(status="success")
    bob = cast["bob"]
    bob.email_on_finish = False
    bob.save(update_fields=["email_on_finish"])
    assert send_finished_email(generation_id=g.pk) is False
    assert mailoutbox == [] and sent_at(g) is None
    # Switched back on before the job runs again: the e-mail goes, once.
    bob.email_on_finish = True
    bob.save(update_fields=["email_on_finish"])
    assert send_finished_email(generation_id=g.pk) is True
    assert send_finished_email(generation_id=g.pk) is False
    assert len(mailoutbox) == 1
