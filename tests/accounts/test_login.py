"""Log in, log out, and throttling of repeated failures (django-axes)."""

from datetime import timedelta

import time_machine
from django.utils import timezone

from tests.conftest import PASSWORD


def _login(client, password, **extra):
    return client.post("/login/", {"username": "alice@example.com", "password": password}, **extra)


def test_it_logs_in_and_out(client, make_user):
    make_user("alice@example.com")
    response = _login(client, PASSWORD)
    assert response.status_code == 302
    assert client.get("/workspaces/").status_code == 200
    response = client.post("/logout/")
    assert response.status_code == 302
    assert client.get("/workspaces/").status_code == 302  # back to the login page


def test_it_explains_a_wrong_password(client, make_user):
    make_user("alice@example.com")
    response = _login(client, "wrong password")
    assert response.status_code == 200
    html = response.content.decode()
    assert "That e-mail and password do not match an account." in html
    # E-mail addresses are matched without regard to case: the message must not say otherwise.
    assert "may be case-sensitive" not in html


def _fail_five_times(client):
    for _ in range(5):
        _login(client, "wrong password")


def test_five_failures_lock_even_the_right_password(client, make_user):
    make_user("alice@example.com")
    _fail_five_times(client)
    response = _login(client, PASSWORD)
    assert response.status_code == 429
    assert "Too many failed log-ins" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_a_spoofed_forwarded_for_does_not_get_around_the_lock(client, make_user):
    make_user("alice@example.com")
    for n in range(5):
        _login(client, "wrong password", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}")
    response = _login(client, PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.7")
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_the_lock_expires_after_the_cool_off(client, make_user, settings):
    make_user("alice@example.com")
    _fail_five_times(client)
    assert _login(client, PASSWORD).status_code == 429
    cool_off = timedelta(hours=settings.AXES_COOLOFF_TIME)
    almost = timezone.now() + cool_off - timedelta(minutes=1)
    with time_machine.travel(almost, tick=False):
        assert _login(client, PASSWORD).status_code == 429
    # A try during the lock counts as a failure too, so the cool-off runs from the last one.
    with time_machine.travel(almost + cool_off + timedelta(minutes=1), tick=False):
        response = _login(client, PASSWORD)
        assert response.status_code == 302
        assert client.session["_auth_user_id"]


def test_a_quiet_lock_expires_exactly_after_the_cool_off(client, make_user, settings):
    make_user("alice@example.com")
    _fail_five_times(client)
    cool_off = timedelta(hours=settings.AXES_COOLOFF_TIME)
    with time_machine.travel(timezone.now() + cool_off + timedelta(seconds=5), tick=False):
        assert _login(client, PASSWORD).status_code == 302


def test_failures_on_another_account_do_not_lock_this_one(client, make_user):
    make_user("alice@example.com")
    for _ in range(5):
        client.post("/login/", {"username": "bob@example.com", "password": "nope"})
    assert _login(client, PASSWORD).status_code == 302
