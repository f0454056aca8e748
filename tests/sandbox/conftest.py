"""Sandbox fixtures: an account and its key, a client pointed at the live sandbox, a clock."""

import threading
from datetime import UTC, datetime, timedelta
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
import time_machine

from kinovi import KinoviClient
from sandbox.models import SandboxAccount, hash_key
from sandbox.services import create_account

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class Sleeps(list):
    def __call__(self, seconds):
        self.append(seconds)


@pytest.fixture
def sandbox_timings(settings):
    settings.KINOVI_SANDBOX_WAIT_SECONDS = 10.0
    settings.KINOVI_SANDBOX_GENERATE_SECONDS = 50.0
    return settings


@pytest.fixture
def clock():
    """The process clock (the live server thread's too), moved by hand; it keeps ticking."""
    with time_machine.travel(START, tick=True) as traveller:
        yield traveller


@pytest.fixture
def make_account(db):
    def make(**kwargs):
        kwargs.setdefault("label", "Test account")
        key = create_account(**kwargs)
        return key, SandboxAccount.objects.get(key_hash=hash_key(key))

    return make


@pytest.fixture
def sandbox_api(live_server, settings, sandbox_timings, transactional_db):
    settings.KINOVI_BASE_URL = live_server.url + "/sandbox/api/v1"
    return settings.KINOVI_BASE_URL


@pytest.fixture
def make_client(sandbox_api):
    sessions = []

    def make(key, **kwargs):
        kwargs.setdefault("sleep", Sleeps())
        kwargs.setdefault("session", requests.Session())
        sessions.append(kwargs["session"])
        return KinoviClient(key, **kwargs)

    yield make
    # A kept-alive connection pins a live-server thread and its database connection.
    for session in sessions:
        session.close()


def later(clock, seconds: float) -> None:
    clock.shift(timedelta(seconds=seconds))


class MaterialServer:
    """Serves files from a folder over real HTTP on 127.0.0.1, like a public bucket would;
    `/redirect/<path>` answers 302 to `<path>` (or to any URL given after `/redirect-to/`)."""

    def __init__(self, root: Path):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        handler = partial(_MaterialHandler, directory=str(root))
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _MaterialHandler(SimpleHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith("/redirect-to/"):
            self.send_response(302)
            self.send_header("Location", self.path.removeprefix("/redirect-to/"))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path.startswith("/redirect/"):
            self.send_response(302)
            self.send_header("Location", "/" + self.path.removeprefix("/redirect/"))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def material_server(tmp_path):
    server = MaterialServer(tmp_path / "public")
    yield server
    server.stop()
