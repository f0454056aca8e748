"""accounts.services.verify_key against a local HTTP server standing in for Kinovi."""

import time

from accounts.models import ApiKey
from accounts.services import PROBE_TASK_ID, verify_key

from .conftest import CANARY


def test_it_accepts_a_key_kinovi_answers_404_for(kinovi):
    status, detail = verify_key(CANARY)
    assert status == ApiKey.Status.VERIFIED
    assert kinovi.requests[0]["authorization"] == f"Bearer {CANARY}"
    assert kinovi.requests[0]["path"] == f"/api/v1/jobs/recordInfo?taskId={PROBE_TASK_ID}"
    assert CANARY not in detail


def test_it_accepts_a_key_kinovi_answers_400_for(kinovi):
    kinovi.mode = "400"
    assert verify_key(CANARY)[0] == ApiKey.Status.VERIFIED


def test_it_rejects_a_key_kinovi_answers_401_for(kinovi):
    kinovi.mode = "401"
    status, detail = verify_key(CANARY)
    assert status == ApiKey.Status.INVALID
    assert "rejected" in detail
    assert CANARY not in detail


def test_it_leaves_the_key_unverified_on_timeout(kinovi):
    kinovi.mode = "slow"
    started = time.monotonic()
    status, detail = verify_key(CANARY)
    assert status == ApiKey.Status.UNVERIFIED
    assert "could not be reached" in detail
    # One attempt with the short read timeout: the form does not hang while Kinovi is away.
    assert len(kinovi.requests) == 1
    assert time.monotonic() - started < 1.0


def test_it_leaves_the_key_unverified_on_server_error(kinovi):
    kinovi.mode = "500"
    assert verify_key(CANARY)[0] == ApiKey.Status.UNVERIFIED


def test_it_leaves_the_key_unverified_when_nothing_listens(settings, kinovi):
    kinovi.server.server_close()
    settings.KINOVI_BASE_URL = "http://127.0.0.1:9/api/v1"
    assert verify_key(CANARY)[0] == ApiKey.Status.UNVERIFIED
