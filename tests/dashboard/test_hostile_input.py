"""Hostile or absurd input to the dashboard's GET parameters and forms: never a 500."""

import pytest
from django.urls import reverse

from generations.models import Generation

pytestmark = pytest.mark.django_db

HUGE = "9" * 30


@pytest.mark.parametrize(
    "query",
    [
        {"before": f"1700000000000000-{HUGE}"},
        {"after": f"1700000000000000-{HUGE}"},
        {"before": f"{HUGE}-1"},
        {"before": "-1700000000000000-5"},
        {"member": HUGE},
        {"member": "-1"},
        {"date_from": "9999-12-31"},
        {"date_to": "0001-01-01"},
        {"date_to": "9999-12-31"},
        {"q": "%_\\'\"; DROP TABLE"},
        {"status": ["fail", "success"]},
    ],
)
def test_gallery(login_as, cast, team, make_generation, query):
    make_generation(prompt="Survivor")
    response = login_as(cast["bob"], team).get(reverse("home"), query)
    assert response.status_code == 200


@pytest.mark.parametrize(
    "data",
    [
        {"api_key": HUGE},
        {"api_key": "-1"},
        {"duration": HUGE},
        {"duration": "1e3"},
        {"prompt": "\x00 nul byte"},
        {"upscale_4k": "maybe"},
    ],
)
def test_new_video_form(login_as, cast, team, team_key, data):
    base = {
        "prompt": "A calm sea",
        "model": "seedance-20",
        "duration": "5",
        "aspect_ratio": "16:9",
        "mode": "keyframe",
        "api_key": team_key.pk,
    }
    client = login_as(cast["bob"], team)
    assert client.get(reverse("generation_preview"), {**base, **data}).status_code == 200
    response = client.post(reverse("generation_new"), {**base, **data})
    assert response.status_code in (200, 302)
    if response.status_code == 200:
        assert not Generation.objects.exists()


@pytest.mark.parametrize("month", ["9999-12", "0000-01", "2026-00", HUGE])
def test_usage_month(login_as, cast, team, month):
    assert login_as(cast["alice"], team).get(reverse("usage"), {"month": month}).status_code == 200
