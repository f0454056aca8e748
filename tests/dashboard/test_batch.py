"""The batch page: several prompts or N variations, total price first, all or nothing."""

import pytest
from django.urls import reverse

from generations.models import Generation

pytestmark = pytest.mark.django_db

BASE = {"model": "seedance-20", "duration": "5", "aspect_ratio": "16:9", "mode": "keyframe"}


def test_it_works(login_as, cast, team, team_key):
    client = login_as(cast["bob"], team)
    response = client.get(reverse("generation_batch"))
    assert response.status_code == 200
    assert "Total price" in response.content.decode()
    data = {
        **BASE,
        "api_key": team_key.pk,
        "kind": "lines",
        "prompts": "A cat on a roof\n\n  A dog in the park  \nA bird at sea\n",
    }
    preview = client.get(reverse("generation_batch_preview"), data).content.decode()
    assert '<span id="price-credits">600</span>' in preview and "$3.00" in preview
    assert "3 videos ×" in preview
    response = client.post(reverse("generation_batch"), data)
    assert response.status_code == 302 and response["Location"] == reverse("home")
    made = list(Generation.objects.order_by("id"))
    assert [g.prompt for g in made] == ["A cat on a roof", "A dog in the park", "A bird at sea"]
    assert len({g.batch_id for g in made}) == 1 and made[0].batch_id is not None
    assert {g.status for g in made} == {"queued"}


def test_variations(login_as, cast, team, team_key):
    client = login_as(cast["bob"], team)
    data = {
        **BASE,
        "api_key": team_key.pk,
        "kind": "variations",
        "prompt": "A neon alley",
        "variations": "4",
        "model": "seedance2-fast",
    }
    preview = client.get(reverse("generation_batch_preview"), data).content.decode()
    assert '<span id="price-credits">560</span>' in preview
    client.post(reverse("generation_batch"), data)
    assert Generation.objects.filter(prompt="A neon alley", model="seedance2-fast").count() == 4


def test_it_checks_access(client, login_as, cast, team, team_key):
    url = reverse("generation_batch")
    assert client.get(url).status_code == 302
    data = {**BASE, "api_key": team_key.pk, "kind": "lines", "prompts": "x\ny"}
    assert login_as(cast["vera"], team).post(url, data).status_code == 403
    assert login_as(cast["vera"], team).get(reverse("generation_batch_preview")).status_code == 403
    assert not Generation.objects.exists()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"kind": "lines", "prompts": "\n \n"}, "Write at least one prompt"),
        ({"kind": "lines", "prompts": "\n".join(["p"] * 21)}, "at most 20 videos"),
        ({"kind": "lines", "prompts": "ok\n" + "x" * 4001}, "Line 2 is 4001 characters"),
        ({"kind": "variations", "prompt": "", "variations": "3"}, "cannot be empty"),
        ({"kind": "variations", "prompt": "A fox", "variations": "1"}, "at least 2 variations"),
        ({"kind": "variations", "prompt": "A fox", "variations": "99"}, "at most 20 videos"),
        ({"kind": "variations", "prompt": "A fox", "variations": ""}, "how many variations"),
        ({"kind": "both", "prompts": "x"}, "Choose several prompts or variations"),
        ({"kind": "lines", "prompts": "x", "duration": "40"}, "at most 15 seconds"),
    ],
)
def test_bad_input_is_explained_and_changes_nothing(
    login_as, cast, team, team_key, changes, message
):
    data = {**BASE, "api_key": team_key.pk, **changes}
    response = login_as(cast["bob"], team).post(reverse("generation_batch"), data)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Generation.objects.exists()


def test_the_budget_covers_the_whole_batch_or_nothing(login_as, cast, team, team_key):
    team.monthly_budget_credits = 500
    team.save()
    data = {**BASE, "api_key": team_key.pk, "kind": "lines", "prompts": "a\nb\nc"}
    response = login_as(cast["bob"], team).post(reverse("generation_batch"), data)
    assert "monthly budget" in response.content.decode()
    assert not Generation.objects.exists()
