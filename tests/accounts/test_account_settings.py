"""The account settings page: display name and the "video finished" e-mail switch."""

import shutil

import pytest

from accounts.models import User
from tests.chromium import CHROMIUM, CHROMIUM_ARGS

URL = "/account/"


def test_new_users_get_the_email_by_default(make_user):
    assert make_user("nia@example.com").email_on_finish is True


def test_it_works(cast, login_as):
    bob = cast["bob"]
    client = login_as(bob)
    page = client.get(URL).content.decode()
    assert "E-mail me when a video finishes" in page
    assert 'name="email_on_finish" id="id_email_on_finish" checked' in page
    assert 'href="/account/password/"' in page

    # An unticked box is absent from the form: the e-mail is switched off.
    response = client.post(URL, {"name": "  Bob   Marsh "}, follow=True)
    assert response.redirect_chain == [(URL, 302)]
    assert "Your settings have been saved." in response.content.decode()
    bob.refresh_from_db()
    assert (bob.name, bob.email_on_finish) == ("Bob Marsh", False)
    assert 'id="id_email_on_finish" >' in response.content.decode()  # shown unticked

    client.post(URL, {"name": "Bob", "email_on_finish": "on"})
    bob.refresh_from_db()
    assert (bob.name, bob.email_on_finish) == ("Bob", True)


def test_it_changes_only_the_signed_in_user(cast, login_as):
    login_as(cast["bob"]).post(URL, {"name": "Bob"})
    assert User.objects.filter(email_on_finish=False).get() == cast["bob"]
    assert User.objects.get(pk=cast["alice"].pk).name == ""


def test_the_header_and_the_password_page_link_to_it(cast, login_as):
    client = login_as(cast["vera"])
    home = client.get("/workspaces/").content.decode()
    assert f'<a class="user-email" href="{URL}" >Account settings</a>' in home
    assert f'href="{URL}"' in client.get("/account/password/").content.decode()


@pytest.mark.parametrize("method", ["get", "post"])
def test_anonymous_goes_to_login(client, cast, method):
    response = getattr(client, method)(URL, {"name": "Intruder"} if method == "post" else {})
    assert response.status_code == 302
    assert response.url == f"/login/?next={URL}"
    assert not User.objects.filter(name="Intruder").exists()
    assert not User.objects.filter(email_on_finish=False).exists()


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("x" * 151, "That is too long: 151 characters, 150 at most."),
        ("Bob\x00", "Null characters are not allowed."),
    ],
)
def test_bad_input_is_explained_and_changes_nothing(cast, login_as, name, message):
    bob = cast["bob"]
    response = login_as(bob).post(URL, {"name": name})  # box unticked: would switch it off
    assert response.status_code == 400
    assert message in response.content.decode()
    assert "Your settings have been saved." not in response.content.decode()
    bob.refresh_from_db()
    assert (bob.name, bob.email_on_finish) == ("", True)


def test_the_service_refuses_a_name_too_long_by_itself(cast):
    # Callers other than the form (a shell, a future API) get the same clear refusal.
    from accounts import services

    with pytest.raises(services.AccountError, match="too long"):
        services.update_account_settings(user=cast["bob"], name="y" * 151, email_on_finish=False)
    cast["bob"].refresh_from_db()
    assert cast["bob"].email_on_finish is True


def test_the_page_costs_few_queries(cast, login_as, django_assert_max_num_queries):
    client = login_as(cast["alice"])
    client.get(URL)  # warm the session's workspace choice
    with django_assert_max_num_queries(8):
        assert client.get(URL).status_code == 200


# In a real Chromium: the switch is a styled label around a hidden checkbox; clicking it must
# still toggle the box, and the page must work under the strict CSP (no inline script/style).


@pytest.mark.browser
def test_switching_it_off_in_a_browser(live_server, cast, client, monkeypatch):
    if not shutil.which(CHROMIUM):
        pytest.skip("Debian's chromium is not installed")
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    client.force_login(cast["bob"], backend="django.contrib.auth.backends.ModelBackend")
    session = client.cookies["sessionid"].value
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = chromium.new_context()
            context.add_cookies([{"name": "sessionid", "value": session, "url": live_server.url}])
            page = context.new_page()
            violations = []
            page.on(
                "console",
                lambda m: (
                    violations.append(m.text) if "Content Security Policy" in m.text else None
                ),
            )
            page.goto(f"{live_server.url}/workspaces/")
            # Account settings live in the user menu of the header.
            page.click("#user-menu > summary")
            page.click("#user-menu >> text=Account settings")
            page.wait_for_url(f"{live_server.url}{URL}")
            box = page.locator("#id_email_on_finish")
            assert box.is_checked()
            page.click("label.switch")
            assert not box.is_checked()
            page.fill("#id_name", "Bob Marsh")
            page.click("text=Save settings")
            page.wait_for_selector("text=Your settings have been saved.")
            assert not page.locator("#id_email_on_finish").is_checked()
            assert violations == []
        finally:
            chromium.close()
    bob = User.objects.get(pk=cast["bob"].pk)
    assert (bob.name, bob.email_on_finish) == ("Bob Marsh", False)
