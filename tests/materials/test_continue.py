""" "Continue this shot": a finished video's last frame starts the next video, linked to it;
the detail page shows the chain. Through the pages, with a real cluster and the sandbox."""

import re

import pytest
from django.urls import reverse

from generations.models import Generation, Status
from materials.models import GenerationMaterial, Material
from tests.lifecycle.conftest import history, wait_for_status
from tests.materials.test_end_to_end import _difference, _first_frame

pytestmark = [pytest.mark.cluster, pytest.mark.django_db(transaction=True)]


def _form_data(html: str) -> dict:
    data = {}
    for name, value in re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', html):
        data[name] = value
    return data


def test_continue_this_shot(sandbox_server, q_cluster, cast, team, login_as, tmp_path):
    key = sandbox_server.api_key(team)
    client = login_as(cast["bob"], team)
    first = {
        "prompt": "A lighthouse at dusk, slow push in",
        "model": "seedance2-fast",
        "duration": "4",
        "aspect_ratio": "16:9",
        "mode": "keyframe",
        "output_resolution": "480p",
        "api_key": key.pk,
    }
    assert client.post(reverse("generation_new"), first).status_code == 302
    parent = wait_for_status(Generation.objects.get(), {Status.SUCCESS, Status.FAIL}, timeout=60)
    assert parent.status == Status.SUCCESS, history(parent)

    detail = client.get(reverse("generation_detail", args=[parent.public_id])).content.decode()
    assert "Continue this shot" in detail
    response = client.post(reverse("generation_continue", args=[parent.public_id]))
    assert response.status_code == 302
    frame = Material.objects.get()
    assert frame.kind == "image" and frame.name.startswith("last frame of")
    page = client.get(response["Location"]).content.decode()
    hidden = _form_data(page)
    assert hidden["first_frame"] == frame.public_id.hex
    assert hidden["remix_of"] == str(parent.public_id)
    assert 'name="mode" value="keyframe" checked' in page

    data = {**first, **hidden, "prompt": "The light sweeps across the sea"}
    assert client.post(reverse("generation_new"), data).status_code == 302
    child = Generation.objects.exclude(pk=parent.pk).get()
    assert child.parent == parent
    assert GenerationMaterial.objects.get(generation=child).material == frame
    done = wait_for_status(child, {Status.SUCCESS, Status.FAIL}, timeout=60)
    assert done.status == Status.SUCCESS, (history(done), done.error_message)
    # The new shot starts where the last one ended.
    assert _difference(_first_frame(done, tmp_path), frame) < 8

    page = client.get(reverse("generation_detail", args=[child.public_id])).content.decode()
    assert 'id="shot-chain"' in page and "A lighthouse at dusk" in page
    assert "Made from" in page and "First frame: last frame of" in page
    page = client.get(reverse("generation_detail", args=[parent.public_id])).content.decode()
    assert "Continued by" in page and "The light sweeps across the sea" in page


def test_a_video_without_a_last_frame_cannot_be_continued(cast, team, login_as, db):
    from accounts.models import ApiKey

    key = ApiKey(workspace=team, label="k", is_default=True, status=ApiKey.Status.VERIFIED)
    key.secret = "sk_test_x_1234"
    key.save()
    queued = Generation.objects.create(
        workspace=team, creator=cast["bob"], api_key=key, prompt="A fox", estimated_credits=200
    )
    client = login_as(cast["bob"], team)
    response = client.post(reverse("generation_continue", args=[queued.public_id]), follow=True)
    assert "Only a finished video with a last frame can be continued" in response.content.decode()
    assert not Material.objects.exists()
    viewer = login_as(cast["vera"], team)
    assert viewer.post(reverse("generation_continue", args=[queued.public_id])).status_code == 403
