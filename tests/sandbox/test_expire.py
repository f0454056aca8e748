"""The switch that makes a task's media answer 404, as the vendor's do after 14 days."""

import json
import time
from io import StringIO

import pytest
import requests
from django.core.management import CommandError, call_command

from sandbox.services import expire_media
from tests.sandbox.conftest import later

CREATE = "/sandbox/api/v1/jobs/createTask"
RECORD = "/sandbox/api/v1/jobs/recordInfo"


@pytest.fixture
def finished(client, make_account, sandbox_timings, clock):
    key, _ = make_account()
    headers = {"Authorization": f"Bearer {key}"}

    def make():
        inputs = {"prompt": "Old news", "duration": "4", "outputResolution": "480p"}
        task_id = client.post(
            CREATE,
            data=json.dumps({"model": "seedance2-fast", "inputs": inputs}),
            content_type="application/json",
            headers=headers,
        ).json()["taskId"]
        later(clock, 61)
        output = client.get(RECORD, {"taskId": task_id}, headers=headers).json()["output"][0]
        return task_id, [output["url"], output["lastFrameImage"]]

    return make


def statuses(client, urls):
    return [client.get(url.removeprefix("http://testserver")).status_code for url in urls]


def test_expire_one_task_then_restore(finished, client):
    (one, one_urls), (_two, two_urls) = finished(), finished()
    assert statuses(client, one_urls + two_urls) == [200] * 4
    assert expire_media(task_id=one) == 1
    assert statuses(client, one_urls) == [404, 404]
    assert statuses(client, two_urls) == [200, 200]  # only that task
    assert expire_media(task_id=one) == 0  # already expired
    assert expire_media(task_id=one, expired=False) == 1
    assert statuses(client, one_urls) == [200, 200]


def test_the_command(finished, client):
    (one, one_urls), (_two, two_urls) = finished(), finished()
    out = StringIO()
    call_command("sandbox_expire_media", "--task", one, stdout=out)
    assert "1 task(s): media URLs now answer 404" in out.getvalue()
    assert statuses(client, one_urls + two_urls) == [404, 404, 200, 200]
    call_command("sandbox_expire_media", "--all", stdout=out)
    assert statuses(client, one_urls + two_urls) == [404] * 4
    call_command("sandbox_expire_media", "--all", "--restore", stdout=out)
    assert statuses(client, one_urls + two_urls) == [200] * 4
    with pytest.raises(CommandError, match="No sandbox task task_nope"):
        call_command("sandbox_expire_media", "--task", "task_nope")
    with pytest.raises(CommandError):
        call_command("sandbox_expire_media")


def test_expire_needs_one_target(db):
    with pytest.raises(ValueError):
        expire_media()
    with pytest.raises(ValueError):
        expire_media(task_id="task_1", everything=True)


def test_over_real_http(live_server, sandbox_api, make_account, settings):
    settings.KINOVI_SANDBOX_WAIT_SECONDS = 0.1
    settings.KINOVI_SANDBOX_GENERATE_SECONDS = 0.1
    key, _ = make_account()
    headers = {"Authorization": f"Bearer {key}"}
    inputs = {"prompt": "Live", "duration": "4", "outputResolution": "480p"}
    with requests.Session() as session:
        task_id = session.post(
            f"{sandbox_api}/jobs/createTask",
            json={"model": "seedance2-fast", "inputs": inputs},
            headers=headers,
            timeout=10,
        ).json()["taskId"]
        for _ in range(100):
            data = session.get(
                f"{sandbox_api}/jobs/recordInfo",
                params={"taskId": task_id},
                headers=headers,
                timeout=30,
            ).json()
            if data["status"] == "success":
                break
            time.sleep(0.05)
        url = data["output"][0]["url"]
        assert session.get(url, headers={"Range": "bytes=0-9"}, timeout=10).status_code == 206
        expire_media(task_id=task_id)
        assert session.get(url, timeout=10).status_code == 404
        assert session.get(data["output"][0]["lastFrameImage"], timeout=10).status_code == 404
