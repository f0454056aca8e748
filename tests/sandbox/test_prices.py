"""The sandbox charges the vendor's current prices for every combination it sells.

`sandbox.pricing.combinations()` and `price()` are what a studio test compares its estimate
with; here each combination is charged through createTask (and, for a reference video given in
docs' untyped `urls`, once the fetched file shows it is a video).
"""

import json

import pytest

from sandbox import pricing
from sandbox.models import SandboxAccount, SandboxTask
from tests.sandbox import makemedia
from tests.sandbox.conftest import later

CREATE = "/sandbox/api/v1/jobs/createTask"
RECORD = "/sandbox/api/v1/jobs/recordInfo"
# The "After the seed" table of ../shared/KINOVI_API.md, written out independently of
# sandbox/pricing.py: base per second, then what a reference video adds.
TABLE = {
    ("seedance-20", "480p"): (15, 4),
    ("seedance-20", "720p"): (40, 8),
    ("seedance-20", "1080p"): (83, 17),
    ("seedance2-fast", "480p"): (10, 3),
    ("seedance2-fast", "720p"): (28, 6),
}
UPSCALE = 28
COMBINATIONS = list(pricing.combinations())


def expected(model, resolution, upscale, video, duration):
    base, surcharge = TABLE[(model, resolution)]
    return (base + (UPSCALE if upscale else 0) + (surcharge if video else 0)) * duration


def test_the_combinations_are_the_tables():
    assert {(m, r) for m, r, _, _ in COMBINATIONS} == set(TABLE)
    assert len(COMBINATIONS) == len(TABLE) * 4


@pytest.mark.parametrize("duration", [4, 5, 15])
@pytest.mark.parametrize("model, resolution, upscale, video", COMBINATIONS)
def test_price_function(model, resolution, upscale, video, duration):
    charged = pricing.price(
        model=model,
        duration=duration,
        resolution=resolution,
        upscale_4k=upscale,
        reference_video=video,
    )
    assert charged == expected(model, resolution, upscale, video, duration)


def test_the_seeds_examples_are_the_720p_rates():
    assert pricing.price(model="seedance-20", duration=5) == 200
    assert pricing.price(model="seedance2-fast", duration=15) == 420
    assert pricing.price(model="seedance-20", duration=15, upscale_4k=True) == 1020
    assert pricing.price(model="seedance2-fast", duration=4, upscale_4k=True) == 224


def test_the_fast_model_has_no_1080p():
    with pytest.raises(KeyError):
        pricing.price(model="seedance2-fast", duration=5, resolution="1080p")


@pytest.mark.parametrize("model, resolution, upscale, video", COMBINATIONS)
def test_create_charges_every_combination(
    client, make_account, sandbox_timings, clock, material_server, model, resolution, upscale, video
):
    key, account = make_account(credits=100_000)
    headers = {"Authorization": f"Bearer {key}"}
    inputs = {"prompt": "A price", "duration": "6", "outputResolution": resolution}
    if upscale:
        inputs["upscaleResolution"] = "4k"
    if video:
        makemedia.video(material_server.root / "ref.mp4", seconds=3, size="64x48")
        inputs.update(mode="reference", urls=[material_server.url("ref.mp4")])
    response = client.post(
        CREATE,
        data=json.dumps({"model": model, "inputs": inputs}),
        content_type="application/json",
        headers=headers,
    )
    assert response.status_code == 200, response.json()
    task_id = response.json()["taskId"]
    later(clock, 61)
    data = client.get(RECORD, {"taskId": task_id}, headers=headers).json()
    assert data["status"] == "success", data["error"]
    charge = expected(model, resolution, upscale, video, 6)
    assert data["creditsUsed"] == charge
    assert SandboxAccount.objects.get(pk=account.pk).credits == 100_000 - charge
    assert SandboxTask.objects.get(task_id=task_id).resolution == resolution
