"""Signed material links: they open the file (with Range), expire, cannot be forged or
pointed at another workspace's file, and list nothing."""

import time
from urllib.parse import urlsplit

import pytest
from django.core import signing
from django.urls import reverse

from accounts.models import Workspace
from materials import links
from materials.models import Material

pytestmark = pytest.mark.django_db


@pytest.fixture
def material(cast, team, upload_as, media, settings):
    settings.SITE_URL = "https://studio.example.com"
    assert upload_as(cast["bob"], team, media.image("still.png")).status_code == 201
    return Material.objects.get()


def _path(url: str) -> str:
    assert url.startswith("https://studio.example.com/m/")
    return urlsplit(url).path


def test_a_link_serves_the_file_to_anyone_holding_it(client, material):
    response = client.get(_path(links.link_for(material)))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["Accept-Ranges"] == "bytes"
    assert b"".join(response.streaming_content) == material.file.open("rb").read()


@pytest.mark.parametrize(
    "header, start, end",
    [("bytes=0-9", 0, 9), ("bytes=10-", 10, None), ("bytes=-16", -16, None)],
)
def test_range_requests_get_206(client, material, header, start, end):
    whole = material.file.open("rb").read()
    response = client.get(_path(links.link_for(material)), headers={"Range": header})
    assert response.status_code == 206
    expected = whole[start : (end + 1 if end is not None else None)]
    assert response.content == expected
    first = start if start >= 0 else len(whole) + start
    assert response["Content-Range"] == f"bytes {first}-{first + len(expected) - 1}/{len(whole)}"


def test_an_unsatisfiable_range_is_416(client, material):
    response = client.get(_path(links.link_for(material)), headers={"Range": "bytes=999999-"})
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{material.bytes}"


def test_a_link_expires(client, material, settings):
    settings.MATERIAL_LINK_SECONDS = 60
    path = _path(links.link_for(material, now=time.time() - 61))
    assert client.get(path).status_code == 404
    fresh = _path(links.link_for(material, now=time.time() - 30))
    assert client.get(fresh).status_code == 200


def test_a_forged_or_altered_link_is_404(client, material):
    path = _path(links.link_for(material))
    token = path.split("/")[2]
    assert client.get(path.replace(token, token[:-2] + "xx")).status_code == 404
    forged = signing.dumps(
        {"m": material.public_id.hex, "w": material.workspace_id, "x": int(time.time()) + 999},
        salt=links.SALT,
        key="not the site's secret key",
    )
    assert client.get(reverse("material_file", args=[forged, "image.png"])).status_code == 404
    # The file type in the name is part of the link too.
    assert client.get(path.replace("image.png", "video.mp4")).status_code == 404


def test_a_link_for_another_workspace_opens_nothing(client, material):
    other = Workspace.objects.create(name="Other")
    token = signing.dumps(
        {"m": material.public_id.hex, "w": other.pk, "x": int(time.time()) + 999},
        salt=links.SALT,
        compress=True,
    )
    assert client.get(reverse("material_file", args=[token, "image.png"])).status_code == 404


def test_there_is_no_listing(client, material):
    for path in ["/m/", "/m/x/", f"/media/materials/{material.workspace_id}/"]:
        assert client.get(path).status_code == 404


def test_a_deleted_material_is_404(client, material, cast, team, login_as):
    path = _path(links.link_for(material))
    login_as(cast["bob"], team).post(reverse("material_delete", args=[material.public_id]))
    assert not Material.objects.exists()
    client.logout()
    assert client.get(path).status_code == 404


class PresigningStorage:
    """Stands in for django-storages' S3Storage: url(name, expire=...) presigns a GET."""

    def __init__(self, real):
        self.real = real
        self.asked = []

    def url(self, name, expire=None):
        self.asked.append((name, expire))
        return f"https://bucket.s3.example.com/{name}?X-Amz-Expires={expire}&X-Amz-Signature=abc"

    def __getattr__(self, attribute):
        return getattr(self.real, attribute)


def test_storage_links_are_the_storages_presigned_url(material, settings, monkeypatch):
    settings.MATERIAL_LINKS = "storage"
    settings.MATERIAL_LINK_SECONDS = 3600
    settings.SITE_URL = "http://127.0.0.1:8000"
    settings.KINOVI_BASE_URL = "https://kinovi.ai/api/v1"
    storage = PresigningStorage(material.file.storage)
    monkeypatch.setattr(material.file, "storage", storage)
    url = links.link_for(material)
    assert url.startswith("https://bucket.s3.example.com/materials/")
    assert storage.asked == [(material.file.name, 3600)]
    # The bucket is reachable even though this site is not.
    assert links.unreachable_reason() is None


@pytest.mark.parametrize(
    "variable, value, message",
    [
        ("MATERIAL_LINKS", "s3", "MATERIAL_LINKS must be site or storage, not 's3'"),
        ("MATERIAL_LINK_SECONDS", "10", "MATERIAL_LINK_SECONDS must be at least 60"),
    ],
)
def test_a_bad_link_setting_stops_start_up(variable, value, message):
    import os
    import subprocess
    import sys

    from django.conf import settings as django_settings

    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=django_settings.BASE_DIR,
        env={**os.environ, variable: value, "DEBUG": "true"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and message in result.stderr
