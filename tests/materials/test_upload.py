"""Uploads: probed whatever the name says, refused with a clear message outside the limits
(one test per limit; each stores nothing), deduplicated, capped before the body is read."""

import os

import pytest
from django.core.files.storage import default_storage
from django.urls import reverse

from accounts.models import AuditEntry
from materials.models import Material
from tests.sandbox import makemedia

pytestmark = pytest.mark.django_db


def stored_files(settings) -> list:
    root = settings.MEDIA_ROOT / "materials"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_an_image_is_probed_stored_thumbnailed_and_audited(cast, team, upload_as, media, settings):
    response = upload_as(cast["bob"], team, media.image("boat.png", size=(640, 360)))
    assert response.status_code == 201, response.content
    material = Material.objects.get()
    assert (material.kind, material.format, material.width, material.height) == (
        "image",
        "png",
        640,
        360,
    )
    assert material.name == "boat.png" and len(material.sha256) == 64
    assert default_storage.exists(material.file.name) and material.thumbnail
    assert response.json()["material"]["id"] == material.public_id.hex
    entry = AuditEntry.objects.get(action="material.uploaded")
    assert entry.actor == cast["bob"] and entry.workspace == team


def test_a_video_and_audio_are_probed(cast, team, upload_as, media):
    assert upload_as(cast["bob"], team, media.video("walk.mov", seconds=3)).status_code == 201
    assert upload_as(cast["bob"], team, media.sound("tone.wav", seconds=2)).status_code == 201
    video = Material.objects.get(kind="video")
    audio = Material.objects.get(kind="audio")
    assert video.format == "mov" and 2.9 <= video.duration <= 3.1 and video.thumbnail
    assert audio.format == "wav" and 1.9 <= audio.duration <= 2.1 and not audio.thumbnail


def test_the_same_file_is_kept_once(cast, team, upload_as, media):
    path = media.image("one.png")
    assert upload_as(cast["bob"], team, path).status_code == 201
    again = upload_as(cast["alice"], team, path, name="renamed.png")
    assert again.status_code == 200 and "already in the library" in again.json()["message"]
    assert Material.objects.count() == 1


def _refused(response, settings, words: str) -> None:
    assert response.status_code in (400, 413), response.content
    assert words in response.json()["message"], response.json()
    assert not Material.objects.exists()
    assert stored_files(settings) == []


def test_a_text_file_named_png_is_refused(cast, team, upload_as, tmp_path, settings):
    fake = tmp_path / "cat.png"
    fake.write_text("this is not an image at all, just words\n" * 20)
    _refused(upload_as(cast["bob"], team, fake), settings, "not an image, video or audio file")


def test_a_truncated_mp4_is_refused(cast, team, upload_as, media, tmp_path, settings):
    whole = media.video("whole.mp4", seconds=3).read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole[: len(whole) * 2 // 3])
    _refused(upload_as(cast["bob"], team, cut), settings, "cut.mp4 is not an image, video")


def test_a_format_kinovi_does_not_take_is_refused(cast, team, upload_as, tmp_path, settings):
    gif = makemedia.image(tmp_path / "anim.gif", fmt="GIF")
    _refused(upload_as(cast["bob"], team, gif), settings, "Kinovi takes images as jpeg, png, webp")


def test_an_image_of_30_mb_is_refused(cast, team, upload_as, tmp_path, settings):
    # Random pixels do not compress: a 30 MB+ PNG.
    from PIL import Image

    big = tmp_path / "huge.png"
    Image.frombytes("RGB", (3300, 3300), os.urandom(3300 * 3300 * 3)).save(big, compress_level=0)
    assert big.stat().st_size >= 30 * 1024 * 1024
    _refused(upload_as(cast["bob"], team, big), settings, "images must be under 30 MB each")


def test_a_video_over_15_seconds_is_refused(cast, team, upload_as, media, settings):
    _refused(
        upload_as(cast["bob"], team, media.video("long.mp4", seconds=16)),
        settings,
        "videos may last 15 s in all",
    )


def test_audio_over_15_seconds_is_refused(cast, team, upload_as, media, settings):
    _refused(
        upload_as(cast["bob"], team, media.sound("long.mp3", seconds=16)),
        settings,
        "audio may last 15 s in all",
    )


def test_a_body_over_the_cap_is_refused_before_it_is_read(cast, team, login_as, settings):
    client = login_as(cast["bob"], team)
    # Only the declared length is looked at: the body itself is a few bytes, never parsed.
    response = client.generic(
        "POST",
        reverse("material_upload"),
        b"x" * 10,
        content_type="multipart/form-data; boundary=zzz",
        headers={"Accept": "application/json"},
        CONTENT_LENGTH=str(52 * 1024 * 1024),
    )
    _refused(response, settings, "larger than 50 MB")


def test_the_upload_checks_csrf_after_the_size(cast, team, media, settings, make_user):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(cast["bob"], backend="django.contrib.auth.backends.ModelBackend")
    with open(media.image(), "rb") as handle:
        response = client.post(reverse("material_upload"), {"file": handle})
    assert response.status_code == 403
    assert not Material.objects.exists()


def test_viewers_cannot_upload(cast, team, upload_as, media, settings):
    response = upload_as(cast["vera"], team, media.image())
    assert response.status_code == 403
    assert not Material.objects.exists()
