"""Client faults a well-behaved server cannot produce on cue: timeouts, resets, malformed 200s."""

import json
import logging
import traceback

import pytest
import requests
import responses

import kinovi
from kinovi import KinoviClient
from tests.kinovi.conftest import CANARY, FaultyServer, free_port

BASE = "https://kinovi.test/api/v1"
CREATE = dict(
    model="seedance-20",
    prompt="A lighthouse at dusk",
    duration=5,
    aspect_ratio="16:9",
    mode="keyframe",
    upscale_4k=False,
)


class Sleeps(list):
    def __call__(self, seconds):
        self.append(seconds)


def make_client(base_url=BASE, **kwargs):
    kwargs.setdefault("sleep", Sleeps())
    kwargs.setdefault("session", requests.Session())
    return KinoviClient(CANARY, base_url=base_url, **kwargs)


def assert_no_canary(error: BaseException, caplog=None):
    text = "".join(traceback.format_exception(error))
    assert CANARY not in text
    assert CANARY not in repr(error)
    assert CANARY not in json.dumps(getattr(error, "body", {}), default=str)
    assert CANARY not in json.dumps(getattr(error, "errors", []), default=str)
    if caplog is not None:
        assert CANARY not in caplog.text


def test_create_is_not_resent_after_a_read_timeout(faulty_server):
    faulty_server.behaviour = "slow"
    faulty_server.delay = 0.6
    client = make_client(faulty_server.base_url, read_timeout=0.2, retries=3)
    with pytest.raises(kinovi.UnknownOutcome) as caught:
        client.create_task(**CREATE)
    assert "read timeout" in caught.value.message
    assert [r[0] for r in faulty_server.requests] == ["POST"]
    assert client.sleep == []
    assert_no_canary(caught.value)


def test_create_is_not_resent_after_a_reset(faulty_server):
    faulty_server.behaviour = "reset"
    client = make_client(faulty_server.base_url, retries=3)
    with pytest.raises(kinovi.UnknownOutcome) as caught:
        client.create_task(**CREATE)
    assert len(faulty_server.requests) == 1
    assert_no_canary(caught.value)


def test_create_is_retried_after_a_connect_error():
    port = free_port()
    servers = []

    def sleep_then_come_up(seconds):
        # The first attempt met a closed port; the server comes up while the client waits.
        servers.append(FaultyServer(port).start())

    client = make_client(f"http://127.0.0.1:{port}/api/v1", sleep=sleep_then_come_up, retries=2)
    try:
        assert client.create_task(**CREATE) == "task_ok"
        assert len(servers) == 1
        assert len(servers[0].requests) == 1
        method, path, headers, body = servers[0].requests[0]
        assert (method, path) == ("POST", "/api/v1/jobs/createTask")
        assert headers["Authorization"] == f"Bearer {CANARY}"
        assert json.loads(body)["inputs"]["duration"] == "5"
    finally:
        for server in servers:
            server.stop()


def test_create_gives_up_after_connect_errors_with_nothing_sent(caplog):
    caplog.set_level(logging.DEBUG)
    client = make_client(f"http://127.0.0.1:{free_port()}/api/v1", retries=2)
    with pytest.raises(kinovi.KinoviUnavailable) as caught:
        client.create_task(**CREATE)
    assert not isinstance(caught.value, kinovi.UnknownOutcome)
    assert "nothing was sent" in caught.value.message
    assert len(client.sleep) == 2
    assert_no_canary(caught.value, caplog)


def test_record_info_retries_a_read_timeout(faulty_server):
    faulty_server.behaviour = "slow"
    faulty_server.delay = 0.4
    client = make_client(faulty_server.base_url, read_timeout=0.1, retries=1)
    with pytest.raises(kinovi.KinoviUnavailable):
        client.record_info("task_slow")
    assert len(faulty_server.requests) == 2


@responses.activate
def test_malformed_200_on_create_is_an_unknown_outcome():
    responses.post(f"{BASE}/jobs/createTask", body="<html>ok</html>", status=200)
    with pytest.raises(kinovi.MalformedResponse) as caught:
        make_client().create_task(**CREATE)
    # Something answered 200: a task may exist, so it must be handled as an unknown outcome.
    assert isinstance(caught.value, kinovi.UnknownOutcome)
    assert len(responses.calls) == 1


@pytest.mark.parametrize(
    "payload",
    [
        "not json",
        "[]",
        '{"taskId": "task_1"}',
        '{"taskId": "task_1", "status": "exploded"}',
        '{"taskId": "task_1", "status": "success", "output": [{"width": 1}]}',
        '{"taskId": "task_1", "status": "success", "creditsUsed": "lots"}',
        '{"taskId": "task_other", "status": "waiting"}',
    ],
)
@responses.activate
def test_malformed_200_on_record_info(payload):
    responses.get(f"{BASE}/jobs/recordInfo", body=payload, status=200)
    with pytest.raises(kinovi.MalformedResponse):
        make_client().record_info("task_1")
    assert len(responses.calls) == 1


@responses.activate
def test_record_info_retries_5xx_then_succeeds_with_capped_jittered_backoff():
    url = f"{BASE}/jobs/recordInfo"
    responses.get(url, status=503, json={"message": "busy"})
    responses.get(url, status=500, json={"message": "oops"})
    responses.get(url, status=502, body="Bad gateway")
    responses.get(url, json={"taskId": "task_1", "status": "generating"})
    client = make_client(retries=3, backoff=1.0, backoff_max=1.5)
    assert client.record_info("task_1").status == "generating"
    assert len(responses.calls) == 4
    first, second, third = client.sleep
    assert 0.5 <= first <= 1.0
    assert 0.75 <= second <= 1.5 and 0.75 <= third <= 1.5  # capped


@responses.activate
def test_record_info_honours_retry_after():
    url = f"{BASE}/jobs/recordInfo"
    responses.get(url, status=429, json={"message": "slow down"}, headers={"Retry-After": "7"})
    responses.get(url, json={"taskId": "task_1", "status": "waiting"})
    client = make_client(backoff=0.1)
    assert client.record_info("task_1").status == "waiting"
    assert client.sleep == [7.0]


@responses.activate
def test_record_info_does_not_block_on_a_long_retry_after():
    url = f"{BASE}/jobs/recordInfo"
    responses.get(url, status=429, json={"limit": 2, "current": 2}, headers={"Retry-After": "120"})
    client = make_client()
    with pytest.raises(kinovi.ConcurrencyLimited) as caught:
        client.record_info("task_1")
    assert caught.value.retry_after == 120.0
    assert (caught.value.limit, caught.value.current) == (2, 2)
    assert client.sleep == []


@responses.activate
def test_record_info_gives_up_with_server_error():
    responses.get(f"{BASE}/jobs/recordInfo", status=500, json={"message": "down"})
    client = make_client(retries=2)
    with pytest.raises(kinovi.ServerError) as caught:
        client.record_info("task_1")
    assert caught.value.message == "down"
    assert len(responses.calls) == 3


@responses.activate
def test_create_5xx_is_unknown_and_never_retried():
    responses.post(f"{BASE}/jobs/createTask", status=500, json={"message": "boom"})
    with pytest.raises(kinovi.UnknownOutcome) as caught:
        make_client().create_task(**CREATE)
    assert caught.value.status_code == 500
    assert len(responses.calls) == 1


@responses.activate
def test_create_429_is_raised_not_retried():
    responses.post(
        f"{BASE}/jobs/createTask",
        status=429,
        json={"message": "limit", "limit": 1, "current": 1},
        headers={"Retry-After": "3"},
    )
    client = make_client()
    with pytest.raises(kinovi.ConcurrencyLimited) as caught:
        client.create_task(**CREATE)
    assert caught.value.retry_after == 3.0
    assert len(responses.calls) == 1 and client.sleep == []


@responses.activate
def test_enveloped_answers_are_accepted():
    responses.post(f"{BASE}/jobs/createTask", json={"code": 200, "data": {"taskId": "task_9"}})
    responses.get(
        f"{BASE}/jobs/recordInfo",
        json={"code": 200, "data": {"taskId": "task_9", "status": "waiting"}},
    )
    client = make_client()
    assert client.create_task(**CREATE) == "task_9"
    assert client.record_info("task_9").status == "waiting"


@responses.activate
def test_the_key_never_leaks_even_when_the_server_echoes_it(caplog):
    caplog.set_level(logging.DEBUG)
    echo = {"message": f"bad key {CANARY}", "errors": [{"path": "k", "message": CANARY}]}
    client = make_client(retries=1)
    failures = []
    for status in (400, 401, 402, 403, 404, 429, 500, 418):
        responses.upsert(responses.GET, f"{BASE}/jobs/recordInfo", status=status, json=echo)
        responses.upsert(responses.POST, f"{BASE}/jobs/createTask", status=status, json=echo)
        for call in (lambda: client.record_info("task_1"), lambda: client.create_task(**CREATE)):
            with pytest.raises(kinovi.KinoviError) as caught:
                call()
            failures.append(caught.value)
    responses.upsert(responses.POST, f"{BASE}/jobs/createTask", status=200, body=CANARY)
    with pytest.raises(kinovi.KinoviError) as caught:
        client.create_task(**CREATE)
    failures.append(caught.value)
    assert len(failures) == 17
    for error in failures:
        assert_no_canary(error, caplog)
        assert "••••4242" in error.message or "bad key" not in error.message
    assert CANARY not in repr(client) and "••••4242" in repr(client)
