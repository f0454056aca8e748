"""Sandbox fixtures: an account and its key, a client pointed at the live sandbox, a clock."""

from datetime import UTC, datetime, timedelta

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
