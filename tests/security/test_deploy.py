"""Deployment checks: production settings pass `check --deploy`, bad settings stop start-up
clearly, and the Procfile's web process serves production headers and cookies for real."""

import json
import subprocess

import pytest
import requests

from tests.conftest import PASSWORD
from tests.ops.procs import (
    BASE_DIR,
    free_port,
    manage,
    procfile_command,
    production_env,
    running,
    wait_for_http,
)

HOST = "studio.example.com"


def test_check_deploy_is_clean_with_production_settings():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env())

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNINGS" not in result.stderr


def test_check_deploy_catches_a_weak_secret_key():
    # Proves the check above can fail: Django's own deploy check rejects a short key.
    result = manage(
        "check", "--deploy", "--fail-level", "WARNING", env=production_env(SECRET_KEY="short")
    )

    assert result.returncode != 0
    assert "security.W009" in result.stderr


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"SECRET_KEY": ""}, "SECRET_KEY must be set when DEBUG is off"),
        ({"FIELD_ENCRYPTION_KEYS": ""}, "FIELD_ENCRYPTION_KEYS must be set when DEBUG is off"),
        (
            {"FIELD_ENCRYPTION_KEYS": "not-a-fernet-key"},
            "FIELD_ENCRYPTION_KEYS: key number 1 is not a valid Fernet key",
        ),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT must be json or text"),
        ({"DEBUG": "maybe"}, "DEBUG must be true or false"),
    ],
)
def test_bad_production_settings_fail_clearly_at_start_up(overrides, message):
    result = manage("check", env=production_env(**overrides))

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr
    # The refusal names the variable but never echoes a secret value back.
    assert "not-a-fernet-key" not in result.stderr.replace("'not-a-fernet-key'", "")


def test_the_release_step_migrates_with_production_settings(transactional_db):
    result = subprocess.run(
        procfile_command("release"),
        shell=True,
        cwd=BASE_DIR,
        env=production_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr[-2000:]
    # The test database is already migrated: the step is safe to repeat on every deploy.
    assert "No migrations to apply" in result.stdout


@pytest.fixture
def production_server(transactional_db, tmp_path):
    """The Procfile's web line (gunicorn) with production settings on the test database."""
    static_root = tmp_path / "static"
    env = production_env(STATIC_ROOT=str(static_root), WEB_CONCURRENCY="1")
    collected = manage("collectstatic", "--noinput", env=env, timeout=120)
    assert collected.returncode == 0, collected.stderr
    port = free_port()
    env["PORT"] = str(port)
    log = tmp_path / "gunicorn.log"
    with running(procfile_command("web"), env=env, log=log) as proc:
        base = f"http://127.0.0.1:{port}"
        wait_for_http(f"{base}/healthz", proc=proc, log=log)
        yield base, log


def _https(url: str, session: requests.Session | None = None, **kwargs) -> requests.Response:
    """A request as the TLS-terminating proxy forwards it."""
    headers = {"Host": HOST, "X-Forwarded-Proto": "https", **kwargs.pop("headers", {})}
    return (session or requests).request(
        kwargs.pop("method", "GET"),
        url,
        headers=headers,
        allow_redirects=False,
        timeout=10,
        **kwargs,
    )


def _set_cookies(response: requests.Response) -> dict[str, str]:
    """Each Set-Cookie header by cookie name (kept raw, to read its attributes)."""
    return {raw.split("=", 1)[0]: raw for raw in response.raw.headers.getlist("Set-Cookie")}


@pytest.mark.cluster
def test_production_web_process_sends_security_headers_and_secure_cookies(
    production_server, make_user
):
    base, log = production_server
    make_user("ops@example.com")

    page = _https(f"{base}/login/")

    assert page.status_code == 200
    assert page.headers["Strict-Transport-Security"] == (
        "max-age=31536000; includeSubDomains; preload"
    )
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["Referrer-Policy"] == "same-origin"
    csp = dict(
        part.strip().split(" ", 1) for part in page.headers["Content-Security-Policy"].split(";")
    )
    assert csp["script-src"] == "'self'" and csp["frame-ancestors"] == "'none'"
    # Videos come from Kinovi's CDN in production: https media allowed, never inline script.
    assert csp["media-src"] == "'self' blob: https:"
    assert csp["img-src"] == "'self' data: https:"
    csrf_cookie = _set_cookies(page)["csrftoken"]
    assert "; Secure" in csrf_cookie
    token = csrf_cookie.split(";", 1)[0].split("=", 1)[1]

    login = _https(
        f"{base}/login/",
        method="POST",
        data={"username": "ops@example.com", "password": PASSWORD, "csrfmiddlewaretoken": token},
        headers={
            "Origin": f"https://{HOST}",
            "Referer": f"https://{HOST}/login/",
            "Cookie": f"csrftoken={token}",
        },
    )

    assert login.status_code == 302, login.text[:500]
    session_cookie = _set_cookies(login)["sessionid"]
    assert "; Secure" in session_cookie and "; HttpOnly" in session_cookie

    # Production logs are JSON lines, one per request, with no query strings and no cookies.
    lines = [json.loads(x) for x in log.read_text().splitlines() if x.startswith("{")]
    posted = [x for x in lines if x.get("logger") == "kinovi.request" and x["method"] == "POST"]
    assert posted and posted[-1]["path"] == "/login/" and posted[-1]["status"] == 302
    assert posted[-1]["request_id"] == login.headers["X-Request-ID"]
    assert token not in log.read_text()


@pytest.mark.cluster
def test_production_web_process_redirects_plain_http_but_not_the_health_check(production_server):
    base, _log = production_server

    plain = requests.get(
        f"{base}/login/", headers={"Host": HOST}, allow_redirects=False, timeout=10
    )
    assert plain.status_code == 301
    assert plain.headers["Location"] == f"https://{HOST}/login/"

    # A load balancer probes by address over plain HTTP: no 400 for the host, no redirect.
    probe = requests.get(
        f"{base}/healthz", headers={"Host": "10.0.0.7"}, allow_redirects=False, timeout=10
    )
    assert probe.status_code in {200, 503}
    assert probe.headers["Content-Type"] == "application/json"
    assert probe.json()["checks"]["database"]["ok"] is True

    unknown = requests.get(
        f"{base}/login/",
        headers={"Host": "evil.example.net", "X-Forwarded-Proto": "https"},
        allow_redirects=False,
        timeout=10,
    )
    assert unknown.status_code == 400
