"""A quiet console for `make run`: migrations summed up, a banner with the address and first
steps once the site answers, and an expected 403 logged as one line without a traceback."""

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from generations.management.commands.devserver import banner

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_banner_names_the_address_and_the_first_steps():
    text = banner("127.0.0.1:8000", migrated=3, sandbox=True)
    assert "Kinovi Studio is running at http://127.0.0.1:8000/" in text
    assert "http://127.0.0.1:8000/signup/" in text
    assert "Use the sandbox" in text
    assert "3 migrations applied" in text
    assert "KINOVI_SANDBOX=false" in banner("0.0.0.0:9000", migrated=0, sandbox=False)


@pytest.mark.django_db(transaction=True)
def test_make_run_prints_a_short_banner_and_serves(tmp_path):
    port = _free_port()
    database = connection.settings_dict["NAME"]
    env = {
        **os.environ,
        "DEBUG": "true",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{database}",
        "PYTHONUNBUFFERED": "1",
    }
    out, err = tmp_path / "out.txt", tmp_path / "err.txt"
    with out.open("w") as stdout, err.open("w") as stderr:
        process = subprocess.Popen(  # noqa: S603
            [sys.executable, "manage.py", "devserver", f"127.0.0.1:{port}"],
            cwd=ROOT,
            env=env,
            stdout=stdout,
            stderr=stderr,
        )
        try:
            deadline = time.monotonic() + 60
            while "Ctrl-C stops both" not in out.read_text() and time.monotonic() < deadline:
                assert process.poll() is None, err.read_text()
                time.sleep(0.3)
            with socket.create_connection(("127.0.0.1", port), timeout=5):
                pass
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=40)
    printed = out.read_text()
    assert f"Kinovi Studio is running at http://127.0.0.1:{port}/" in printed
    assert "Database: already up to date." in printed
    assert "Applying " not in printed + err.read_text()
    # runserver's own banner is not printed over ours.
    assert "Starting development server" not in printed
    assert len(printed.strip().splitlines()) <= 12


@pytest.mark.django_db
def test_an_expected_403_is_one_line_without_a_traceback(cast, team, login_as, caplog):
    caplog.set_level(logging.INFO)
    response = login_as(cast["vera"], team).post("/keys/", {"label": "x", "secret": "sk_1234567"})
    assert response.status_code == 403
    lines = [r for r in caplog.records if "/keys/" in r.getMessage()]
    assert [(r.name, r.getMessage()) for r in lines] == [("kinovi.request", "POST /keys/ 403")]
    assert not any(r.exc_info for r in caplog.records)


@pytest.mark.django_db
def test_a_real_error_still_logs_its_traceback(cast, team, login_as, caplog, monkeypatch):
    from accounts import views

    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(views, "_keys_page", boom)
    client = login_as(cast["alice"], team)
    client.raise_request_exception = False
    assert client.get("/keys/").status_code == 500
    assert any(r.exc_info and r.name == "django.request" for r in caplog.records)
