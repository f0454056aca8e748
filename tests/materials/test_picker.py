"""The new-video form with materials: the picker, the exact body with signed URLs, the price
with a reference video, and the warning for a prompt naming what is not attached."""

import json

import pytest
from django.urls import reverse

from materials import links

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _reachable(settings):
    settings.SITE_URL = "https://studio.example.com"


def _preview(client, key, **data):
    query = {
        "prompt": "@image1 rides into @video1",
        "model": "seedance-20",
        "duration": "5",
        "aspect_ratio": "16:9",
        "mode": "reference",
        "output_resolution": "720p",
        "api_key": key.pk,
        **data,
    }
    return client.get(reverse("generation_preview"), query)


def test_the_form_shows_the_library_and_chosen_materials(
    login_as, cast, team, team_key, make_material
):
    image = make_material("image")
    client = login_as(cast["bob"], team)
    html = client.get(reverse("generation_new")).content.decode()
    assert "Start from an image" in html and "References" in html
    assert f'data-id="{image.public_id.hex}"' in html and "image-0" in html
    data = {
        "prompt": "A kite",
        "model": "seedance-20",
        "duration": "5",
        "aspect_ratio": "16:9",
        "mode": "keyframe",
        "api_key": team_key.pk,
        "first_frame": "not-a-material",
    }
    html = client.post(reverse("generation_new"), data).content.decode()
    assert "not in this workspace" in html


def test_the_body_holds_the_signed_urls_in_order(login_as, cast, team, team_key, make_material):
    image, video = make_material("image"), make_material("video", duration=3)
    response = _preview(
        login_as(cast["bob"], team), team_key, references=[image.public_id.hex, video.public_id.hex]
    )
    body = json.loads(response.context["body_json"])
    urls = body["inputs"]["urls"]
    assert [links.material_for(u.split("/")[-2]) for u in urls] == [image, video]
    assert all(u.startswith("https://studio.example.com/m/") for u in urls)
    # 5 s x (40 at 720p + 8 for the reference video).
    assert '<span id="price-credits">240</span>' in response.content.decode()
    assert "unattached-warning" not in response.content.decode()


def test_a_prompt_naming_a_missing_reference_is_warned(
    login_as, cast, team, team_key, make_material
):
    image = make_material("image")
    response = _preview(
        login_as(cast["bob"], team),
        team_key,
        prompt="@image1 and @image2 dance to @audio1",
        references=[image.public_id.hex],
    )
    html = response.content.decode()
    assert "The prompt names @image2, @audio1, but no such reference is attached" in html


def test_the_models_dialect_preview_splits_by_kind(
    login_as, cast, team, team_key, make_material, settings
):
    settings.KINOVI_DIALECT = "models"
    image, video = make_material("image"), make_material("video", duration=3)
    response = _preview(
        login_as(cast["bob"], team), team_key, references=[video.public_id.hex, image.public_id.hex]
    )
    inputs = json.loads(response.context["body_json"])["inputs"]
    assert len(inputs["imageUrls"]) == 1 and len(inputs["videoUrls"]) == 1
    assert inputs["duration"] == 5 and "urls" not in inputs


@pytest.mark.parametrize(
    "field, values",
    [
        ("first_frame", ["\x00"]),
        ("first_frame", ["z" * 5000]),
        ("references", ["12345678-1234-1234-1234-1234567890ab"] * 2),
        ("references", [str(n) for n in range(200)]),
        ("last_frame", ["' OR 1=1 --"]),
    ],
)
def test_garbage_in_the_material_fields_is_a_message_not_a_500(
    login_as, cast, team, team_key, field, values
):
    from generations.models import Generation

    client = login_as(cast["bob"], team)
    mode = "reference" if field == "references" else "keyframe"
    response = _preview(client, team_key, mode=mode, **{field: values})
    assert response.status_code == 200
    assert response.context["materials_error"]
    data = {
        "prompt": "A kite",
        "model": "seedance-20",
        "duration": "5",
        "aspect_ratio": "16:9",
        "mode": mode,
        "api_key": team_key.pk,
        field: values,
    }
    if field == "last_frame":
        data["first_frame"] = values
    response = client.post(reverse("generation_new"), data)
    assert response.status_code == 200 and not Generation.objects.exists()
