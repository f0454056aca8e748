"""Team and key pages in a real Chromium: invite, copy the link, accept it, add a key."""

import shutil

import pytest

from accounts.models import ApiKey, Membership, Role
from tests.chromium import CHROMIUM, CHROMIUM_ARGS
from tests.conftest import PASSWORD

from .conftest import CANARY

pytestmark = pytest.mark.browser


@pytest.fixture
def alice_session(cast, client) -> str:
    client.force_login(cast["alice"], backend="django.contrib.auth.backends.ModelBackend")
    return client.cookies["sessionid"].value


@pytest.fixture
def browser(monkeypatch):
    if not shutil.which(CHROMIUM):
        pytest.skip("Debian's chromium is not installed")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop on this thread; the assertions below read the
    # database between page actions, which Django otherwise refuses next to a running loop.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _context(browser, live_server, session=None):
    context = browser.new_context()
    if session:
        context.add_cookies([{"name": "sessionid", "value": session, "url": live_server.url}])
    return context


def test_invite_copy_and_accept(live_server, team, alice_session, browser):
    owner = _context(browser, live_server, alice_session)
    owner.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page = owner.new_page()
    page.goto(f"{live_server.url}/workspaces/{team.pk}/")
    page.fill("#id_email", "nia@example.com")
    page.select_option("#id_role", "viewer")
    page.click("text=Send invitation")
    page.wait_for_selector("#invitation-link")
    link = page.input_value("#invitation-link")
    assert link.startswith("http") and "/invitations/" in link

    page.click("button[data-copy]")
    page.wait_for_selector("button[data-copied]")
    assert page.evaluate("navigator.clipboard.readText()") == link

    # Shown once: a reload no longer has it.
    page.reload()
    assert page.locator("#invitation-link").count() == 0
    assert page.locator("text=nia@example.com").count() == 1  # listed as pending

    path = "/invitations/" + link.split("/invitations/", 1)[1]
    newcomer = _context(browser, live_server).new_page()
    newcomer.goto(live_server.url + path)
    assert newcomer.input_value("input[name=email]") == "nia@example.com"
    newcomer.fill("input[name=name]", "Nia")
    newcomer.fill("input[name=password]", PASSWORD)
    newcomer.click("text=Create account and join")
    newcomer.wait_for_url(f"{live_server.url}/workspaces/{team.pk}/")
    assert "You joined Acme Films as viewer" in newcomer.content()
    assert Membership.objects.get(user__email="nia@example.com", workspace=team).role == Role.VIEWER

    # The link is spent: a second visit explains it.
    again = _context(browser, live_server).new_page()
    again.goto(live_server.url + path)
    assert "already been used" in again.content()


def test_add_a_key_and_switch_default(live_server, team, alice_session, browser, kinovi):
    page = _context(browser, live_server, alice_session).new_page()
    page.goto(f"{live_server.url}/keys/")
    assert "No API key yet" in page.content()
    page.fill("input[name=label]", "Production")
    page.fill("input[name=secret]", CANARY)
    page.click("text=Check and save")
    page.wait_for_selector("text=added and verified")
    html = page.content()
    assert "••••7890" in html and CANARY not in html
    assert page.input_value("input[name=secret]") == ""
    assert ApiKey.objects.get(label="Production").is_default
