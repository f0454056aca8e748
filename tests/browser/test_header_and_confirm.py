"""In Chromium: the phone header's menu opens and closes; the dropdowns close on Escape; risky
account actions ask first in a dialog, and Cancel really changes nothing."""

import pytest

from accounts.models import ApiKey, Membership
from tests.browser.pages import DESKTOP, PHONE, build_world, session_cookie

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _page(browser, client, world, url, viewport):
    context = browser.new_context(viewport=viewport)
    context.add_cookies([session_cookie(client, world, url)])
    return context.new_page()


def test_the_phone_menu_opens_and_closes(browser, live_server, client):
    world = build_world()
    page = _page(browser, client, world, live_server.url, PHONE)
    page.goto(live_server.url + "/keys/")
    panel = page.locator("#topbar-panel")
    assert not panel.is_visible()
    closed_height = page.locator("header.topbar").bounding_box()["height"]
    assert closed_height <= 64
    page.click("#menu-button")
    assert panel.is_visible()
    assert page.get_attribute("#menu-button", "aria-expanded") == "true"
    assert page.locator("nav.mainnav >> text=Usage").is_visible()
    page.click("#user-menu > summary")
    assert page.locator("#user-menu >> text=Log out").is_visible()
    page.click("#menu-button")
    assert not panel.is_visible()


def test_the_desktop_header_is_one_row_and_menus_close_on_escape(browser, live_server, client):
    world = build_world()
    page = _page(browser, client, world, live_server.url, DESKTOP)
    page.goto(live_server.url + "/keys/")
    assert not page.locator("#menu-button").is_visible()
    assert page.locator("header.topbar").bounding_box()["height"] <= 64
    # The long team name is cut with an ellipsis; the full name is in the title.
    summary = page.locator("#workspace-menu > summary")
    assert summary.get_attribute("title") == world.team.name
    assert summary.bounding_box()["width"] < 300
    summary.click()
    assert page.locator("#workspace-menu >> text=Budget").is_visible()
    page.keyboard.press("Escape")
    assert not page.locator("#workspace-menu >> text=Budget").is_visible()
    page.click("#user-menu > summary")
    page.click("body", position={"x": 20, "y": 400})
    assert not page.locator("#user-menu >> text=Log out").is_visible()


def test_revoking_a_key_asks_first(browser, live_server, client):
    world = build_world()
    page = _page(browser, client, world, live_server.url, DESKTOP)
    page.goto(live_server.url + "/keys/")
    page.click("button:text('Revoke')")
    dialog = page.locator("#confirm-dialog")
    assert dialog.is_visible()
    assert "Production key" in dialog.inner_text()
    page.click("#confirm-dialog >> text=Cancel")
    assert not dialog.is_visible()
    assert ApiKey.objects.get(label="Production key").revoked_at is None

    page.click("button:text('Revoke')")
    with page.expect_navigation():
        page.click("#confirm-ok")
    assert "was revoked" in page.inner_text(".messages")
    assert ApiKey.objects.get(label="Production key").revoked_at is not None


def test_removing_a_member_and_leaving_ask_first(browser, live_server, client):
    world = build_world()
    page = _page(browser, client, world, live_server.url, PHONE)
    page.goto(f"{live_server.url}/workspaces/{world.team.pk}/")
    page.click("button:text('Remove')")
    assert "jonas.with.a.long.address@example.com" in page.inner_text("#confirm-dialog")
    page.keyboard.press("Escape")  # the dialog's own cancel
    assert Membership.objects.filter(workspace=world.team).count() == 2
    page.click("button:text('Leave this team')")
    assert page.locator("#confirm-ok").inner_text() == "Leave"
    page.click("#confirm-dialog >> text=Cancel")
    assert Membership.objects.filter(workspace=world.team).count() == 2
    page.click("button:text('Remove')")
    with page.expect_navigation():
        page.click("#confirm-ok")
    assert Membership.objects.filter(workspace=world.team).count() == 1


def test_hiding_a_video_asks_first(browser, live_server, client):
    world = build_world()
    page = _page(browser, client, world, live_server.url, PHONE)
    page.goto(f"{live_server.url}/videos/{world.generation.public_id}/")
    page.click("button:text('Hide from gallery')")
    assert "no longer show in the gallery" in page.inner_text("#confirm-dialog")
    page.click("#confirm-dialog >> text=Cancel")
    world.generation.refresh_from_db()
    assert world.generation.hidden is False
    page.click("button:text('Hide from gallery')")
    with page.expect_navigation():
        page.click("#confirm-ok")
    world.generation.refresh_from_db()
    assert world.generation.hidden is True


def test_times_follow_the_browsers_zone_until_the_user_picks_one(browser, live_server, client):
    world = build_world()
    context = browser.new_context(viewport=DESKTOP, timezone_id="Asia/Tokyo")
    context.add_cookies([session_cookie(client, world, live_server.url)])
    page = context.new_page()
    page.goto(live_server.url + "/keys/")  # the first page reports the zone in a cookie
    page.goto(live_server.url + "/account/")
    assert page.inner_text("#current-zone") == "Asia/Tokyo"
    assert page.locator("#id_time_zone option:checked").inner_text() == "My browser's (Asia/Tokyo)"
    page.select_option("#id_time_zone", "America/Sao_Paulo")
    page.click("text=Save settings")
    page.wait_for_selector("text=Your settings have been saved.")
    assert page.inner_text("#current-zone") == "America/Sao_Paulo"


@pytest.mark.parametrize("width", [640, 768, 900, 1024])
def test_no_width_between_phone_and_desktop_overflows(browser, live_server, client, width):
    world = build_world()
    page = _page(browser, client, world, live_server.url, {"width": width, "height": 900})
    for path in ("/", "/keys/", "/videos/new/", "/usage/"):
        page.goto(live_server.url + path)
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        assert scroll_width <= width, (path, scroll_width)
        assert page.locator("header.topbar").bounding_box()["height"] <= 64, path
