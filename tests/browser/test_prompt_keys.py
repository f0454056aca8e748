"""In Chromium: Ctrl+Enter sends the prompt's form, except while the budget would refuse it, and
the prompt counter counts what the server counts (characters, not UTF-16 units)."""

import pytest

from accounts.models import Workspace
from generations.models import Generation
from tests.browser.pages import DESKTOP, build_world, session_cookie

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _new_video_page(browser, client, world, live_server):
    context = browser.new_context(viewport=DESKTOP)
    context.add_cookies([session_cookie(client, world, live_server.url)])
    page = context.new_page()
    page.goto(live_server.url + "/videos/new/")
    return page


def test_ctrl_enter_generates_and_the_counter_counts_characters(browser, live_server, client):
    world = build_world()
    page = _new_video_page(browser, client, world, live_server)
    prompt = page.locator("textarea[name=prompt]")
    prompt.fill("  Un renard 🦊 dans la neige  ")
    # 🦊 is two UTF-16 units but one character; surrounding spaces are not counted either.
    assert page.locator("#prompt-count [data-count]").text_content() == "25"
    before = Generation.objects.count()
    prompt.press("Control+Enter")
    page.wait_for_url(lambda url: "/videos/new/" not in url, timeout=10_000)
    assert Generation.objects.count() == before + 1
    assert Generation.objects.latest("created_at").prompt == "Un renard 🦊 dans la neige"


def test_ctrl_enter_does_nothing_while_the_budget_would_refuse(browser, live_server, client):
    world = build_world()
    Workspace.objects.filter(pk=world.team.pk).update(monthly_budget_credits=100)
    page = _new_video_page(browser, client, world, live_server)
    page.locator("textarea[name=prompt]").fill("A heron lifting off a misty lake")
    page.wait_for_selector("#generate[disabled]", timeout=10_000)
    before = Generation.objects.count()
    page.locator("textarea[name=prompt]").press("Control+Enter")
    page.wait_for_timeout(500)
    assert Generation.objects.count() == before
    assert "/videos/new/" in page.url
