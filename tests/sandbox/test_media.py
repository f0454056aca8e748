"""Sandbox outputs are real H.264 files whose size and duration match what recordInfo says."""

import json
import subprocess

import imageio_ffmpeg
import pytest
from django.conf import settings

from sandbox import media
from sandbox.models import SandboxTask
from tests.sandbox.conftest import later
from tests.sandbox.mp4 import mp4_info, png_size

CREATE = "/sandbox/api/v1/jobs/createTask"
RECORD = "/sandbox/api/v1/jobs/recordInfo"


@pytest.fixture
def finished(client, make_account, sandbox_timings, clock):
    key, _ = make_account()
    headers = {"Authorization": f"Bearer {key}"}

    def make(*, duration="4", aspect_ratio="16:9", prompt="Neon koi in the rain", **extra):
        inputs = {"prompt": prompt, "duration": duration, "aspectRatio": aspect_ratio, **extra}
        inputs.setdefault("outputResolution", "480p")
        task_id = client.post(
            CREATE,
            data=json.dumps({"model": "seedance2-fast", "inputs": inputs}),
            content_type="application/json",
            headers=headers,
        ).json()["taskId"]
        later(clock, 61)
        return client.get(RECORD, {"taskId": task_id}, headers=headers).json()

    return make


@pytest.mark.parametrize(
    "aspect_ratio, duration, size",
    [("16:9", "4", (854, 480)), ("9:16", "7", (480, 854)), ("21:9", "5", (1120, 480))],
)
def test_the_file_is_what_record_info_reports(finished, client, aspect_ratio, duration, size):
    data = finished(duration=duration, aspect_ratio=aspect_ratio)
    output = data["output"][0]
    assert (output["width"], output["height"]) == size
    task = SandboxTask.objects.get(task_id=data["taskId"])
    video = settings.MEDIA_ROOT / task.video_path
    info = mp4_info(video)
    assert (info["width"], info["height"]) == size
    assert info["duration"] == pytest.approx(int(duration), abs=0.05)
    # faststart: the index comes before the media, so a browser can start playing at once.
    assert info["boxes"].index("moov") < info["boxes"].index("mdat")
    assert png_size(settings.MEDIA_ROOT / task.last_frame_path) == size
    # The bundled ffmpeg agrees: H.264, yuv420p (what browsers play), the same size.
    probe = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(video)],
        capture_output=True,
        text=True,
        check=False,
    ).stderr
    assert "Video: h264" in probe and "yuv420p" in probe and f"{size[0]}x{size[1]}" in probe
    assert f"Duration: 00:00:{int(duration):02d}.00" in probe


def test_video_and_last_frame_are_served_with_ranges(finished, client):
    output = finished()["output"][0]
    path = output["url"].removeprefix("http://testserver")
    whole = client.get(path)
    assert whole.status_code == 200
    assert whole["Content-Type"] == "video/mp4" and whole["Accept-Ranges"] == "bytes"
    content = b"".join(whole.streaming_content)
    assert content[4:8] == b"ftyp"

    part = client.get(path, headers={"Range": "bytes=0-99"})
    assert part.status_code == 206
    assert part.content == content[:100]
    assert part["Content-Range"] == f"bytes 0-99/{len(content)}"
    tail = client.get(path, headers={"Range": "bytes=-10"})
    assert tail.content == content[-10:]
    open_ended = client.get(path, headers={"Range": f"bytes={len(content) - 5}-"})
    assert open_ended.content == content[-5:]
    beyond = client.get(path, headers={"Range": f"bytes={len(content)}-"})
    assert beyond.status_code == 416

    image = client.get(output["lastFrameImage"].removeprefix("http://testserver"))
    assert image["Content-Type"] == "image/png"
    assert b"".join(image.streaming_content)[:4] == b"\x89PNG"


def test_files_are_rendered_once_and_cached(finished, client, monkeypatch):
    output = finished()["output"][0]
    calls = []
    monkeypatch.setattr(media, "render", lambda *args: calls.append(args))
    client.get(output["url"].removeprefix("http://testserver"))
    assert calls == []


def test_no_media_before_success_or_for_failures(client, make_account, sandbox_timings, clock):
    key, _ = make_account()
    headers = {"Authorization": f"Bearer {key}"}
    ids = []
    for prompt in ("Rain", "Rain [sandbox:fail]"):
        ids.append(
            client.post(
                CREATE,
                data=json.dumps({"model": "seedance-20", "inputs": {"prompt": prompt}}),
                content_type="application/json",
                headers=headers,
            ).json()["taskId"]
        )
    assert client.get(f"/sandbox/media/{ids[0]}/video.mp4").status_code == 404
    later(clock, 61)
    assert client.get(f"/sandbox/media/{ids[1]}/video.mp4").status_code == 404
    assert client.get("/sandbox/media/task_nope/last-frame.png").status_code == 404


def test_a_missing_font_still_renders_a_pattern(finished, monkeypatch, settings):
    monkeypatch.setattr(media, "FONT_CANDIDATES", ())
    data = finished(prompt="No font here")
    task = SandboxTask.objects.get(task_id=data["taskId"])
    assert mp4_info(settings.MEDIA_ROOT / task.video_path)["width"] == 854


def test_caption_drops_markers_and_keeps_the_first_words():
    assert media.caption("[sandbox:fail] A  very long prompt about many things indeed") == (
        "A very long prompt about many"
    )
    assert media.caption("[sandbox:error]") == "Kinovi sandbox"
