"""The sandbox fetches materials over HTTP, checks them, and renders from them.

Materials are served by a real local HTTP server; createTask and recordInfo go through the
sandbox's views. A material the vendor would refuse ends the task in `fail`, refunded.
"""

import io
import json
import re

import pytest
from django.conf import settings as django_settings
from PIL import Image, ImageChops, ImageStat

from mediakit import extract_frame, probe
from sandbox import materials
from sandbox.media import media_dir
from sandbox.models import SandboxAccount, SandboxTask
from tests.sandbox import makemedia
from tests.sandbox.conftest import later

CREATE = "/sandbox/api/v1/jobs/createTask"
RECORD = "/sandbox/api/v1/jobs/recordInfo"
START = 10_000


@pytest.fixture
def vendor(client, make_account, sandbox_timings, clock, material_server):
    key, account = make_account(credits=START)
    headers = {"Authorization": f"Bearer {key}"}

    class Vendor:
        files = material_server

        def put(self, name, maker, **kwargs):
            maker(material_server.root / name, **kwargs)
            return material_server.url(name)

        def create(self, inputs, *, model="seedance-20"):
            inputs = {"outputResolution": "480p", "duration": "4", **inputs}
            return client.post(
                CREATE,
                data=json.dumps({"model": model, "inputs": inputs}),
                content_type="application/json",
                headers=headers,
            )

        def finish(self, inputs, **kwargs):
            response = self.create(inputs, **kwargs)
            assert response.status_code == 200, response.json()
            later(clock, 61)
            return self.record(response.json()["taskId"]).json()

        def record(self, task_id):
            return client.get(RECORD, {"taskId": task_id}, headers=headers)

        def credits(self):
            return SandboxAccount.objects.get(pk=account.pk).credits

    return Vendor()


def video_file(data) -> object:
    task = SandboxTask.objects.get(task_id=data["taskId"])
    return django_settings.MEDIA_ROOT / task.video_path


def difference(frame_png: bytes, picture) -> float:
    """Mean absolute difference per channel (0..255) of a frame and a picture at its size."""
    frame = Image.open(io.BytesIO(frame_png)).convert("RGB")
    with Image.open(picture) as img:
        expected = img.convert("RGB").resize(frame.size)
    return sum(ImageStat.Stat(ImageChops.difference(frame, expected)).mean) / 3


def test_image_to_video_starts_on_the_uploaded_image(vendor, tmp_path):
    url = vendor.put("first.png", makemedia.image, size=(854, 480))
    other = makemedia.image(tmp_path / "other.png", size=(854, 480), colors=("#00ff00", "#ff00ff"))
    data = vendor.finish({"urls": [url], "prompt": "Make it move", "aspectRatio": "16:9"})
    assert data["status"] == "success", data["error"]
    (output,) = data["output"]
    video = video_file(data)
    info = probe(video)
    # recordInfo reports the file's real size, at the asked resolution.
    assert (output["width"], output["height"]) == (info.width, info.height) == (854, 480)
    assert info.duration == pytest.approx(4, abs=0.1)
    first = extract_frame(video, at="first")
    assert difference(first, vendor.files.root / "first.png") < 8
    assert difference(first, other) > 40  # the comparison does tell pictures apart
    assert data["creditsUsed"] == 15 * 4 == START - vendor.credits()


def test_first_and_last_frame_and_no_prompt_needed(vendor):
    first = vendor.put("a.jpg", makemedia.image, size=(400, 400), fmt="JPEG")
    last = vendor.put(
        "b.webp", makemedia.image, size=(300, 300), colors=("#ffffff", "#2a9d8f"), fmt="WEBP"
    )
    data = vendor.finish({"urls": [first, last], "aspectRatio": "1:1", "duration": "5"})
    assert data["status"] == "success", data["error"]
    video = video_file(data)
    assert (probe(video).width, probe(video).height) == (480, 480)
    assert difference(extract_frame(video, at="first"), vendor.files.root / "a.jpg") < 8
    assert difference(extract_frame(video, at="last"), vendor.files.root / "b.webp") < 8
    assert difference(extract_frame(video, at="last"), vendor.files.root / "a.jpg") > 40


def test_omni_reference_two_images_a_video_and_a_sound(vendor):
    urls = [
        vendor.put("ref1.png", makemedia.image, colors=("#00ff00", "#00ff00")),
        vendor.put("ref2.png", makemedia.image),
        vendor.put("clip.mov", makemedia.video, seconds=3, fmt="mov"),
        vendor.put("voice", makemedia.sound, seconds=3, fmt="mp3"),  # no extension at all
    ]
    data = vendor.finish(
        {"mode": "reference", "urls": urls, "prompt": "@image1 meets @image2 to @audio1"}
    )
    assert data["status"] == "success", data["error"]
    task = SandboxTask.objects.get(task_id=data["taskId"])
    assert [(m["kind"], m["format"]) for m in task.materials] == [
        ("image", "png"),
        ("image", "png"),
        ("video", "mov"),
        ("audio", "mp3"),
    ]
    # docs' urls do not say which file is a video: the surcharge comes once it is fetched.
    assert task.reference_video and data["creditsUsed"] == (15 + 4) * 4 == START - vendor.credits()
    # The reference strip: the first thumbnail (solid green) sits in the top-left corner.
    frame = Image.open(io.BytesIO(extract_frame(video_file(data)))).convert("RGB")
    margin = max(4, frame.height // 40)
    corner = frame.crop((margin + 4, margin + 4, margin + 20, margin + 20))
    red, green, blue = ImageStat.Stat(corner).mean
    assert green > 180 and red < 80 and blue < 80, (red, green, blue)


def test_a_material_that_answers_404_fails_the_task_and_refunds(vendor):
    good = vendor.put("good.png", makemedia.image)
    data = vendor.finish({"urls": [good, vendor.files.url("gone.png")]})
    assert data["status"] == "fail" and data["output"] is None
    assert data["error"]["code"] == materials.FETCH_FAILED
    assert "Material 2" in data["error"]["message"] and "HTTP 404" in data["error"]["message"]
    assert "gone.png" in data["error"]["message"]
    assert vendor.credits() == START  # refunded
    assert data["creditsUsed"] == 60  # recordInfo still shows the original charge


def test_a_material_that_cannot_be_reached_fails_the_task(vendor):
    data = vendor.finish({"urls": ["http://127.0.0.1:9/nothing.png"]})
    assert (data["status"], data["error"]["code"]) == ("fail", materials.FETCH_FAILED)
    assert "could not be downloaded" in data["error"]["message"]
    assert vendor.credits() == START


def test_redirects_are_followed_to_http_only(vendor):
    vendor.put("moved.png", makemedia.image)
    moved = vendor.finish({"urls": [vendor.files.url("redirect/moved.png")]})
    assert moved["status"] == "success", moved["error"]
    data = vendor.finish({"urls": [vendor.files.url("redirect-to/file:///etc/passwd")]})
    assert data["status"] == "fail"
    assert "not http(s)" in data["error"]["message"]


def _text_named_png(root):
    (root / "cat.png").write_text("not a picture\n" * 20)
    return ["cat.png"]


def _truncated_mp4(root):
    data = makemedia.video(root / "whole.mp4", seconds=3).read_bytes()
    (root / "cut.mp4").write_bytes(data[: len(data) // 2])
    return ["ref.png", "cut.mp4"]


def _images(count):
    def make(root):
        for index in range(count):
            makemedia.image(root / f"i{index}.png", size=(64, 36))
        return [f"i{index}.png" for index in range(count)]

    return make


def _videos(*seconds):
    def make(root):
        for index, length in enumerate(seconds):
            makemedia.video(root / f"v{index}.mp4", seconds=length, size="64x48")
        return [f"v{index}.mp4" for index in range(len(seconds))]

    return make


def _sounds(*seconds, with_image=True):
    def make(root):
        for index, length in enumerate(seconds):
            makemedia.sound(root / f"s{index}.wav", seconds=length, fmt="wav")
        return (["ref.png"] if with_image else []) + [f"s{i}.wav" for i in range(len(seconds))]

    return make


def _gif(root):
    makemedia.image(root / "anim.gif", fmt="GIF")
    return ["anim.gif"]


@pytest.mark.parametrize(
    "mode, make, message",
    [
        ("reference", _text_named_png, "Material 1 .*cat.png.* not a usable .* not an image"),
        ("reference", _truncated_mp4, "Material 2 .*cut.mp4.* not a usable"),
        ("reference", _images(10), "At most 9 image materials; got 10"),
        ("reference", _videos(2, 2, 2, 2), "At most 3 video materials; got 4"),
        ("reference", _videos(8, 8), "2 to 15 s combined; these last 16.0 s"),
        ("reference", _videos(1), "2 to 15 s combined; these last 1.0 s"),
        ("reference", _sounds(2, 2, 2, 2), "At most 3 audio materials; got 4"),
        ("reference", _sounds(8, 8), "at most 15 s combined; these last 16.0 s"),
        ("reference", _sounds(3, with_image=False), "Audio cannot be the only reference"),
        ("reference", _gif, "is gif; image must be jpeg, png, webp"),
        ("keyframe", _videos(3), "Keyframe mode takes images only"),
    ],
)
def test_materials_outside_the_limits_fail_with_a_clear_message(vendor, mode, make, message):
    root = vendor.files.root
    makemedia.image(root / "ref.png", size=(64, 36))
    urls = [vendor.files.url(name) for name in make(root)]
    data = vendor.finish({"mode": mode, "urls": urls, "prompt": "Go"})
    assert data["status"] == "fail", data
    assert data["error"]["code"] == materials.MATERIAL_REFUSED
    assert re.search(message, data["error"]["message"]), data["error"]["message"]
    assert vendor.credits() == START
    assert not SandboxTask.objects.get(task_id=data["taskId"]).materials


@pytest.mark.parametrize(
    "limit, value, message",
    [
        ("MAX_IMAGE_BYTES", 1000, "images must be under 30 MB each"),
        ("MAX_DOWNLOAD_BYTES", 1000, "is larger than"),
    ],
)
def test_size_limits(vendor, monkeypatch, limit, value, message):
    monkeypatch.setattr(materials, limit, value)
    url = vendor.put("big.png", makemedia.image, size=(640, 480))
    data = vendor.finish({"urls": [url], "mode": "reference", "prompt": "Big"})
    assert data["status"] == "fail" and message in data["error"]["message"]
    assert vendor.credits() == START


def test_combined_video_and_audio_sizes(vendor, monkeypatch):
    monkeypatch.setattr(materials, "MAX_VIDEO_BYTES", 100)
    url = vendor.put("v.mp4", makemedia.video, seconds=3)
    data = vendor.finish({"urls": [url], "mode": "reference", "prompt": "x"})
    assert "under 50 MB in all" in data["error"]["message"]
    monkeypatch.setattr(materials, "MAX_AUDIO_BYTES", 100)
    urls = [vendor.put("p.png", makemedia.image), vendor.put("s.wav", makemedia.sound, fmt="wav")]
    data = vendor.finish({"urls": urls, "mode": "reference", "prompt": "x"})
    assert "under 15 MB in all" in data["error"]["message"]


def test_a_surcharge_the_account_cannot_pay_fails_the_task(vendor, make_account, client, clock):
    url = vendor.put("v.mp4", makemedia.video, seconds=3)
    key, account = make_account(credits=60)  # 15 x 4 at 480p, not the 4 x 4 surcharge
    headers = {"Authorization": f"Bearer {key}"}
    inputs = {"urls": [url], "mode": "reference", "prompt": "x", "outputResolution": "480p"}
    task_id = client.post(
        CREATE,
        data=json.dumps({"model": "seedance-20", "inputs": {**inputs, "duration": "4"}}),
        content_type="application/json",
        headers=headers,
    ).json()["taskId"]
    later(clock, 61)
    data = client.get(RECORD, {"taskId": task_id}, headers=headers).json()
    assert data["status"] == "fail" and "surcharge" in data["error"]["message"]
    assert SandboxAccount.objects.get(pk=account.pk).credits == 60


def test_materials_are_fetched_once_when_generation_starts(vendor, clock):
    url = vendor.put("once.png", makemedia.image)
    task_id = vendor.create({"urls": [url]}).json()["taskId"]
    task = SandboxTask.objects.get(task_id=task_id)
    assert task.materials_checked_at is None  # the create did not wait for a download
    assert vendor.record(task_id).json()["status"] == "waiting"
    assert SandboxTask.objects.get(pk=task.pk).materials_checked_at is None
    later(clock, 11)  # generating: the sandbox fetches now
    assert vendor.record(task_id).json()["status"] == "generating"
    task.refresh_from_db()
    assert task.materials_checked_at is not None and len(task.materials) == 1
    (vendor.files.root / "once.png").unlink()  # gone later: the task keeps what it fetched
    later(clock, 50)
    assert vendor.record(task_id).json()["status"] == "success"


def test_a_create_never_waits_for_another_tasks_download(vendor, clock):
    slow = vendor.put("late.png", makemedia.image)
    first = vendor.create({"urls": [slow]}).json()["taskId"]
    later(clock, 61)  # ended, but nobody asked about it yet
    assert vendor.create({"prompt": "Another"}).status_code == 200
    task = SandboxTask.objects.get(task_id=first)
    assert task.materials_checked_at is None and task.settled_at is None
    assert vendor.record(first).json()["status"] == "success"
    task.refresh_from_db()
    assert task.materials_checked_at is not None and task.settled_at is not None


def test_failed_fetches_leave_no_files(vendor):
    good = vendor.put("good.png", makemedia.image)
    data = vendor.finish({"urls": [good, vendor.files.url("missing.png")]})
    assert data["status"] == "fail"
    task = SandboxTask.objects.get(task_id=data["taskId"])
    assert not list(media_dir(task).glob("materials-*"))
