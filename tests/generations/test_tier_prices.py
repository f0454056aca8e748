"""The studio's estimate is what the sandbox charges, for every combination the vendor sells.

Each combination is created through the real sandbox over HTTP (a reference video is served
by a local HTTP server, so the docs dialect's untyped `urls` are fetched and the surcharge
charged as the vendor would) and the credits Kinovi reports are compared with
`generations.pricing.estimate`. Both sides read their own table: a wrong row in either shows.
"""

import time

import pytest

import kinovi
from generations import pricing
from sandbox import pricing as sandbox_pricing
from sandbox.models import SandboxTask
from tests.sandbox import makemedia
from tests.sandbox.conftest import material_server  # noqa: F401 - a fixture

pytestmark = pytest.mark.django_db(transaction=True)
DURATION = 4


@pytest.fixture
def reference_files(material_server):  # noqa: F811
    makemedia.image(material_server.root / "still.png")
    makemedia.video(material_server.root / "clip.mp4", seconds=2)
    return {
        "image": material_server.url("still.png"),
        "video": material_server.url("clip.mp4"),
    }


def _charged(client, task_id: str) -> int:
    task = SandboxTask.objects.get(task_id=task_id)
    # The vendor fetches materials when generating starts; ask once it has.
    time.sleep(max(0.0, (task.starts_at - task.created_at).total_seconds()) + 0.2)
    return client.record_info(task_id).credits_used


@pytest.mark.parametrize("model, resolution, upscale, video", list(sandbox_pricing.combinations()))
def test_the_estimate_is_the_sandbox_charge(
    sandbox_server, reference_files, model, resolution, upscale, video
):
    client = kinovi.KinoviClient(sandbox_server.create_secret(), sleep=lambda s: None)
    materials = (
        [
            {"kind": "image", "url": reference_files["image"]},
            {"kind": "video", "url": reference_files["video"]},
        ]
        if video
        else []
    )
    task_id = client.create_task(
        model=model,
        prompt="A paper boat on a rainy street, @image1 @video1" if video else "A paper boat",
        duration=DURATION,
        aspect_ratio="16:9",
        mode="reference" if video else "keyframe",
        upscale_4k=upscale,
        output_resolution=resolution,
        materials=materials,
    )
    estimate = pricing.estimate(
        model=model,
        duration=DURATION,
        upscale_4k=upscale,
        output_resolution=resolution,
        reference_video=video,
    )
    assert _charged(client, task_id) == estimate.credits
    assert SandboxTask.objects.get(task_id=task_id).resolution == resolution


def test_the_seed_rows_stay_as_720p_history(db):
    from generations.models import Price

    seed = Price.objects.get(model="seedance-20", valid_from=pricing.SEED_VALID_FROM)
    assert seed.output_resolution == "720p" and seed.reference_video_credits_per_second == 0
    before_tiers = pricing.CURRENT_VALID_FROM.replace(month=3)
    old = pricing.estimate(model="seedance-20", duration=5, upscale_4k=False, at=before_tiers)
    assert old.price_id == seed.pk
    with pytest.raises(pricing.NoPrice):
        pricing.estimate(
            model="seedance-20",
            duration=5,
            upscale_4k=False,
            output_resolution="1080p",
            at=before_tiers,
        )
