"""Security headers on every page, and a content security policy the pages really satisfy
(checked in Chromium, the Django admin included, with no inline script or style anywhere)."""

import re
import shutil
from pathlib import Path

import pytest
from django.conf import settings

from tests.chromium import CHROMIUM, CHROMIUM_ARGS
from tests.conftest import PASSWORD

EXPECTED_CSP = {
    "default-src": {"'self'"},
    "script-src": {"'self'"},
    "style-src": {"'self'"},
    "connect-src": {"'self'"},
    "frame-ancestors": {"'none'"},
    "form-action": {"'self'"},
    "base-uri": {"'self'"},
    "object-src": {"'none'"},
}


def parse_csp(header: str) -> dict[str, set[str]]:
    directives = {}
    for part in header.split(";"):
        name, *values = part.split()
        directives[name] = set(values)
    return directives


def assert_security_headers(response) -> None:
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])
    csp = parse_csp(response["Content-Security-Policy"])
    for name, values in EXPECTED_CSP.items():
        assert csp[name] == values, name
    assert {"'self'", "data:"} <= csp["img-src"]
    assert {"'self'", "blob:"} <= csp["media-src"]
    joined = response["Content-Security-Policy"]
    assert "unsafe-inline" not in joined and "unsafe-eval" not in joined


@pytest.mark.parametrize("path", ["/login/", "/signup/", "/admin/login/"])
def test_anonymous_pages_send_the_security_headers(client, db, path):
    response = client.get(path)

    assert response.status_code == 200
    assert_security_headers(response)


@pytest.mark.parametrize("path", ["/", "/videos/new/", "/keys/", "/admin/"])
def test_signed_in_pages_send_the_security_headers(login_as, cast, team, path):
    cast["alice"].is_staff = cast["alice"].is_superuser = True
    cast["alice"].save()
    client = login_as(cast["alice"], team)

    response = client.get(path)

    assert response.status_code == 200
    assert_security_headers(response)


def test_refusals_carry_the_policy_too(client, db):
    # 404 and 403 pages are rendered by the project in production: same policy.
    response = client.get("/no-such-page/")

    assert response.status_code == 404
    assert "Content-Security-Policy" in response


def test_dev_and_tests_allow_media_only_from_the_sandbox_origin():
    # Production (real API) allows https: for videos and posters; here only our own origins.
    csp = settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]

    assert "https:" not in csp["media-src"] and "https:" not in csp["img-src"]
    assert settings.KINOVI_SANDBOX


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
INLINE_STYLE = re.compile(r"<style\b|\sstyle\s*=", re.IGNORECASE)
INLINE_HANDLER = re.compile(r"\son[a-z]+\s*=\s*[\"']", re.IGNORECASE)
TEMPLATE_DIRS = [Path(settings.BASE_DIR) / "templates"] + [
    p for p in Path(settings.BASE_DIR).glob("*/templates") if ".venv" not in p.parts
]


def _templates():
    for directory in TEMPLATE_DIRS:
        yield from sorted(directory.rglob("*.html"))


def test_no_template_has_inline_script_style_or_handlers():
    offenders = []
    for template in _templates():
        text = template.read_text()
        for pattern in (INLINE_SCRIPT, INLINE_STYLE, INLINE_HANDLER):
            for match in pattern.finditer(text):
                offenders.append(f"{template.relative_to(settings.BASE_DIR)}: {match.group(0)}")
    assert offenders == []


def test_the_template_scan_would_catch_an_inline_script():
    sample = '<script>alert(1)</script><div style="color:red" onclick="x()"></div>'

    assert INLINE_SCRIPT.search(sample)
    assert INLINE_STYLE.search(sample)
    assert INLINE_HANDLER.search(sample)
    assert not INLINE_SCRIPT.search('<script src="/static/js/app.js" defer></script>')


# --- Chromium: the pages load and run without a single CSP violation. ---------------------

# Collected before any page script runs; Playwright injects this outside the page's CSP.
RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
});
"""


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


def _page(browser, live_server, session_cookie: str | None = None):
    context = browser.new_context()
    if session_cookie:
        context.add_cookies(
            [{"name": "sessionid", "value": session_cookie, "url": live_server.url}]
        )
    page = context.new_page()
    page.add_init_script(RECORD_VIOLATIONS)
    console = []
    page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: console.append(str(e)))
    return page, console


def _violations(page, console) -> list[str]:
    page.wait_for_timeout(150)  # violation events are dispatched asynchronously
    return page.evaluate("window.__csp") + [m for m in console if "Security Policy" in m]


@pytest.fixture
def superuser_session(cast, client) -> str:
    alice = cast["alice"]
    alice.is_staff = alice.is_superuser = True
    alice.save()
    client.force_login(alice, backend="django.contrib.auth.backends.ModelBackend")
    return client.cookies["sessionid"].value


@pytest.mark.browser
def test_pages_and_the_admin_run_under_the_policy_in_chromium(
    live_server, superuser_session, browser
):
    anonymous, anon_console = _page(browser, live_server)
    for path in ["/login/", "/signup/", "/admin/login/"]:
        anonymous.goto(live_server.url + path)
        assert anonymous.locator("form").count() >= 1, path
    assert _violations(anonymous, anon_console) == []

    page, console = _page(browser, live_server, superuser_session)
    seen = {}
    for path in ["/", "/videos/new/", "/videos/batch/", "/keys/", "/usage/", "/workspaces/"]:
        response = page.goto(live_server.url + path)
        assert response.status == 200, path
        seen[path] = _violations(page, console)
    # htmx loaded with its indicator styles off and no eval: nothing injected, nothing refused.
    assert page.evaluate("typeof htmx") == "object"
    assert page.evaluate("htmx.config.includeIndicatorStyles") is False
    assert page.evaluate("htmx.config.allowEval") is False
    for path in [
        "/admin/",
        "/admin/auth/group/add/",  # SelectFilter2
        "/admin/generations/price/add/",  # calendar and clock shortcuts
        "/admin/generations/generation/",  # changelist with filters and actions
        "/admin/generations/creditentry/report/",  # the credit report and its chart
        "/admin/accounts/user/",
    ]:
        response = page.goto(live_server.url + path)
        assert response.status == 200, path
        seen[path] = _violations(page, console)
        if path == "/admin/auth/group/add/":
            # The admin's JavaScript really ran: SelectFilter2.js builds the permission picker.
            assert page.locator("#id_permissions_add_all").count() == 1
    assert all(v == [] for v in seen.values()), seen

    # The detector itself works: an inline script injected now is refused and recorded.
    page.evaluate(
        "() => { const s = document.createElement('script');"
        " s.textContent = 'window.__ran = true'; document.head.appendChild(s); }"
    )
    assert page.evaluate("window.__ran === undefined")
    assert any("script-src" in v for v in _violations(page, console))

    # And logging in through the real form works under form-action 'self'.
    login, _ = _page(browser, live_server)
    login.goto(live_server.url + "/login/")
    login.fill("input[name=username]", "bob@example.com")
    login.fill("input[name=password]", PASSWORD)
    login.locator("form button[type=submit], form input[type=submit]").last.click()
    login.wait_for_url(live_server.url + "/")
