"""The new-video page: form, live price and request preview, bad input, submission, remix."""

import json

import pytest
from django.urls import reverse

from accounts.models import ApiKey
from generations.models import Generation, StatusEvent

pytestmark = pytest.mark.django_db

VALID = {
    "prompt": "A red kite over the dunes, aerial view, golden hour",
    "model": "seedance-20",
    "duration": "5",
    "aspect_ratio": "16:9",
    "mode": "keyframe",
}


def _post(client, key, **changes):
    data = {**VALID, "api_key": key.pk, **changes}
    return client.post(reverse("generation_new"), {k: v for k, v in data.items() if v is not None})


def test_it_works(login_as, cast, team, team_key):
    response = login_as(cast["bob"], team).get(reverse("generation_new"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "/ 4000" in html  # the live character count
    assert "Prompt tips" in html and "camera slowly panning right" in html
    assert "About 2× faster, slightly lower quality, 30% cheaper." in html
    for ratio in ["16:9", "9:16", "1:1", "3:4", "4:3", "21:9"]:
        assert f'value="{ratio}"' in html
    assert 'hx-trigger="change, input delay:150ms"' in html
    assert "200</span> credits" in html  # default: standard, 5 s
    assert "$1.00" in html
    # With one key there is nothing to choose; the key is named, masked.
    assert "••••7788" in html and "sk_test_dashboard_key_7788" not in html
    assert '<select name="api_key"' not in html


def test_it_checks_access(client, login_as, cast, team, team_key):
    url = reverse("generation_new")
    response = client.get(url)
    assert response.status_code == 302 and reverse("login") in response["Location"]
    response = login_as(cast["vera"], team).get(url)
    assert response.status_code == 403
    assert "Viewers can look but not generate" in response.content.decode()
    response = login_as(cast["vera"], team).post(url, {**VALID, "api_key": team_key.pk})
    assert response.status_code == 403
    assert not Generation.objects.exists()
    # The preview fragment is checked the same way.
    assert login_as(cast["vera"], team).get(reverse("generation_preview")).status_code == 403


@pytest.mark.parametrize(
    ("params", "credits", "dollars"),
    [
        ({"model": "seedance-20", "duration": "5"}, "200", "$1.00"),
        ({"model": "seedance2-fast", "duration": "15"}, "420", "$2.10"),
        ({"model": "seedance-20", "duration": "15", "upscale_4k": "on"}, "1,020", "$5.10"),
        ({"model": "seedance2-fast", "duration": "4", "upscale_4k": "on"}, "224", "$1.12"),
    ],
)
def test_preview_prices_with_the_server_pricing(
    login_as, cast, team, team_key, params, credits, dollars
):
    query = {**VALID, "api_key": team_key.pk, **params}
    response = login_as(cast["bob"], team).get(reverse("generation_preview"), query)
    assert response.status_code == 200
    html = response.content.decode()
    assert f'<span id="price-credits">{credits}</span>' in html
    assert f'<span class="price-dollars" id="price-dollars">{dollars}</span>' in html


def test_preview_shows_the_exact_request_body(login_as, cast, team, team_key):
    query = {**VALID, "api_key": team_key.pk, "aspect_ratio": "21:9", "upscale_4k": "on"}
    response = login_as(cast["bob"], team).get(reverse("generation_preview"), query)
    body = json.loads(response.context["body_json"])
    assert body == {
        "model": "seedance-20",
        "inputs": {
            "prompt": VALID["prompt"],
            "duration": "5",
            "aspectRatio": "21:9",
            "mode": "keyframe",
            "outputResolution": "720p",
            "upscaleResolution": "4k",
        },
    }
    assert "Bearer" not in response.content.decode()
    assert "sk_test_dashboard_key_7788" not in response.content.decode()


def test_preview_resolves_every_default(login_as, cast, team, team_key):
    # Only a prompt: every other input is written out, nothing left to the vendor's defaults.
    response = login_as(cast["bob"], team).get(reverse("generation_preview"), {"prompt": "A fox"})
    body = json.loads(response.context["body_json"])
    assert body["inputs"] == {
        "prompt": "A fox",
        "duration": "5",
        "aspectRatio": "16:9",
        "mode": "keyframe",
        "outputResolution": "720p",
    }
    assert body["model"] == "seedance-20"


def test_preview_shows_the_callback_placeholder_when_callbacks_are_on(
    login_as, cast, team, team_key, settings
):
    settings.KINOVI_CALLBACKS = True
    response = login_as(cast["bob"], team).get(reverse("generation_preview"), VALID)
    body = json.loads(response.context["body_json"])
    assert body["callBackUrl"].startswith(settings.SITE_URL + "/hooks/kinovi/")


def test_preview_puts_errors_next_to_fields(login_as, cast, team, team_key):
    query = {**VALID, "duration": "20", "aspect_ratio": "5:4"}
    html = login_as(cast["bob"], team).get(reverse("generation_preview"), query).content.decode()
    assert '<div id="errors-duration" class="error-slot" hx-swap-oob="true">' in html
    assert "A video lasts at most 15 seconds." in html
    assert "Choose one of the frame shapes." in html
    # An untouched prompt is not scolded; other slots are cleared.
    html = (
        login_as(cast["bob"], team)
        .get(reverse("generation_preview"), {"prompt": ""})
        .content.decode()
    )
    assert '<div id="errors-prompt" class="error-slot" hx-swap-oob="true"></div>' in html


def test_preview_shows_what_is_left_of_the_budget(login_as, cast, team, team_key):
    team.monthly_budget_credits = 1000
    team.save()
    html = login_as(cast["bob"], team).get(reverse("generation_preview"), VALID).content.decode()
    assert "<strong>800</strong> credits left after this." in html
    query = {**VALID, "duration": "15", "upscale_4k": "on"}
    html = login_as(cast["bob"], team).get(reverse("generation_preview"), query).content.decode()
    assert "That is 20 credits more than is left this month" in html


def test_preview_counts_the_members_own_cap(login_as, cast, team, team_key):
    from accounts.models import Membership

    Membership.objects.filter(user=cast["bob"], workspace=team).update(monthly_cap_credits=300)
    html = login_as(cast["bob"], team).get(reverse("generation_preview"), VALID).content.decode()
    assert "Your own cap: 0 of 300 credits used." in html
    assert "<strong>100</strong> credits left after this." in html


def test_generate_queues_and_shows_the_gallery(login_as, cast, team, team_key):
    client = login_as(cast["bob"], team)
    response = _post(client, team_key, upscale_4k="on", model="seedance2-fast", duration="8")
    generation = Generation.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('home')}#g-{generation.public_id}"
    assert generation.status == "queued"
    assert (generation.model, generation.duration, generation.upscale_4k) == (
        "seedance2-fast",
        8,
        True,
    )
    assert generation.estimated_credits == 448
    assert generation.creator == cast["bob"] and generation.api_key == team_key
    assert StatusEvent.objects.filter(generation=generation, to_status="queued").exists()
    html = client.get(response["Location"]).content.decode()
    assert f'id="g-{generation.public_id}"' in html
    assert 'hx-trigger="every 3s"' in html


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"prompt": ""}, "the prompt cannot be empty"),
        ({"prompt": "   "}, "the prompt cannot be empty"),
        ({"prompt": "x" * 4001}, "Kinovi accepts at most 4000"),
        ({"duration": "3"}, "at least 4 seconds"),
        ({"duration": "16"}, "at most 15 seconds"),
        ({"duration": "five"}, "whole number of seconds"),
        ({"duration": None}, "Choose a duration"),
        ({"model": "sora-2"}, "Choose standard or fast."),
        ({"aspect_ratio": "2:1"}, "Choose one of the frame shapes."),
        ({"mode": "img2vid"}, "Choose keyframe or reference."),
        ({"api_key": "999999"}, "not one of this workspace"),
        ({"api_key": "abc"}, "not one of this workspace"),
    ],
)
def test_bad_input_is_explained_and_changes_nothing(
    login_as, cast, team, team_key, changes, message
):
    response = _post(login_as(cast["bob"], team), team_key, **changes)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Generation.objects.exists()


def test_another_workspaces_key_is_refused(login_as, cast, team, team_key):
    other = ApiKey(workspace=cast["charlie"].memberships.get().workspace, label="Charlie's")
    other.secret = "sk_test_charlie_0000"
    other.save()
    response = _post(login_as(cast["bob"], team), other)
    assert "not one of this workspace" in response.content.decode()
    assert not Generation.objects.exists()


def test_revoked_and_invalid_keys_are_not_offered(login_as, cast, team, team_key):
    from django.utils import timezone

    bad = ApiKey(workspace=team, label="Broken", status=ApiKey.Status.INVALID)
    bad.secret = "sk_test_broken_0001"
    bad.save()
    gone = ApiKey(workspace=team, label="Gone", revoked_at=timezone.now())
    gone.secret = "sk_test_gone_0002"
    gone.save()
    client = login_as(cast["bob"], team)
    html = client.get(reverse("generation_new")).content.decode()
    assert "Broken" not in html and "Gone" not in html
    assert "not one of this workspace" in _post(client, bad).content.decode()
    assert "not one of this workspace" in _post(client, gone).content.decode()
    assert not Generation.objects.exists()


def test_several_keys_offer_a_choice(login_as, cast, team, team_key):
    second = ApiKey(workspace=team, label="Second key", status=ApiKey.Status.VERIFIED)
    second.secret = "sk_test_second_5555"
    second.save()
    client = login_as(cast["bob"], team)
    html = client.get(reverse("generation_new")).content.decode()
    assert '<select name="api_key"' in html and "Second key (••••5555)" in html
    _post(client, second)
    assert Generation.objects.get().api_key == second


def test_over_budget_is_refused_with_a_clear_message(login_as, cast, team, team_key):
    team.monthly_budget_credits = 100
    team.save()
    response = _post(login_as(cast["bob"], team), team_key)
    assert response.status_code == 200
    assert "monthly budget" in response.content.decode()
    assert not Generation.objects.exists()


def test_no_key_tells_what_to_do(login_as, cast, team):
    html = login_as(cast["alice"], team).get(reverse("generation_new")).content.decode()
    assert "Add a key first" in html


def test_remix_prefills_the_form(login_as, cast, team, team_key, make_generation):
    source = make_generation(
        prompt="A paper boat in the rain",
        model="seedance2-fast",
        duration=9,
        aspect_ratio="9:16",
        upscale_4k=True,
        status="success",
    )
    client = login_as(cast["bob"], team)
    response = client.get(reverse("generation_new"), {"remix": source.public_id})
    form = response.context["form"]
    assert form.initial["prompt"] == "A paper boat in the rain"
    assert (form.initial["model"], form.initial["duration"], form.initial["aspect_ratio"]) == (
        "seedance2-fast",
        9,
        "9:16",
    )
    html = response.content.decode()
    assert "A paper boat in the rain</textarea>" in html
    assert 'value="9:16" checked' in html
    # The preview already prices the remix: fast 9 s with 4K = 9 × (28 + 28).
    assert '<span id="price-credits">504</span>' in html
    response = _post(client, team_key, prompt="A paper boat in the snow", remix_of=source.public_id)
    new = Generation.objects.exclude(pk=source.pk).get()
    assert new.parent == source and new.prompt == "A paper boat in the snow"


def test_remix_checks_access(login_as, cast, team, team_key, make_generation):
    source = make_generation()
    url = reverse("generation_new")
    assert login_as(cast["charlie"]).get(url, {"remix": source.public_id}).status_code == 404
    assert login_as(cast["bob"], team).get(url, {"remix": "not-a-uuid"}).status_code == 404


def test_remixing_a_video_of_another_workspace_switches_to_it(
    login_as, cast, team, team_key, make_generation
):
    source = make_generation(prompt="A team storyboard", status="success")
    personal = cast["bob"].memberships.get(workspace__is_personal=True).workspace
    client = login_as(cast["bob"], personal)
    response = client.get(reverse("generation_new"), {"remix": source.public_id})
    assert response.status_code == 200
    assert "Now working in Acme Films." in response.content.decode()
    assert client.session["workspace_id"] == team.pk
    response = _post(client, team_key, remix_of=source.public_id)
    assert response.status_code == 302
    assert Generation.objects.get(parent=source).workspace == team
