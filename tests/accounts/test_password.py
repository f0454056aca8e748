"""Password change and reset (e-mail through the configured backend; the link works once)."""

import re

from accounts.models import User
from tests.conftest import PASSWORD

NEW_PASSWORD = "a brand new passphrase 77"


def test_it_changes_the_password(make_user, login_as):
    user = make_user("alice@example.com")
    client = login_as(user)
    assert client.get("/account/password/").status_code == 200
    response = client.post(
        "/account/password/",
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
        follow=True,
    )
    assert "Your password has been changed" in response.content.decode()
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)


def test_change_refuses_a_wrong_old_password(make_user, login_as):
    user = make_user("alice@example.com")
    response = login_as(user).post(
        "/account/password/",
        {"old_password": "nope", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 200
    assert "old password was entered incorrectly" in response.content.decode()
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_the_reset_link_works_once(client, make_user, mailoutbox):
    user = make_user("alice@example.com")
    assert "Forgot your password?" in client.get("/login/").content.decode()
    response = client.post("/password-reset/", {"email": "ALICE@example.com"})
    assert response.status_code == 302 and response.url == "/password-reset/sent/"
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["alice@example.com"]
    link = re.search(r"http://testserver(/password-reset/\S+/\S+/)", mailoutbox[0].body).group(1)

    response = client.get(link)
    assert response.status_code == 302  # Django swaps the token for a session marker
    form_url = response.url
    assert "Choose a new password" in client.get(form_url).content.decode()
    response = client.post(
        form_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}, follow=True
    )
    assert "Your password has been reset" in response.content.decode()
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)

    again = client.get(link, follow=True)
    assert "This link no longer works" in again.content.decode()
    assert (
        client.post("/login/", {"username": user.email, "password": NEW_PASSWORD}).status_code
        == 302
    )


def test_reset_refuses_a_weak_password(client, make_user, mailoutbox):
    user = make_user("alice@example.com")
    client.post("/password-reset/", {"email": "alice@example.com"})
    link = re.search(r"http://testserver(/password-reset/\S+/\S+/)", mailoutbox[0].body).group(1)
    form_url = client.get(link).url
    response = client.post(form_url, {"new_password1": "password", "new_password2": "password"})
    assert response.status_code == 200
    assert "too common" in response.content.decode()
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_reset_for_an_unknown_address_sends_nothing_and_says_the_same(client, db, mailoutbox):
    response = client.post("/password-reset/", {"email": "nobody@example.com"})
    assert response.status_code == 302 and response.url == "/password-reset/sent/"
    assert mailoutbox == []
    assert not User.objects.exists()
