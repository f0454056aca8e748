"""The output resolution on the new-video form: price per tier, the fast model's limit, the
stored choice, and the createTask body the sandbox receives."""

import json

import pytest
from django.urls import reverse

from generations.models import Generation
from generations.submission import submit_generation
from sandbox.models import SandboxTask

pytestmark = pytest.mark.django_db

VALID = {
    "prompt": "A red kite over the dunes, aerial view, golden hour",
    "model": "seedance-20",
    "duration": "5",
    "aspect_ratio": "16:9",
    "mode": "keyframe",
}


@pytest.mark.parametrize(
    "model, resolution, credits",
    [
        ("seedance-20", "480p", "75"),
        ("seedance-20", "720p", "200"),
        ("seedance-20", "1080p", "415"),
        ("seedance2-fast", "480p", "50"),
        ("seedance2-fast", "720p", "140"),
    ],
)
def test_the_preview_prices_each_tier(login_as, cast, team, team_key, model, resolution, credits):
    query = {**VALID, "api_key": team_key.pk, "model": model, "output_resolution": resolution}
    response = login_as(cast["bob"], team).get(reverse("generation_preview"), query)
    html = response.content.decode()
    assert f'<span id="price-credits">{credits}</span>' in html
    assert f'<span id="price-tier">{resolution}</span>' in html
    assert json.loads(response.context["body_json"])["inputs"]["outputResolution"] == resolution


def test_the_page_lists_the_rate_of_every_tier(login_as, cast, team, team_key):
    html = login_as(cast["bob"], team).get(reverse("generation_new")).content.decode()
    assert "480p 15 · 720p 40 · 1080p 83 credits/s" in html
    assert "480p 10 · 720p 28 credits/s" in html
    assert 'name="output_resolution" value="720p" checked' in html


def test_1080p_is_refused_for_the_fast_model(login_as, cast, team, team_key):
    client = login_as(cast["bob"], team)
    data = {
        **VALID,
        "api_key": team_key.pk,
        "model": "seedance2-fast",
        "output_resolution": "1080p",
    }
    response = client.post(reverse("generation_new"), data)
    assert response.status_code == 200
    assert "renders at most at 720p" in response.content.decode()
    assert not Generation.objects.exists()
    preview = client.get(reverse("generation_preview"), data).content.decode()
    assert "renders at most at 720p" in preview


def test_an_unknown_resolution_is_refused(login_as, cast, team, team_key):
    data = {**VALID, "api_key": team_key.pk, "output_resolution": "4k"}
    response = login_as(cast["bob"], team).post(reverse("generation_new"), data)
    assert "Choose 480p, 720p or 1080p." in response.content.decode()
    assert not Generation.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_chosen_resolution_is_stored_estimated_and_sent(
    login_as, cast, team, sandbox_server, monkeypatch
):
    from generations import queue

    monkeypatch.setattr(queue, "enqueue", lambda *args, **kwargs: None)
    key = sandbox_server.api_key(team)
    data = {**VALID, "api_key": key.pk, "output_resolution": "1080p", "duration": "4"}
    response = login_as(cast["bob"], team).post(reverse("generation_new"), data)
    assert response.status_code == 302
    generation = Generation.objects.get()
    assert generation.output_resolution == "1080p"
    assert generation.estimated_credits == 83 * 4
    assert submit_generation(generation.pk).startswith("submitted")
    task = SandboxTask.objects.get(task_id=Generation.objects.get().task_id)
    assert task.inputs["outputResolution"] == "1080p"
    assert task.credits_charged == generation.estimated_credits
