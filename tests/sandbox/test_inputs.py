"""createTask's inputs in both of the vendor's dialects: what is accepted, refused, ignored."""

import json

import pytest

from sandbox.models import SandboxAccount, SandboxTask
from tests.sandbox import makemedia
from tests.sandbox.conftest import later

CREATE = "/sandbox/api/v1/jobs/createTask"
RECORD = "/sandbox/api/v1/jobs/recordInfo"
IMG = "https://cdn.example.com/a.png"
REF = {"prompt": "x", "mode": "reference"}


@pytest.fixture
def api(client, make_account, sandbox_timings, settings):
    key, account = make_account(credits=100_000)
    headers = {"Authorization": f"Bearer {key}"}

    class Api:
        def dialect(self, name):
            settings.KINOVI_SANDBOX_DIALECT = name

        def create(self, inputs, model="seedance-20"):
            return client.post(
                CREATE,
                data=json.dumps({"model": model, "inputs": inputs}),
                content_type="application/json",
                headers=headers,
            )

        def task(self, inputs, model="seedance-20"):
            response = self.create(inputs, model)
            assert response.status_code == 200, response.json()
            return SandboxTask.objects.get(task_id=response.json()["taskId"])

        def refused(self, inputs, model="seedance-20"):
            response = self.create(inputs, model)
            assert response.status_code == 400, response.json()
            assert not SandboxTask.objects.exists()
            assert SandboxAccount.objects.get(pk=account.pk).credits == 100_000
            return {e["path"]: e["message"] for e in response.json()["errors"]}

        def record(self, task_id):
            return client.get(RECORD, {"taskId": task_id}, headers=headers).json()

    return Api()


def test_without_output_resolution_standard_is_1080p(api):
    task = api.task({"prompt": "Dawn"})
    assert (task.resolution, task.credits_charged, task.width, task.height) == (
        "1080p",
        83 * 5,
        1920,
        1080,
    )


def test_without_output_resolution_fast_gets_its_best_720p(api):
    task = api.task({"prompt": "Dawn", "aspectRatio": "9:16"}, model="seedance2-fast")
    assert (task.resolution, task.credits_charged, task.width, task.height) == (
        "720p",
        28 * 5,
        720,
        1280,
    )


@pytest.mark.parametrize(
    "ratio, resolution, size",
    [
        ("16:9", "480p", (854, 480)),
        ("4:3", "720p", (960, 720)),
        ("3:4", "720p", (720, 960)),
        ("1:1", "1080p", (1080, 1080)),
        ("21:9", "480p", (1120, 480)),
    ],
)
def test_sizes_follow_ratio_and_resolution(api, ratio, resolution, size):
    task = api.task({"prompt": "x", "aspectRatio": ratio, "outputResolution": resolution})
    assert (task.width, task.height) == size


def test_the_fast_model_has_no_1080p(api):
    errors = api.refused({"prompt": "x", "outputResolution": "1080p"}, model="seedance2-fast")
    assert "does not offer 1080p" in errors["inputs.outputResolution"]


@pytest.mark.parametrize(
    "inputs, path",
    [
        ({"prompt": "x", "outputResolution": "4k"}, "inputs.outputResolution"),
        ({"prompt": "x", "outputResolution": "720"}, "inputs.outputResolution"),
        ({"prompt": "x", "urls": IMG}, "inputs.urls"),
        ({"prompt": "x", "urls": ["ftp://example.com/a.png"]}, "inputs.urls[0]"),
        ({"prompt": "x", "urls": [IMG, 7]}, "inputs.urls[1]"),
        ({"prompt": "x", "urls": [IMG] * 3}, "inputs.urls"),
        ({"prompt": "x", "mode": "reference", "urls": [IMG] * 13}, "inputs.urls"),
        ({}, "inputs.prompt"),
        ({"mode": "reference", "urls": [IMG]}, "inputs.prompt"),
        ({"prompt": "x", "duration": 5}, "inputs.duration"),
    ],
)
def test_docs_dialect_refusals(api, inputs, path):
    assert path in api.refused(inputs)


def test_keyframe_with_images_needs_no_prompt(api):
    task = api.task({"urls": [IMG], "outputResolution": "480p"})
    assert task.prompt == "" and task.material_urls == [{"url": IMG, "kind": None}]


def test_docs_dialect_ignores_the_readme_keys(api):
    task = api.task({"prompt": "x", "imageUrls": [IMG], "duration": "4", "seed": 7})
    assert task.material_urls == [] and task.seed != 7
    assert task.credits_charged == 83 * 4


def test_models_dialect_reads_the_readme_form(api):
    api.dialect("models")
    task = api.task(
        {
            "prompt": "x",
            "mode": "reference",
            "imageUrls": [IMG],
            "videoUrls": ["https://cdn.example.com/v.mp4"],
            "audioUrls": ["https://cdn.example.com/a.mp3"],
            "duration": 6,
            "outputResolution": "720p",
            "generate_audio": False,
            "seed": 1234,
            "urls": ["https://ignored.example.com/x.png"],
        }
    )
    assert [item["kind"] for item in task.material_urls] == ["image", "video", "audio"]
    # A declared video is surcharged at create: (40 + 8) x 6.
    assert (task.credits_charged, task.reference_video, task.seed) == (288, True, 1234)


def test_models_dialect_native_4k_is_1080p_plus_the_4k_rate(api):
    api.dialect("models")
    task = api.task({"prompt": "x", "duration": 5, "outputResolution": "4k"})
    assert (task.credits_charged, task.upscale_4k, task.resolution) == (
        (83 + 28) * 5,
        True,
        "1080p",
    )
    # upscaleResolution is not part of this form: ignored, as the vendor ignores unknown keys.
    task = api.task({"prompt": "x", "duration": 5, "upscaleResolution": "4k"})
    assert (task.credits_charged, task.upscale_4k) == (83 * 5, False)


@pytest.mark.parametrize(
    "inputs, model, path",
    [
        ({"prompt": "x", "duration": "5"}, "seedance-20", "inputs.duration"),
        ({"prompt": "x", "duration": True}, "seedance-20", "inputs.duration"),
        ({"prompt": "x", "outputResolution": "4k"}, "seedance2-fast", "inputs.outputResolution"),
        ({"prompt": "x", "seed": -2}, "seedance-20", "inputs.seed"),
        ({"prompt": "x", "seed": 2**32}, "seedance-20", "inputs.seed"),
        ({"prompt": "x", "generate_audio": "yes"}, "seedance-20", "inputs.generate_audio"),
        ({"prompt": "x", "imageUrls": [IMG] * 10}, "seedance-20", "inputs.imageUrls"),
        ({**REF, "videoUrls": [IMG] * 4}, "seedance-20", "inputs.videoUrls"),
        (
            {"prompt": "x", "mode": "reference", "imageUrls": [IMG] * 9, "videoUrls": [IMG] * 3,
             "audioUrls": [IMG]},
            "seedance-20",
            "inputs",
        ),
        ({**REF, "audioUrls": [IMG]}, "seedance-20", "inputs.audioUrls"),
        ({"prompt": "x", "videoUrls": [IMG]}, "seedance-20", "inputs.mode"),
        ({"prompt": "x", "imageUrls": [IMG] * 3}, "seedance-20", "inputs.imageUrls"),
        ({"prompt": "x" * 10_001}, "seedance-20", "inputs.prompt"),
    ],
)  # fmt: skip
def test_models_dialect_refusals(api, inputs, model, path):
    api.dialect("models")
    assert path in api.refused(inputs, model=model)


def test_models_dialect_takes_long_prompts_and_a_random_seed(api):
    api.dialect("models")
    task = api.task({"prompt": "x" * 10_000, "seed": -1})
    assert task.seed > 0 and len(task.prompt) == 10_000


def test_models_dialect_end_to_end_with_a_first_frame(api, clock, material_server):
    api.dialect("models")
    makemedia.image(material_server.root / "f.png", size=(480, 480))
    task = api.task(
        {"imageUrls": [material_server.url("f.png")], "duration": 4, "outputResolution": "480p",
         "aspectRatio": "1:1"}
    )  # fmt: skip
    later(clock, 61)
    data = api.record(task.task_id)
    assert data["status"] == "success", data["error"]
    assert (data["output"][0]["width"], data["output"][0]["height"]) == (480, 480)
    assert data["creditsUsed"] == 15 * 4


def test_a_declared_kind_must_be_the_real_kind(api, clock, material_server):
    api.dialect("models")
    makemedia.image(material_server.root / "not-a-video.mp4", size=(64, 36), fmt="PNG")
    task = api.task(
        {"prompt": "x", "mode": "reference", "imageUrls": [material_server.url("not-a-video.mp4")],
         "videoUrls": [material_server.url("not-a-video.mp4")], "duration": 4}
    )  # fmt: skip
    later(clock, 61)
    data = api.record(task.task_id)
    assert data["status"] == "fail"
    assert "Material 2" in data["error"]["message"]
    assert "was given as video but is image (png)" in data["error"]["message"]
