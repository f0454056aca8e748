"""Materials in a real Chromium: drop an image on the new-video form, see its thumbnail, the
signed link in the request and the price per tier, generate, watch it finish, then continue
the shot from its last frame."""

import base64
import re

import pytest
from django.urls import reverse

from accounts.models import Membership, Role, Workspace
from accounts.services import create_user
from generations.models import Generation, Status
from materials.models import Material
from tests.browser.conftest import Watch
from tests.browser.test_dashboard_flow import log_in, switch_to
from tests.conftest import PASSWORD
from tests.lifecycle.conftest import history, wait_for_status
from tests.sandbox import makemedia

pytestmark = [pytest.mark.browser, pytest.mark.cluster]

DROP = """([name, data]) => {
  const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
  const transfer = new DataTransfer();
  transfer.items.add(new File([bytes], name, { type: "image/png" }));
  const zone = document.getElementById("material-drop");
  zone.dispatchEvent(new DragEvent("dragover", { dataTransfer: transfer, bubbles: true }));
  zone.dispatchEvent(new DragEvent("drop", { dataTransfer: transfer, bubbles: true }));
}"""


def test_drop_an_image_generate_and_continue_the_shot(
    browser, live_server, sandbox_server, q_cluster, tmp_path, shoot
):
    from playwright.sync_api import expect

    site = live_server.url
    user = create_user(email="ines@example.com", password=PASSWORD, name="Ines")
    team = Workspace.objects.create(name="Storyboard")
    Membership.objects.create(user=user, workspace=team, role=Role.OWNER)
    sandbox_server.api_key(team)
    watch = Watch(site)
    page = watch.attach(browser.new_context(viewport={"width": 1280, "height": 1000}).new_page())
    page.set_default_timeout(20_000)
    log_in(page, site, "ines@example.com")
    switch_to(page, team)

    page.goto(site + reverse("generation_new"))
    image = makemedia.image(tmp_path / "harbour.png", size=(854, 480))
    page.evaluate(DROP, ["harbour.png", base64.b64encode(image.read_bytes()).decode()])
    chosen = page.locator('[data-slot="first_frame"] .chosen')
    expect(chosen).to_have_count(1)
    expect(chosen.locator("img")).to_be_visible()
    assert page.eval_on_selector(
        '[data-slot="first_frame"] .chosen img', "img => img.complete && img.naturalWidth > 0"
    )
    material = Material.objects.get()
    assert chosen.locator("input").get_attribute("value") == material.public_id.hex
    page.fill("textarea[name=prompt]", "The harbour wakes up, boats start to sway")
    expect(page.locator("#request-body")).to_contain_text(f"{site}/m/")
    page.click("label.inline-choice:has(input[value='480p'])")
    expect(page.locator("#price-credits")).to_have_text("75")  # 5 s x 15 at 480p
    expect(page.locator("#price-tier")).to_have_text("480p")
    expect(page.locator("#request-body")).to_contain_text('"outputResolution": "480p"')
    page.fill("input[name=duration]", "4")
    expect(page.locator("#price-credits")).to_have_text("60")
    shoot(page, "materials-01-new-video-with-first-frame")

    page.click("#generate")
    page.wait_for_url(re.compile(r".*/#g-[0-9a-f-]+$"))
    parent = Generation.objects.get()
    done = wait_for_status(parent, {Status.SUCCESS, Status.FAIL}, timeout=60)
    assert done.status == Status.SUCCESS, (history(done), done.error_message)
    card = page.locator(f"#g-{parent.public_id}")
    expect(card).to_have_attribute("data-status", "success", timeout=30_000)

    page.goto(site + reverse("generation_detail", args=[parent.public_id]))
    expect(page.locator("#attached-materials")).to_contain_text("First frame: harbour.png")
    page.click("#continue-shot")
    page.wait_for_url(re.compile(r".*/videos/new/\?.*first_frame=.*"))
    expect(page.locator('[data-slot="first_frame"] .chosen')).to_contain_text("last frame of")
    page.fill("textarea[name=prompt]", "The boats leave the harbour")
    expect(page.locator("#request-body")).to_contain_text(f"{site}/m/")
    shoot(page, "materials-02-continue-the-shot")
    page.click("#generate")
    page.wait_for_url(re.compile(r".*/#g-[0-9a-f-]+$"))
    child = Generation.objects.exclude(pk=parent.pk).get()
    assert child.parent_id == parent.pk and child.output_resolution == "480p"
    done = wait_for_status(child, {Status.SUCCESS, Status.FAIL}, timeout=60)
    assert done.status == Status.SUCCESS, (history(done), done.error_message)
    page.goto(site + reverse("generation_detail", args=[child.public_id]))
    expect(page.locator("#shot-chain")).to_contain_text("The harbour wakes up")
    shoot(page, "materials-03-chain")
    # Benign, as in the dashboard flow: htmx reporting a request it aborted itself (a newer
    # preview replacing an older one, a card poll cut short by navigation).
    problems = [
        e for e in watch.errors if not e.startswith(("htmx:sendAbort", "htmx:afterRequest"))
    ]
    assert problems == [], problems
    assert not watch.foreign(), watch.foreign()
