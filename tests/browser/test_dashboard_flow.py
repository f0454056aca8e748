"""The dashboard in a real Chromium: sign up, sandbox key, create, watch, play, retry, remix,
batch under a concurrency limit, a team member's gallery and a viewer who cannot generate."""

import re
import time

import pytest
from django.urls import reverse

from accounts.models import ApiKey, Membership, Role, User, Workspace
from accounts.services import create_user
from generations.models import Generation
from tests.browser.conftest import Watch
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.cluster]

# A sandbox task waits WAIT s, then generates GENERATE s; polls are scaled so that a 4 s video
# (expected ~81 s for real) is asked about at ~2.0, 3.4, 4.7, 6.1, 6.5, ... s: each phase is
# seen by the poller, and the cards (refreshing every second here) see each phase too.
WAIT, GENERATE, POLL_SCALE = 3.0, 3.5, 0.1
PROMPT = "A paper lantern drifting over a night river, slow camera pan right, warm light"

# Records every status each card shows, as htmx swaps the cards in place.
OBSERVE_CARDS = """() => {
  window.__seen = {};
  window.__loadedOnce = true;
  const record = () => document.querySelectorAll("article.vcard").forEach((card) => {
    const list = (window.__seen[card.id] ||= []);
    if (list[list.length - 1] !== card.dataset.status) list.push(card.dataset.status);
  });
  record();
  new MutationObserver(record).observe(document.body,
    {subtree: true, childList: true, attributes: true, attributeFilter: ["data-status"]});
}"""


def in_order(seen: list[str], wanted: list[str]) -> bool:
    position = 0
    for status in seen:
        if position < len(wanted) and status == wanted[position]:
            position += 1
    return position == len(wanted)


def statuses_on_page(page) -> dict[str, str]:
    return dict(
        page.eval_on_selector_all("article.vcard", "els => els.map(e => [e.id, e.dataset.status])")
    )


def sign_up(page, url, email, name):
    page.goto(url + reverse("signup"))
    page.fill("input[name=email]", email)
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(url + reverse("home"))


def log_in(page, url, email):
    page.goto(url + reverse("login"))
    page.fill("input[name=username]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(url + reverse("home"))


def switch_to(page, workspace):
    page.click("#workspace-menu > summary")  # the switcher lives in the header's workspace menu
    with page.expect_navigation():  # the header switcher submits itself on change (app.js)
        page.select_option("#workspace-switcher", value=str(workspace.pk))
    expect_text = page.locator("#workspace-switcher option:checked").text_content()
    assert workspace.name in expect_text


def test_the_dashboard_end_to_end(
    browser, live_server, sandbox_server, start_q_cluster, settings, shoot
):
    from playwright.sync_api import expect

    settings.KINOVI_SANDBOX_WAIT_SECONDS = WAIT
    settings.KINOVI_SANDBOX_GENERATE_SECONDS = GENERATE
    settings.KINOVI_POLL_TIME_SCALE = POLL_SCALE
    settings.DASHBOARD_CARD_REFRESH_SECONDS = 1
    site = live_server.url
    watch = Watch(site)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = watch.attach(context.new_page())
    page.set_default_timeout(20_000)

    # --- sign up: the empty gallery says what to do first ------------------------------------
    page.goto(site + reverse("signup"))
    shoot(page, "01-signup")
    sign_up(page, site, "maya@example.com", "Maya")
    expect(page.locator(".empty")).to_contain_text("Start with a key")
    shoot(page, "02-gallery-empty")
    page.click("button:has-text('Use the sandbox')")
    page.wait_for_url(site + reverse("keys"))
    expect(page.locator("body")).to_contain_text("Sandbox")
    shoot(page, "03-keys-with-sandbox")
    maya = User.objects.get(email="maya@example.com")
    key = ApiKey.objects.get(workspace__memberships__user=maya)
    assert key.secret.startswith("sk_sandbox_") and key.secret not in page.content()

    # --- new video: live count, price and request body from the server ---------------------
    response = page.goto(site + reverse("generation_new"))
    # The pages below are checked under the real content security policy (no inline script).
    assert "script-src 'self'" in response.headers["content-security-policy"]
    expect(page.locator("#price-credits")).to_have_text("200")
    page.fill("textarea[name=prompt]", PROMPT)
    expect(page.locator("#prompt-count [data-count]")).to_have_text(str(len(PROMPT)))
    expect(page.locator("#request-body")).to_contain_text(PROMPT)
    page.fill("input[name=duration]", "20")
    expect(page.locator("#errors-duration")).to_contain_text("at most 15 seconds")
    page.fill("input[name=duration]", "4")
    expect(page.locator("#errors-duration")).to_be_empty()
    page.click("label.frame-choice:has(input[value='9:16'])")
    expect(page.locator("#request-body")).to_contain_text('"aspectRatio": "9:16"')
    expect(page.locator("#request-body")).to_contain_text('"duration": "4"')
    expect(page.locator("#price-credits")).to_have_text("160")
    page.click("label.switch")  # 4K: 4 s × (40 + 28)
    expect(page.locator("#price-credits")).to_have_text("272")
    expect(page.locator("#price-dollars")).to_have_text("$1.36")
    expect(page.locator("#request-body")).to_contain_text('"upscaleResolution": "4k"')
    page.click("label.switch")
    expect(page.locator("#price-credits")).to_have_text("160")
    page.click("label.choice-card:has(input[value='seedance2-fast'])")
    expect(page.locator("#price-credits")).to_have_text("112")
    page.click("label.choice-card:has(input[value='seedance-20'])")
    expect(page.locator("#price-credits")).to_have_text("160")
    expect(page.locator("#price-dollars")).to_have_text("$0.80")
    shoot(page, "04-new-video")

    # --- generate: the gallery has the card at once; it updates itself ---------------------
    page.click("#generate")
    page.wait_for_url(re.compile(r".*/#g-[0-9a-f-]+$"))
    first = Generation.objects.get(creator=maya)
    card = page.locator(f"#g-{first.public_id}")
    expect(card).to_have_attribute("data-status", "queued")
    expect(card).to_contain_text("waiting for a free slot")
    page.evaluate(OBSERVE_CARDS)
    shoot(page, "05-gallery-queued")
    start_q_cluster()
    expect(card).to_have_attribute("data-status", "generating", timeout=30_000)
    shoot(page, "06-gallery-generating")
    expect(card).to_have_attribute("data-status", "success", timeout=30_000)
    assert page.evaluate("window.__loadedOnce") is True, "the page was reloaded"
    seen = page.evaluate("window.__seen")[f"g-{first.public_id}"]
    assert in_order(seen, ["queued", "waiting", "generating", "success"]), seen

    # The video plays inline with the right duration and size.
    video = card.locator("video")
    video.evaluate(
        "v => new Promise((ok) => v.readyState >= 1 ? ok() "
        ": v.addEventListener('loadedmetadata', ok))"
    )
    duration, width, height = video.evaluate("v => [v.duration, v.videoWidth, v.videoHeight]")
    first.refresh_from_db()
    assert abs(duration - 4) < 0.35, duration
    # 9:16 at 720p, the resolution every createTask names unless chosen otherwise.
    assert (width, height) == (first.width, first.height) == (720, 1280)
    assert video.get_attribute("poster") == first.last_frame_url
    expect(card.locator("a:has-text('Download')")).to_have_attribute("href", first.video_url)
    # A finished card stops asking.
    card_url = reverse("generation_card", args=[first.public_id])
    asked = sum(card_url in url for url in watch.requests)
    time.sleep(2.5)
    assert sum(card_url in url for url in watch.requests) == asked
    shoot(page, "07-gallery-success")

    # --- detail, retry, remix ------------------------------------------------------------
    page.click(f"#g-{first.public_id} .vcard-prompt a")
    page.wait_for_url(site + reverse("generation_detail", args=[first.public_id]))
    expect(page.locator("#timeline")).to_contain_text("Generating")
    expect(page.locator("#credits")).to_contain_text("Reserve")
    shoot(page, "08-detail")
    page.click("button:has-text('Retry')")
    page.wait_for_url(re.compile(r".*/#g-[0-9a-f-]+$"))
    retried = Generation.objects.get(parent=first)
    expect(page.locator(f"#g-{retried.public_id}")).to_have_attribute(
        "data-status", "success", timeout=30_000
    )
    assert (retried.prompt, retried.duration, retried.aspect_ratio) == (PROMPT, 4, "9:16")

    page.goto(site + reverse("generation_detail", args=[first.public_id]))
    page.click("a:has-text('Remix')")
    expect(page.locator("textarea[name=prompt]")).to_have_value(PROMPT)
    expect(page.locator("input[name=aspect_ratio][value='9:16']")).to_be_checked()
    page.fill("textarea[name=prompt]", PROMPT.replace("night river", "snowy lake"))
    page.fill("input[name=duration]", "5")
    expect(page.locator("#price-credits")).to_have_text("200")
    shoot(page, "09-remix")
    page.click("#generate")
    page.wait_for_url(re.compile(r".*/#g-[0-9a-f-]+$"))
    remix = Generation.objects.exclude(pk=retried.pk).get(parent=first)
    assert "snowy lake" in remix.prompt and remix.duration == 5
    expect(page.locator(f"#g-{remix.public_id}")).to_have_attribute(
        "data-status", "success", timeout=30_000
    )

    # --- a batch of 3 under a concurrency limit of 2 -------------------------------------
    ApiKey.objects.filter(pk=key.pk).update(concurrency_limit=2)
    page.goto(site + reverse("generation_batch"))
    page.fill("textarea[name=prompts]", "A red fox in snow\nA lighthouse at dusk\nA koi pond")
    expect(page.locator("#price-credits")).to_have_text("600")
    expect(page.locator("#preview")).to_contain_text("3 videos")
    shoot(page, "10-batch")
    page.click("#generate-batch")
    page.wait_for_url(site + reverse("home"))
    batch = list(Generation.objects.filter(batch_id__isnull=False))
    assert len(batch) == 3
    ids = {f"g-{g.public_id}" for g in batch}
    most_in_flight, queued_while_full = 0, False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        shown = {k: v for k, v in statuses_on_page(page).items() if k in ids}
        busy = sum(v in {"submitting", "waiting", "generating"} for v in shown.values())
        most_in_flight = max(most_in_flight, busy)
        queued_while_full |= busy == 2 and "queued" in shown.values()
        if len(shown) == 3 and set(shown.values()) == {"success"}:
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"the batch did not finish: {shown}")
    assert most_in_flight <= 2 and queued_while_full
    spans = [
        (g.submitted_at, g.completed_at) for g in Generation.objects.filter(batch_id__isnull=False)
    ]
    for start, _ in spans:  # at no submission were more than 2 of them at Kinovi
        assert sum(s <= start < e for s, e in spans) <= 2
    shoot(page, "11-gallery-batch-done")

    # --- a failure, explained in plain words, refunded -------------------------------------
    page.goto(site + reverse("generation_new"))
    page.fill("textarea[name=prompt]", "A crowd scene that the moderation refuses [sandbox:fail]")
    expect(page.locator("#request-body")).to_contain_text("[sandbox:fail]")
    page.click("#generate")
    page.wait_for_url(re.compile(r".*/#g-[0-9a-f-]+$"))
    failed = Generation.objects.get(prompt__contains="[sandbox:fail]")
    page.locator(f"#g-{failed.public_id} .vcard-placeholder").click()
    page.wait_for_url(site + reverse("generation_detail", args=[failed.public_id]))
    # The detail page of an unfinished video refreshes itself until it ends.
    page.evaluate("window.__stayed = true")
    expect(page.locator("#detail-live")).to_have_attribute("data-status", "fail", timeout=30_000)
    assert page.evaluate("window.__stayed") is True
    expect(page.locator("#detail-live")).not_to_have_attribute("hx-trigger", re.compile(".*"))
    expect(page.locator("#timeline")).to_contain_text("Failed")
    expect(page.locator("#problem")).to_contain_text("moderation rejected the prompt")
    expect(page.locator("#credits")).to_contain_text("Refund")
    expect(page.locator("#credits tfoot")).to_contain_text("0")
    shoot(page, "12-detail-failed")

    page.goto(site + reverse("usage"))
    expect(page.locator("#total-credits")).to_contain_text("1,120 credits")  # 160×2 + 200 + 600
    expect(page.locator("svg.chart")).to_be_visible()
    assert (
        page.eval_on_selector_all(
            "svg.chart rect", "rs => rs.filter(r => r.height.baseVal.value > 0).length"
        )
        >= 1
    )
    shoot(page, "13-usage")

    # --- on a phone-sized screen nothing is wider than the screen ----------------------------
    page.set_viewport_size({"width": 390, "height": 844})
    for name, path in [
        ("16-phone-gallery", reverse("home")),
        ("17-phone-new", reverse("generation_new")),
    ]:
        page.goto(site + path)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, name
        shoot(page, name)
    page.set_viewport_size({"width": 1280, "height": 900})

    # --- a team: a member sees the team's gallery, a viewer cannot generate ------------------
    team = Workspace.objects.create(name="Film Club")
    Membership.objects.create(user=maya, workspace=team, role=Role.OWNER)
    for email, role in [("mia@example.com", Role.MEMBER), ("vic@example.com", Role.VIEWER)]:
        Membership.objects.create(
            user=create_user(email=email, password=PASSWORD), workspace=team, role=role
        )
    sandbox_server.api_key(team, created_by=maya)
    page.goto(site + reverse("home"))
    switch_to(page, team)
    page.goto(site + reverse("generation_new"))
    page.fill("textarea[name=prompt]", "The Film Club logo as a neon sign flickering on")
    page.click("#generate")
    page.wait_for_url(re.compile(r".*/#g-[0-9a-f-]+$"))
    team_video = Generation.objects.get(workspace=team)

    member_context = browser.new_context(viewport={"width": 1280, "height": 900})
    mia = watch.attach(member_context.new_page())
    mia.set_default_timeout(20_000)
    log_in(mia, site, "mia@example.com")
    switch_to(mia, team)
    team_card = mia.locator(f"#g-{team_video.public_id}")
    expect(team_card).to_contain_text("neon sign")
    expect(team_card).to_contain_text("Maya")
    expect(team_card).to_have_attribute("data-status", "success", timeout=30_000)
    expect(mia.locator("nav.mainnav")).to_contain_text("New video")
    shoot(mia, "14-member-team-gallery")

    viewer_context = browser.new_context(viewport={"width": 1280, "height": 900})
    vic = watch.attach(viewer_context.new_page())
    vic.set_default_timeout(20_000)
    log_in(vic, site, "vic@example.com")
    switch_to(vic, team)
    expect(vic.locator(f"#g-{team_video.public_id}")).to_contain_text("neon sign")
    expect(vic.locator("nav.mainnav")).not_to_contain_text("New video")
    expect(vic.locator("a:has-text('New video')")).to_have_count(0)
    vic.goto(site + reverse("generation_detail", args=[team_video.public_id]))
    expect(vic.locator("#actions")).to_have_count(0)
    response = vic.goto(site + reverse("generation_new"))
    assert response.status == 403
    expect(vic.locator("main")).to_contain_text("Viewers can look but not generate")
    shoot(vic, "15-viewer-cannot-generate")

    # --- nothing but the site was ever asked for; no script error or CSP violation -----------
    assert watch.foreign() == []
    assert any("/sandbox/" in url and url.endswith(".mp4") for url in watch.requests)
    # Benign: the viewer's expected 403, and htmx reporting a request it aborted itself
    # (a newer preview replacing an older one, or a card poll cut short by navigation).
    benign = ("htmx:sendAbort", "htmx:afterRequest")
    problems = [e for e in watch.errors if "status of 403" not in e and not e.startswith(benign)]
    assert problems == [], problems
    for browser_context in (context, member_context, viewer_context):
        browser_context.close()
