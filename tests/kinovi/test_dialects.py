"""The one wire table (kinovi/schema.py WIRE) in both dialects: the bodies it writes, the
start-up check of KINOVI_DIALECT, and each dialect's body read by the sandbox speaking it
(same materials, same resolution, same charge), plus what a mismatch would cost."""

import os
import subprocess
import sys
import time

import pytest
from django.conf import settings as django_settings

import kinovi
from kinovi.schema import WIRE, build_create_body
from sandbox.models import SandboxTask
from tests.sandbox import makemedia
from tests.sandbox.conftest import material_server  # noqa: F401 - a fixture

MATERIALS = [
    {"kind": "image", "url": "https://files.example/a.png"},
    {"kind": "video", "url": "https://files.example/b.mp4"},
    {"kind": "image", "url": "https://files.example/c.webp"},
    {"kind": "audio", "url": "https://files.example/d.mp3"},
]
BASE = {
    "model": "seedance-20",
    "prompt": "@image1 walks into @video1, @image2 behind, to @audio1",
    "duration": 6,
    "aspect_ratio": "9:16",
    "mode": "reference",
}


def test_docs_dialect_sends_one_urls_array_and_a_string_duration():
    body = build_create_body(
        **BASE, upscale_4k=True, output_resolution="720p", materials=MATERIALS, dialect="docs"
    )
    assert body["inputs"] == {
        "prompt": BASE["prompt"],
        "duration": "6",
        "aspectRatio": "9:16",
        "mode": "reference",
        "outputResolution": "720p",
        "upscaleResolution": "4k",
        "urls": [m["url"] for m in MATERIALS],
    }


def test_models_dialect_splits_the_urls_by_kind_and_sends_an_integer_duration():
    body = build_create_body(
        **BASE, upscale_4k=False, output_resolution="480p", materials=MATERIALS, dialect="models"
    )
    assert body["inputs"] == {
        "prompt": BASE["prompt"],
        "duration": 6,
        "aspectRatio": "9:16",
        "mode": "reference",
        "outputResolution": "480p",
        "imageUrls": ["https://files.example/a.png", "https://files.example/c.webp"],
        "videoUrls": ["https://files.example/b.mp4"],
        "audioUrls": ["https://files.example/d.mp3"],
    }


def test_models_dialect_4k_is_native_and_needs_1080p():
    body = build_create_body(**BASE, upscale_4k=True, output_resolution="1080p", dialect="models")
    assert body["inputs"]["outputResolution"] == "4k"
    assert "upscaleResolution" not in body["inputs"]
    with pytest.raises(kinovi.InvalidInput, match="native 4K output: choose 1080p"):
        build_create_body(**BASE, upscale_4k=True, output_resolution="720p", dialect="models")


def test_every_field_has_both_columns():
    assert all(set(columns) == {"docs", "models"} for columns in WIRE.values())


def test_a_bad_material_or_dialect_is_refused_before_sending():
    with pytest.raises(kinovi.InvalidInput, match="kind and an http"):
        build_create_body(**BASE, upscale_4k=False, materials=[{"kind": "image", "url": "x"}])
    with pytest.raises(ValueError, match="dialect must be one of docs, models"):
        build_create_body(**BASE, upscale_4k=False, dialect="readme")


def test_a_bad_setting_stops_start_up_naming_the_variable():
    result = subprocess.run(  # noqa: S603 - our own manage.py with a fixed argument list
        [sys.executable, "manage.py", "check"],
        cwd=django_settings.BASE_DIR,
        env={**os.environ, "KINOVI_DIALECT": "readme", "DEBUG": "true"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "KINOVI_DIALECT must be docs or models, not 'readme'" in result.stderr


@pytest.fixture
def served(material_server):  # noqa: F811
    makemedia.image(material_server.root / "a.png")
    makemedia.image(material_server.root / "c.png", colors=("#2a9d8f", "#264653"))
    makemedia.video(material_server.root / "b.mp4", seconds=2)
    makemedia.sound(material_server.root / "d.mp3", seconds=2, fmt="mp3")
    return [
        {"kind": "image", "url": material_server.url("a.png")},
        {"kind": "video", "url": material_server.url("b.mp4")},
        {"kind": "image", "url": material_server.url("c.png")},
        {"kind": "audio", "url": material_server.url("d.mp3")},
    ]


def _create(sandbox_server, dialect, materials, **changes):
    client = kinovi.KinoviClient(sandbox_server.create_secret(), dialect=dialect)
    params = {**BASE, "upscale_4k": False, "output_resolution": "720p", **changes}
    task_id = client.create_task(materials=materials, **params)
    return client, SandboxTask.objects.get(task_id=task_id)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("dialect", ["docs", "models"])
def test_the_sandbox_speaking_the_same_dialect_gets_every_material(
    sandbox_server, settings, served, dialect
):
    settings.KINOVI_DIALECT = dialect
    settings.KINOVI_SANDBOX_DIALECT = dialect
    client, task = _create(sandbox_server, None, served)
    assert [item["url"] for item in task.material_urls] == [
        served[i]["url"] for i in ((0, 1, 2, 3) if dialect == "docs" else (0, 2, 1, 3))
    ]
    assert task.resolution == "720p" and task.duration == 6
    time.sleep(settings.KINOVI_SANDBOX_WAIT_SECONDS + 0.2)
    info = client.record_info(task.task_id)
    assert info.status in ("generating", "success"), info.error
    # The reference-video surcharge is charged either way: 6 s x (40 + 8).
    assert info.credits_used == 6 * 48
    fetched = SandboxTask.objects.get(pk=task.pk).materials
    assert sorted(m["kind"] for m in fetched) == ["audio", "image", "image", "video"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("studio, sandbox", [("models", "docs"), ("docs", "models")])
def test_a_mismatched_dialect_is_refused_not_charged(
    sandbox_server, settings, served, studio, sandbox
):
    # The duration's type differs between the forms, so a wrong setting shows at once (a 400,
    # nothing charged) instead of silently dropping the materials the other keys carry.
    settings.KINOVI_SANDBOX_DIALECT = sandbox
    with pytest.raises(kinovi.InvalidRequest) as refused:
        _create(sandbox_server, studio, served)
    assert any(e["path"] == "inputs.duration" for e in refused.value.errors)
    assert not SandboxTask.objects.exists()
