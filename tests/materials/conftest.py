"""Materials fixtures: real media files, a member's membership, uploads through the page."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from accounts.models import ApiKey, Membership
from materials.models import Material
from tests.sandbox import makemedia


@pytest.fixture
def bob_membership(cast, team):
    return Membership.objects.get(user=cast["bob"], workspace=team)


@pytest.fixture
def media(tmp_path):
    """Makes real files: media.image("a.png"), media.video("b.mp4", seconds=3), ..."""

    class Media:
        def image(self, name="still.png", **kwargs):
            return makemedia.image(tmp_path / name, **kwargs)

        def video(self, name="clip.mp4", **kwargs):
            return makemedia.video(tmp_path / name, **kwargs)

        def sound(self, name="tone.mp3", **kwargs):
            kwargs.setdefault("fmt", "mp3" if name.endswith(".mp3") else "wav")
            return makemedia.sound(tmp_path / name, **kwargs)

    return Media()


def uploaded(path, name=None):
    return SimpleUploadedFile(name or path.name, path.read_bytes())


@pytest.fixture
def upload_as(login_as):
    def upload(user, workspace, path, name=None, **extra):
        client = login_as(user, workspace)
        with open(path, "rb") as handle:
            data = {"file": SimpleUploadedFile(name or path.name, handle.read())}
        return client.post(
            reverse("material_upload"), data, headers={"Accept": "application/json"}, **extra
        )

    return upload


@pytest.fixture
def make_material(team):
    """A Material row with given facts and no real file (for checks of sets of files)."""
    counter = iter(range(10_000))

    def make(kind="image", *, workspace=None, duration=None, size=1000, fmt=None):
        number = next(counter)
        return Material.objects.create(
            workspace=workspace or team,
            name=f"{kind}-{number}",
            kind=kind,
            format=fmt or {"image": "png", "video": "mp4", "audio": "mp3"}[kind],
            file=f"materials/fake/{kind}-{number}",
            sha256=f"{number:064d}",
            bytes=size,
            duration=duration,
        )

    return make


@pytest.fixture
def team_key(cast, team):
    key = ApiKey(workspace=team, label="Team key", is_default=True, created_by=cast["alice"])
    key.secret = "sk_test_materials_key_4455"
    key.status = ApiKey.Status.VERIFIED
    key.save()
    return key
