"""The sandbox plays the vendor: the seed's validation, prices, errors and task shapes."""

import json

import pytest

from sandbox.models import SandboxAccount, SandboxTask
from sandbox.services import inject_faults
from tests.sandbox.conftest import later

CREATE = "/sandbox/api/v1/jobs/createTask"
RECORD = "/sandbox/api/v1/jobs/recordInfo"


@pytest.fixture
def api(client, make_account, sandbox_timings):
    key, account = make_account(credits=10_000)

    class Api:
        def __init__(self):
            self.account = account
            self.key = key

        def create(self, body, key=None):
            return client.post(
                CREATE,
                data=body if isinstance(body, str | bytes) else json.dumps(body),
                content_type="application/json",
                headers={"Authorization": f"Bearer {key or self.key}"},
            )

        def record(self, task_id, key=None):
            return client.get(
                RECORD,
                {"taskId": task_id} if task_id is not None else {},
                headers={"Authorization": f"Bearer {key or self.key}"},
            )

        def credits(self):
            return SandboxAccount.objects.get(pk=self.account.pk).credits

    return Api()


def body(**inputs):
    """A request at 720p unless told otherwise: the seed's prices are the 720p rates."""
    model = inputs.pop("model", "seedance-20")
    inputs.setdefault("outputResolution", "720p")
    return {"model": model, "inputs": {"prompt": "A calm lake", **inputs}}


@pytest.mark.parametrize(
    "model, duration, upscale, credits",
    [
        ("seedance-20", "5", None, 200),
        ("seedance-20", "4", "4k", 272),
        ("seedance2-fast", "15", None, 420),
        ("seedance-20", "15", "4k", 1020),
        ("seedance2-fast", "4", "4k", 224),
        ("seedance2-fast", "8", "4k", 448),
    ],
)
def test_prices_are_the_seeds(api, model, duration, upscale, credits):
    inputs = {"duration": duration}
    if upscale:
        inputs["upscaleResolution"] = upscale
    response = api.create(body(model=model, **inputs))
    assert response.status_code == 200
    task = SandboxTask.objects.get(task_id=response.json()["taskId"])
    assert task.credits_charged == credits
    assert api.credits() == 10_000 - credits


def test_defaults_and_unknown_keys_are_silently_ignored_like_the_vendor(api):
    response = api.create(body(durration="15", aspect="9:16"))
    task = SandboxTask.objects.get(task_id=response.json()["taskId"])
    assert (task.duration, task.aspect_ratio, task.mode, task.upscale_4k) == (
        5,
        "16:9",
        "keyframe",
        False,
    )
    assert task.credits_charged == 200


@pytest.mark.parametrize(
    "payload, path",
    [
        ({"inputs": {"prompt": "x"}}, "model"),
        ({"model": "seedance-21", "inputs": {"prompt": "x"}}, "model"),
        ({"model": "seedance-20"}, "inputs"),
        ({"model": "seedance-20", "inputs": "x"}, "inputs"),
        (body(prompt=""), "inputs.prompt"),
        (body(prompt="x" * 4001), "inputs.prompt"),
        (body(duration="3"), "inputs.duration"),
        (body(duration="16"), "inputs.duration"),
        (body(duration=5), "inputs.duration"),
        (body(duration="5.5"), "inputs.duration"),
        (body(aspectRatio="16:10"), "inputs.aspectRatio"),
        (body(mode="omni"), "inputs.mode"),
        (body(upscaleResolution="8k"), "inputs.upscaleResolution"),
        ({**body(), "callBackUrl": "javascript:alert(1)"}, "callBackUrl"),
    ],
)
def test_invalid_parameters_are_400_with_paths_and_charge_nothing(api, payload, path):
    response = api.create(payload)
    assert response.status_code == 400
    assert response.json()["message"] == "Invalid parameters."
    assert path in [error["path"] for error in response.json()["errors"]]
    assert api.credits() == 10_000
    assert not SandboxTask.objects.exists()


@pytest.mark.parametrize("raw", ["not json", "[1, 2]", "", b"\xff\xfe"])
def test_a_body_that_is_not_an_object_is_400(api, raw):
    response = api.create(raw)
    assert response.status_code == 400
    assert response.json()["message"]


def test_auth(api, client):
    assert api.create(body(), key="sk_sandbox_nope").status_code == 401
    response = client.post(CREATE, data=json.dumps(body()), content_type="application/json")
    assert response.status_code == 401
    assert "API key" in response.json()["message"]
    assert client.get(RECORD, {"taskId": "task_1"}).status_code == 401


def test_get_on_create_is_405(api, client):
    assert client.get(CREATE).status_code == 405
    assert client.post(RECORD).status_code == 405


def test_record_info_shapes(api, clock):
    task_id = api.create({**body(), "callBackUrl": "https://example.com/hook"}).json()["taskId"]
    waiting = api.record(task_id).json()
    assert waiting["status"] == "waiting"
    assert waiting["output"] is None and waiting["error"] is None
    assert waiting["completeTime"] is None
    assert isinstance(waiting["createTime"], int)
    later(clock, 61)
    done = api.record(task_id).json()
    assert done["status"] == "success"
    assert done["creditsUsed"] == 200
    assert done["completeTime"] - done["createTime"] == 60_000
    (output,) = done["output"]
    assert output["url"] == f"http://testserver/sandbox/media/{task_id}/video.mp4"
    assert output["lastFrameImage"] == f"http://testserver/sandbox/media/{task_id}/last-frame.png"
    assert (output["width"], output["height"], output["mediaType"]) == (1280, 720, "video/mp4")


def test_record_info_errors(api, make_account):
    other_key, _ = make_account()
    task_id = api.create(body()).json()["taskId"]
    assert api.record(task_id, key=other_key).status_code == 403
    assert api.record("task_nope").status_code == 404
    missing = api.record(None)
    assert missing.status_code == 400
    assert missing.json()["errors"][0]["path"] == "taskId"


def test_insufficient_credits(api, make_account):
    key, _ = make_account(credits=199)
    response = api.create(body(), key=key)
    assert response.status_code == 402
    assert response.json()["required"] == 200 and response.json()["available"] == 199


def test_concurrency_counts_only_unfinished_tasks(api, clock):
    assert api.create(body()).status_code == 200
    assert api.create(body()).status_code == 200
    refused = api.create(body())
    assert refused.status_code == 429
    assert refused.json()["limit"] == 2 and refused.json()["current"] == 2
    assert int(refused["Retry-After"]) == 60
    assert api.credits() == 10_000 - 400  # a refused create charges nothing
    later(clock, 61)
    assert api.create(body()).status_code == 200


def test_fail_refunds_once_but_record_info_still_shows_the_charge(api, clock):
    task_id = api.create(body(prompt="A protest [sandbox:error]")).json()["taskId"]
    assert api.credits() == 9_800
    assert api.record(task_id).json()["status"] == "waiting"
    later(clock, 61)
    for _ in range(2):
        data = api.record(task_id).json()
        assert data["status"] == "fail"
        assert data["creditsUsed"] == 200
        assert data["error"]["code"] == "500"
        assert api.credits() == 10_000
    assert SandboxTask.objects.get(task_id=task_id).credits_refunded == 200


def test_injected_faults_answer_first_then_stop(api):
    inject_faults(status=429, count=2, endpoint="createTask", retry_after=3)
    first = api.create(body())
    assert first.status_code == 429 and first["Retry-After"] == "3"
    assert api.create(body(), key="sk_sandbox_nope").status_code == 429  # before auth
    assert api.create(body()).status_code == 200
    inject_faults(status=500, count=1)
    assert api.record("task_whatever").status_code == 500
    assert api.record("task_whatever").status_code == 404
    assert api.credits() == 9_800


def test_bad_fault_requests_are_refused(db):
    with pytest.raises(ValueError):
        inject_faults(status=418, count=1)
    with pytest.raises(ValueError):
        inject_faults(status=500, count=0)
    with pytest.raises(ValueError):
        inject_faults(status=500, count=1, endpoint="createtask")
