"""The limits on a set of attached files, checked when a video is submitted: one test per
limit, each with a clear message and nothing stored (no generation, no attachment)."""

import pytest
from django.urls import reverse

from generations.models import Generation
from materials.models import GenerationMaterial

pytestmark = pytest.mark.django_db
MB = 1024 * 1024


@pytest.fixture(autouse=True)
def _reachable(settings):
    settings.SITE_URL = "https://studio.example.com"


def _submit(login_as, cast, team, key, materials, mode="reference"):
    data = {
        "prompt": "A kite over dunes, in the style of @image1",
        "model": "seedance-20",
        "duration": "5",
        "aspect_ratio": "16:9",
        "mode": mode,
        "api_key": key.pk,
    }
    if mode == "reference":
        data["references"] = [m.public_id.hex for m in materials]
    else:
        data["first_frame"] = materials[0].public_id.hex
        if len(materials) > 1:
            data["last_frame"] = materials[1].public_id.hex
    return login_as(cast["bob"], team).post(reverse("generation_new"), data)


def _refused(response, words):
    assert response.status_code == 200
    assert words in response.content.decode()
    assert not Generation.objects.exists()
    assert not GenerationMaterial.objects.exists()


def test_at_most_9_images(login_as, cast, team, team_key, make_material):
    files = [make_material("image") for _ in range(10)]
    _refused(_submit(login_as, cast, team, team_key, files), "10 images are attached")


def test_at_most_3_videos(login_as, cast, team, team_key, make_material):
    files = [make_material("video", duration=2) for _ in range(4)]
    _refused(_submit(login_as, cast, team, team_key, files), "4 videos are attached")


def test_at_most_3_audio(login_as, cast, team, team_key, make_material):
    files = [make_material("image")] + [make_material("audio", duration=2) for _ in range(4)]
    _refused(_submit(login_as, cast, team, team_key, files), "4 audios are attached")


def test_at_most_12_in_all(login_as, cast, team, team_key, make_material):
    files = [make_material("image") for _ in range(9)]
    files += [make_material("video", duration=2) for _ in range(3)]
    files += [make_material("audio", duration=2)]
    _refused(_submit(login_as, cast, team, team_key, files), "13 files are attached")


def test_videos_last_2_to_15_seconds_together(login_as, cast, team, team_key, make_material):
    files = [make_material("video", duration=6) for _ in range(3)]
    _refused(_submit(login_as, cast, team, team_key, files), "The videos last 18.0 s together")
    short = [make_material("video", duration=1)]
    _refused(_submit(login_as, cast, team, team_key, short), "The videos last 1.0 s together")


def test_audio_lasts_at_most_15_seconds_together(login_as, cast, team, team_key, make_material):
    files = [make_material("image")] + [make_material("audio", duration=8) for _ in range(2)]
    _refused(_submit(login_as, cast, team, team_key, files), "The audio lasts 16.0 s together")


def test_audio_is_never_alone(login_as, cast, team, team_key, make_material):
    _refused(
        _submit(login_as, cast, team, team_key, [make_material("audio", duration=3)]),
        "Audio cannot be the only reference",
    )


def test_videos_under_50_mb_together(login_as, cast, team, team_key, make_material):
    files = [make_material("video", duration=3, size=20 * MB) for _ in range(3)]
    _refused(_submit(login_as, cast, team, team_key, files), "The videos are 50 MB or more")


def test_audio_under_15_mb_together(login_as, cast, team, team_key, make_material):
    files = [make_material("image")] + [
        make_material("audio", duration=3, size=8 * MB) for _ in range(2)
    ]
    _refused(_submit(login_as, cast, team, team_key, files), "The audio files are 15 MB or more")


def test_frames_must_be_images(login_as, cast, team, team_key, make_material):
    files = [make_material("video", duration=3)]
    _refused(
        _submit(login_as, cast, team, team_key, files, mode="keyframe"),
        "First and last frames must be images",
    )


def test_another_workspaces_file_cannot_be_attached(
    login_as, cast, team, team_key, make_material, make_user
):
    from accounts.models import Workspace

    other = Workspace.objects.create(name="Other")
    _refused(
        _submit(login_as, cast, team, team_key, [make_material("image", workspace=other)]),
        "not in this workspace&#x27;s library",
    )


def test_a_real_key_with_a_local_site_is_refused(
    login_as, cast, team, team_key, make_material, settings
):
    settings.SITE_URL = "http://127.0.0.1:8000"
    settings.KINOVI_BASE_URL = "https://kinovi.ai/api/v1"
    _refused(
        _submit(login_as, cast, team, team_key, [make_material("image")], mode="keyframe"),
        "SITE_URL (http://127.0.0.1:8000) is not reachable from the internet",
    )


def test_the_sandbox_on_this_site_can_fetch_from_localhost(
    login_as, cast, team, team_key, make_material, settings
):
    settings.SITE_URL = "http://127.0.0.1:8000"
    settings.KINOVI_BASE_URL = "http://127.0.0.1:8000/sandbox/api/v1"
    image = make_material("image")
    response = _submit(login_as, cast, team, team_key, [image], mode="keyframe")
    assert response.status_code == 302, response.content.decode()[-2000:]
    link = GenerationMaterial.objects.get()
    assert (link.material, link.role, link.position) == (image, "first_frame", 0)
    assert Generation.objects.get().mode == "keyframe"
