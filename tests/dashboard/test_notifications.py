"""The e-mail to a creator when their generation ends."""

import pytest

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
