"""`make screenshots`: every main page at both sizes and in both schemes, saved under
docs/screenshots/ as <page>-<size>-<scheme>.png. Skipped in the normal test run."""

import os
from pathlib import Path

import pytest

from tests.browser.pages import SIZES, build_world, pages, session_cookie

OUT = Path(__file__).resolve().parents[2] / "docs" / "screenshots"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.screenshots,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.environ.get("SCREENSHOTS"), reason="make screenshots only"),
]


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_save_screenshots(browser, live_server, client, size, scheme):
    OUT.mkdir(parents=True, exist_ok=True)
    world = build_world()
    visitor = browser.new_context(viewport=SIZES[size], color_scheme=scheme)
    member = browser.new_context(viewport=SIZES[size], color_scheme=scheme)
    member.add_cookies([session_cookie(client, world, live_server.url)])
    saved = []
    for name, (path, signed_in) in pages(world).items():
        page = (member if signed_in else visitor).new_page()
        page.goto(live_server.url + path)
        # What a person sees on opening the page: the screen, not the whole scroll.
        target = OUT / f"{name}-{size}-{scheme}.png"
        page.screenshot(path=str(target))
        saved.append(target)
        page.close()
    if size == "phone" and scheme == "light":
        page = member.new_page()
        page.goto(live_server.url + pages(world)["keys"][0])
        page.click("#menu-button")
        page.click("#workspace-menu > summary")
        target = OUT / "menu-phone-light.png"
        page.screenshot(path=str(target))
        saved.append(target)
    assert all(path.stat().st_size > 5_000 for path in saved)
