"""Materials end to end: uploads, a real django-q2 cluster, the sandbox over HTTP fetching the
studio's signed links, in both dialects. Each createTask body holds exactly the attached
materials' URLs and the chosen resolution; the video starts on the uploaded image; a link
that answers 404 ends in `fail`, explained and refunded."""

import io
from urllib.parse import urlsplit

import pytest
import requests
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image, ImageChops, ImageStat

from accounts.models import Membership
from generations import inputs, services
from generations.models import Status
from materials import links
from materials import services as materials_services
from mediakit import extract_frame
from sandbox.models import SandboxTask
from tests.lifecycle.conftest import history, ledger, wait_for_status
from tests.sandbox import makemedia

pytestmark = [pytest.mark.cluster, pytest.mark.django_db(transaction=True)]
DIALECTS = ["docs", "models"]


@pytest.fixture
def bob(cast, team):
    return Membership.objects.get(user=cast["bob"], workspace=team)


@pytest.fixture
def add(bob, tmp_path):
    """Uploads a real file through the library service; returns the Material."""

    def upload(name, make, **kwargs):
        path = make(tmp_path / name, **kwargs)
        material, created = materials_services.upload(
            membership=bob, uploaded=SimpleUploadedFile(name, path.read_bytes())
        )
        assert created
        return material

    return upload


@pytest.fixture
def dialect(request, settings):
    settings.KINOVI_DIALECT = request.param
    settings.KINOVI_SANDBOX_DIALECT = request.param
    return request.param


def _submit(bob, key, mode, field_values, **params):
    selection = inputs.parse({"mode": mode, **field_values}, workspace_id=bob.workspace_id)
    defaults = {
        "prompt": "@image1 in the rain" if mode == "reference" else "Make it move",
        "model": "seedance-20",
        "duration": 4,
        "aspect_ratio": "16:9",
        "mode": mode,
        "upscale_4k": False,
        "output_resolution": "480p",
    }
    return services.submit(
        membership=bob, api_key=key, materials=selection, **{**defaults, **params}
    )


def _sent(generation, dialect) -> list:
    """The materials createTask named, resolved back from the signed links, in wire order."""
    task = SandboxTask.objects.get(task_id=generation.task_id)
    raw = task.inputs
    if dialect == "docs":
        urls = raw["urls"]
    else:
        urls = raw.get("imageUrls", []) + raw.get("videoUrls", []) + raw.get("audioUrls", [])
    for url in urls:
        assert url.startswith(f"{links.settings.SITE_URL}/m/"), url
    return raw, [links.material_for(urlsplit(url).path.split("/")[2]) for url in urls]


def _difference(frame_png: bytes, picture) -> float:
    frame = Image.open(io.BytesIO(frame_png)).convert("RGB")
    with picture.file.open("rb") as handle, Image.open(handle) as img:
        expected = img.convert("RGB").resize(frame.size)
    return sum(ImageStat.Stat(ImageChops.difference(frame, expected)).mean) / 3


def _first_frame(generation, tmp_path) -> bytes:
    video = tmp_path / "out.mp4"
    video.write_bytes(requests.get(generation.video_url, timeout=20).content)
    return extract_frame(video, at="first")


@pytest.mark.parametrize("dialect", DIALECTS, indirect=True)
def test_image_to_video_from_one_image(
    sandbox_server, start_q_cluster, dialect, team, bob, add, tmp_path
):
    start = add("start.png", makemedia.image, size=(854, 480))
    other = add("other.png", makemedia.image, size=(854, 480), colors=("#00ff00", "#ff00ff"))
    start_q_cluster(KINOVI_DIALECT=dialect)
    generation = _submit(
        bob, sandbox_server.api_key(team), "keyframe", {"first_frame": start.public_id.hex}
    )

    done = wait_for_status(generation, {Status.SUCCESS, Status.FAIL}, timeout=60)

    assert done.status == Status.SUCCESS, (history(done), done.error_message)
    raw, sent = _sent(done, dialect)
    assert sent == [start]
    assert raw["outputResolution"] == "480p"
    assert done.credits_used == done.estimated_credits == 15 * 4
    first = _first_frame(done, tmp_path)
    assert _difference(first, start) < 8
    assert _difference(first, other) > 40  # the comparison tells pictures apart


@pytest.mark.parametrize("dialect", DIALECTS, indirect=True)
def test_image_to_video_from_first_and_last_frames(
    sandbox_server, start_q_cluster, dialect, team, bob, add, tmp_path
):
    first = add("first.jpg", makemedia.image, size=(480, 480), fmt="JPEG")
    last = add(
        "last.webp", makemedia.image, size=(480, 480), colors=("#ffffff", "#2a9d8f"), fmt="WEBP"
    )
    start_q_cluster(KINOVI_DIALECT=dialect)
    fields = {"first_frame": first.public_id.hex, "last_frame": last.public_id.hex}
    generation = _submit(
        bob,
        sandbox_server.api_key(team),
        "keyframe",
        fields,
        aspect_ratio="1:1",
        output_resolution="720p",
    )

    done = wait_for_status(generation, {Status.SUCCESS, Status.FAIL}, timeout=60)

    assert done.status == Status.SUCCESS, (history(done), done.error_message)
    raw, sent = _sent(done, dialect)
    assert sent == [first, last]
    assert raw["outputResolution"] == "720p"
    assert (done.width, done.height) == (720, 720)
    assert _difference(_first_frame(done, tmp_path), first) < 8


@pytest.mark.parametrize("dialect", DIALECTS, indirect=True)
def test_omni_reference_with_two_images_a_video_and_a_sound(
    sandbox_server, start_q_cluster, dialect, team, bob, add
):
    image1 = add("a.png", makemedia.image)
    video = add("b.mp4", makemedia.video, seconds=2)
    image2 = add("c.png", makemedia.image, colors=("#2a9d8f", "#264653"))
    sound = add("d.mp3", makemedia.sound, seconds=2, fmt="mp3")
    start_q_cluster(KINOVI_DIALECT=dialect)
    order = [image1, video, image2, sound]
    generation = _submit(
        bob,
        sandbox_server.api_key(team),
        "reference",
        {"references": [m.public_id.hex for m in order]},
        prompt="@image1 walks into @video1 past @image2, to @audio1",
    )

    done = wait_for_status(generation, {Status.SUCCESS, Status.FAIL}, timeout=60)

    assert done.status == Status.SUCCESS, (history(done), done.error_message)
    raw, sent = _sent(done, dialect)
    # The docs form keeps the attached order; the models form groups by kind, keeping order.
    assert sent == (order if dialect == "docs" else [image1, image2, video, sound])
    assert raw["outputResolution"] == "480p" and raw["mode"] == "reference"
    # 4 s x (15 at 480p + 4 for the reference video): estimated, reserved and charged alike.
    assert done.credits_used == done.estimated_credits == 4 * 19
    assert ledger(done) == {"reserve": -76}


def test_a_link_answering_404_fails_explained_and_refunded(
    sandbox_server, start_q_cluster, team, bob, add
):
    start = add("start.png", makemedia.image, size=(854, 480))
    generation = _submit(
        bob, sandbox_server.api_key(team), "keyframe", {"first_frame": start.public_id.hex}
    )
    # Lost from storage before Kinovi fetched it: the signed link now answers 404.
    default_storage.delete(start.file.name)
    start_q_cluster()

    done = wait_for_status(generation, {Status.SUCCESS, Status.FAIL}, timeout=60)

    assert done.status == Status.FAIL, history(done)
    assert "Material 1" in done.error_message and "HTTP 404" in done.error_message
    assert ledger(done) == {"reserve": -60, "refund": 60}
