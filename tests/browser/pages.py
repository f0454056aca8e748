"""The main pages of the studio, a small world that fills them, and the checks every page must
pass in Chromium (overflow, header height, axe-core, keyboard focus). Shared by
test_every_page.py and the `make screenshots` run."""

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from django.urls import reverse
from django.utils import timezone

from accounts.models import ApiKey, Membership, Role, User, Workspace
from accounts.services import create_user
from generations.models import CreditEntry, Generation, StatusEvent
from tests.conftest import PASSWORD

AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}
SIZES = {"phone": PHONE, "desktop": DESKTOP}
# Long on purpose: the header must truncate it, not wrap to a second row.
TEAM_NAME = "The Northern Lights Documentary Collective for Very Long Workspace Names Ltd."


@dataclass
class World:
    owner: User
    team: Workspace
    generation: Generation


def build_world() -> World:
    owner = create_user(email="maya@example.com", password=PASSWORD, name="Maya Lindqvist")
    team = Workspace.objects.create(name=TEAM_NAME, monthly_budget_credits=20_000)
    Membership.objects.create(user=owner, workspace=team, role=Role.OWNER)
    teammate = create_user(email="jonas.with.a.long.address@example.com", password=PASSWORD)
    Membership.objects.create(user=teammate, workspace=team, role=Role.MEMBER)
    key = ApiKey(workspace=team, label="Production key", is_default=True, created_by=owner)
    key.secret = "sk_test_every_page_key_5521"
    key.status = ApiKey.Status.VERIFIED
    key.save()
    now = timezone.now()
    prompts = [
        ("success", "A paper lantern drifting over a night river, slow camera pan right"),
        ("fail", "A red fox running through fresh snow at dawn, low tracking shot"),
        ("generating", "Waves folding over black volcanic sand, aerial view, golden hour"),
        ("queued", "A tram crossing a rainy city square at night, neon reflections"),
    ]
    generations = []
    for minutes, (status, prompt) in enumerate(prompts):
        generation = Generation.objects.create(
            workspace=team,
            creator=owner,
            api_key=key,
            prompt=prompt,
            estimated_credits=200,
            status=status,
            created_at=now - timedelta(minutes=5 * minutes + 1),
            completed_at=now - timedelta(minutes=5 * minutes) if status == "success" else None,
            credits_used=200 if status == "success" else None,
        )
        StatusEvent.objects.create(
            generation=generation, from_status="", to_status="queued", source="user"
        )
        CreditEntry.objects.create(
            generation=generation,
            workspace=team,
            user=owner,
            api_key=key,
            model=generation.model,
            kind="reserve",
            credits=-200,
            dollars_per_credit=Decimal("0.005"),
        )
        generations.append(generation)
    return World(owner=owner, team=team, generation=generations[0])


def pages(world: World) -> dict[str, tuple[str, bool]]:
    """Name -> (path, signed in)."""
    signed_in = {
        "gallery": reverse("home"),
        "new-video": reverse("generation_new"),
        "batch": reverse("generation_batch"),
        "detail": reverse("generation_detail", args=[world.generation.public_id]),
        "usage": reverse("usage"),
        "team": reverse("team", args=[world.team.pk]),
        "keys": reverse("keys"),
        "budget": reverse("workspace_budget"),
        "account": reverse("account_settings"),
        "workspaces": reverse("workspaces"),
    }
    visitor = {"landing": reverse("home"), "login": reverse("login"), "signup": reverse("signup")}
    return {
        **{name: (path, False) for name, path in visitor.items()},
        **{name: (path, True) for name, path in signed_in.items()},
    }


def session_cookie(client, world: World, url: str) -> dict:
    """A logged-in session for the owner, in the team, as a cookie for Chromium."""
    client.force_login(world.owner, backend="django.contrib.auth.backends.ModelBackend")
    session = client.session
    session["workspace_id"] = world.team.pk
    session.save()
    return {"name": "sessionid", "value": client.cookies["sessionid"].value, "url": url}


# In-page checks ---------------------------------------------------------------------------------

OVERFLOW = "() => [document.documentElement.scrollWidth, window.innerWidth]"
HEADER = """() => {
  const header = document.querySelector("header.topbar");
  return [header.getBoundingClientRect().height, getComputedStyle(header).position];
}"""
# The outermost elements sticking out on the right, to say what makes a page too wide.
WIDE = """() => [...document.querySelectorAll("body *")]
  .filter((el) => el.getBoundingClientRect().right > window.innerWidth + 1)
  .filter((el) => !el.parentElement || el.parentElement.getBoundingClientRect().right
    <= window.innerWidth + 1)
  .slice(0, 5).map((el) => `too wide: ${el.outerHTML.slice(0, 100)}`)"""
AXE_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => {
      const where = v.nodes.map((n) => n.target.join(" ")).slice(0, 3).join(", ");
      return `${v.id} (${v.impact}): ${v.help} at ${where}`;
    });
}"""

# Every visible control, numbered in a data attribute: what Tab must reach.
CONTROLS = """() => {
  const selector =
    "a[href], button, input:not([type=hidden]), select, textarea, summary, [tabindex]";
  const shown = (e) => e.getClientRects().length > 0 && getComputedStyle(e).visibility !== "hidden";
  const visible = (el) => {
    const label = el.closest("label");
    return shown(el) || (label !== null && shown(label) && el.matches("input"));
  };
  return [...document.querySelectorAll(selector)]
    .map((el, i) => {
      // Tab stops once in a radio group (arrows move inside it): the group is the control.
      el.dataset.kbd = el.type === "radio" ? `radio:${el.name}` : String(i);
      return el;
    })
    .filter((el) => !el.disabled && el.tabIndex >= 0 && !el.closest("[inert], dialog:not([open])"))
    .filter((el) => visible(el) && !el.closest("details:not([open]) > :not(summary)"))
    .map((el) => [el.dataset.kbd, el.outerHTML.replace(/ data-kbd="[^"]*"/, "").slice(0, 140)]);
}"""

# The focused element, and whether it (or the part drawn for it: a custom switch's track, a
# card's label) shows a focus ring.
FOCUSED = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const ring = (e) => {
    if (!e) return false;
    const s = getComputedStyle(e);
    const box = e.getBoundingClientRect();
    if (box.width < 3 || box.height < 3 || Number(s.opacity) === 0) return false;
    return (s.outlineStyle !== "none" && parseFloat(s.outlineWidth) > 0) || s.boxShadow !== "none";
  };
  const label = el.closest("label");
  const parts = [el, label, el.nextElementSibling, label && label.querySelector("span")];
  const html = el.outerHTML.replace(/ data-kbd="[^"]*"/, "").slice(0, 140);
  return {id: el.dataset.kbd || html, html: html,
          visible: parts.some(ring)};
}"""


def check_page(page, *, phone: bool, axe_source: str) -> list[str]:
    """Every problem found on the loaded page, as sentences (empty when all is well)."""
    problems = []
    scroll_width, inner_width = page.evaluate(OVERFLOW)
    if scroll_width > inner_width:
        problems.append(f"wider than the screen: {scroll_width} > {inner_width}")
    height, position = page.evaluate(HEADER)
    if phone and height > 64:
        problems.append(f"phone header {height:.0f} px tall")
    if phone and position in {"sticky", "fixed"}:
        problems.append(f"phone header is {position}")
    page.evaluate(axe_source)
    problems += [f"axe: {v}" for v in page.evaluate(AXE_RUN)]
    if scroll_width > inner_width:
        problems += page.evaluate(WIDE)
    problems += keyboard_problems(page)
    return problems


def keyboard_problems(page, limit: int = 300) -> list[str]:
    """Tab through the page: every visible control must be reached, each with a focus ring."""
    wanted = dict(page.evaluate(CONTROLS))
    page.evaluate("() => { document.activeElement?.blur(); window.scrollTo(0, 0); }")
    reached: list[str] = []
    problems = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUSED)
        if focused is None:  # past the last control: the browser's own UI, then the top again
            continue
        if reached and focused["id"] == reached[0]:
            break
        if focused["id"] in reached:
            continue
        reached.append(focused["id"])
        if not focused["visible"]:
            problems.append(f"no visible focus on {focused['html']}")
    problems += [f"not reachable by Tab: {html}" for i, html in wanted.items() if i not in reached]
    return problems
