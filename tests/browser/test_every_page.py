"""Every main page in Chromium at 390x844 and 1366x900: nothing wider than the screen, a
compact phone header, no serious or critical axe-core violation, every control reachable by
Tab with a visible focus ring; and the dark scheme really changes the colours."""

from pprint import pformat

import pytest

from tests.browser.pages import AXE, PHONE, SIZES, build_world, check_page, pages, session_cookie

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_every_page_fits_and_is_accessible(browser, live_server, client, size, scheme):
    world = build_world()
    axe_source = AXE.read_text()
    visitor = browser.new_context(viewport=SIZES[size], color_scheme=scheme)
    member = browser.new_context(viewport=SIZES[size], color_scheme=scheme)
    member.add_cookies([session_cookie(client, world, live_server.url)])
    problems = {}
    for name, (path, signed_in) in pages(world).items():
        page = (member if signed_in else visitor).new_page()
        response = page.goto(live_server.url + path)
        assert response.status == 200, (name, response.status)
        found = check_page(page, phone=size == "phone", axe_source=axe_source)
        if found:
            problems[name] = found
        page.close()
    assert problems == {}, pformat(problems, width=200)


def _colours(page):
    return page.evaluate(
        "() => [getComputedStyle(document.documentElement).backgroundColor,"
        " getComputedStyle(document.querySelector('main')).color]"
    )


def test_the_dark_scheme_changes_the_colours(browser, live_server, client):
    world = build_world()
    seen = {}
    for scheme in ("light", "dark"):
        context = browser.new_context(viewport=PHONE, color_scheme=scheme)
        context.add_cookies([session_cookie(client, world, live_server.url)])
        page = context.new_page()
        page.goto(live_server.url + "/keys/")
        seen[scheme] = _colours(page)
        context.close()
    assert seen["light"] != seen["dark"]
    assert seen["light"][0] == "rgb(246, 247, 251)"

    # A choice in account settings wins over the system's: light on a dark system.
    world.owner.theme = "light"
    world.owner.save()
    context = browser.new_context(viewport=PHONE, color_scheme="dark")
    context.add_cookies([session_cookie(client, world, live_server.url)])
    page = context.new_page()
    page.goto(live_server.url + "/keys/")
    assert _colours(page) == seen["light"]
    # And dark on a light system, chosen through the form.
    page.goto(live_server.url + "/account/")
    page.check("input[name=theme][value=dark]")
    page.click("text=Save settings")
    page.wait_for_selector("text=Your settings have been saved.")
    context.close()
    context = browser.new_context(viewport=PHONE, color_scheme="light")
    context.add_cookies([session_cookie(client, world, live_server.url)])
    page = context.new_page()
    page.goto(live_server.url + "/keys/")
    assert _colours(page) == seen["dark"]
