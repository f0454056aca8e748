"""The report and the budget page in a real Chromium: the chart draws, forms work, no CSP
violations. Screenshots go to test-artifacts/screenshots/."""

import shutil
from pathlib import Path

import pytest

from accounts.models import Membership
from tests.chromium import CHROMIUM, CHROMIUM_ARGS

from .conftest import MARCH

RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`);
});
"""
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


def session_of(client, user) -> str:
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client.cookies["sessionid"].value


@pytest.fixture
def browser():
    # Requested last: Playwright's sync API runs an event loop on this thread, so every ORM
    # call must happen in fixtures set up before it.
    if not shutil.which(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (make browser)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def open_page(browser, live_server, session):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_cookies([{"name": "sessionid", "value": session, "url": live_server.url}])
    page = context.new_page()
    page.add_init_script(RECORD_VIOLATIONS)
    return page


@pytest.fixture
def report_session(ledger, superuser, client):
    return session_of(client, superuser)


@pytest.mark.browser
def test_the_report_draws_its_chart_and_tables(live_server, report_session, browser):
    page = open_page(browser, live_server, report_session)
    page.goto(f"{live_server.url}/admin/")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "admin-index.png"))
    page.get_by_role("link", name="Credit usage report").click()
    page.fill("#report-start", MARCH.start.isoformat())
    page.fill("#report-end", MARCH.end.isoformat())
    page.get_by_role("button", name="Show").click()
    page.wait_for_url("**/report/?start=2026-03-01&end=2026-03-31")

    assert "1852 credits" in page.locator("#report-total").inner_text()
    bars = page.locator("svg.bar-chart rect.bar")
    assert bars.count() == 31
    heights = [bars.nth(i).bounding_box()["height"] for i in range(31)]
    assert max(heights) == pytest.approx(160, abs=1)  # Mar 10, the peak
    assert heights[0] == 0 and heights[1] > 0  # nothing on Mar 1, 200 credits on Mar 2
    assert page.locator("#recon-failed_without_refund tbody tr").count() == 1
    assert page.locator("#table-workspace tbody tr").count() == 2
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "admin-credit-report.png"), full_page=True)

    with page.expect_download() as download:
        page.locator("#table-user a.csv-link").click()
    assert download.value.suggested_filename == "credits-user-2026-03-01-2026-03-31.csv"
    assert page.evaluate("window.__csp") == []


@pytest.fixture
def budget_session(cast, team, client):
    session = session_of(client, cast["adam"])
    s = client.session
    s["workspace_id"] = team.pk
    s.save()
    return session


@pytest.fixture
def bob_membership(cast, team):
    return Membership.objects.get(user=cast["bob"], workspace=team)


@pytest.mark.browser
def test_an_admin_sets_the_budget_and_a_cap_in_the_browser(
    live_server, budget_session, bob_membership, team, browser
):
    page = open_page(browser, live_server, budget_session)
    page.goto(f"{live_server.url}/workspace/budget/")
    page.fill("#id_monthly_budget_credits", "-3")
    page.get_by_role("button", name="Save budget").click()
    assert "greater than or equal to 0" in page.locator(".field-invalid").first.inner_text()

    page.fill("#id_monthly_budget_credits", "5000")
    page.fill(f"#id_cap_{bob_membership.pk}", "1200")
    page.get_by_role("button", name="Save budget").click()
    page.wait_for_url("**/workspace/budget/")
    assert "Budget saved." in page.locator(".messages").inner_text()
    assert page.input_value(f"#id_cap_{bob_membership.pk}") == "1200"
    assert "of a budget of 5000" in page.locator("#budget-summary").inner_text()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "workspace-budget.png"), full_page=True)
    assert page.evaluate("window.__csp") == []
