"""Money as the ledger nets it (a failure refunded in full reads 0 credits, on the card and the
detail page, with the estimate struck through), and hidden videos found again."""

import pytest
from django.urls import reverse

from tests.dashboard.test_detail import _ledger

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("status", "rows", "words"),
    [
        ("fail", [("reserve", -200), ("refund", 200)], "refunded"),
        ("rejected", [], "not charged"),
        ("canceled", [], "not charged"),
    ],
)
def test_an_ending_without_a_charge_shows_zero_credits(
    login_as, cast, team, make_generation, status, rows, words
):
    g = make_generation(status=status)
    _ledger(g, *rows)
    client = login_as(cast["bob"], team)
    card = client.get(reverse("generation_card", args=[g.public_id])).content.decode()
    assert f"<strong>0</strong> credits · {words}" in card
    assert '<s class="muted" title="Estimate">200</s>' in card
    assert "<strong>200</strong> credits" not in card
    detail = client.get(reverse("generation_detail", args=[g.public_id])).content.decode()
    assert '<dt>Charged</dt><dd><span class="price"><strong>0</strong> credits' in detail


def test_a_success_shows_what_kinovi_charged(login_as, cast, team, make_generation):
    g = make_generation(status="success", credits_used=180)
    card = login_as(cast["bob"], team).get(reverse("generation_card", args=[g.public_id]))
    assert "<strong>180</strong> credits" in card.content.decode()


def test_the_preview_and_the_refusal_name_the_same_limit(login_as, cast, team, team_key):
    from accounts.models import Membership

    team.monthly_budget_credits = 1000
    team.save()
    Membership.objects.filter(user=cast["bob"], workspace=team).update(monthly_cap_credits=150)
    ask = {
        "prompt": "A fox in the snow",
        "model": "seedance-20",
        "duration": "5",
        "aspect_ratio": "16:9",
        "mode": "keyframe",
        "api_key": team_key.pk,
    }
    client = login_as(cast["bob"], team)
    preview = client.get(reverse("generation_preview"), ask)
    refusal = preview.context["refusal"]
    assert "your 150-credit monthly cap" in refusal and "only 150" in refusal
    html = preview.content.decode()
    assert 'id="generate" hx-swap-oob="true" disabled' in html
    page = client.get(reverse("generation_new"))
    assert 'id="generate" disabled' in page.content.decode()  # the first look says it already
    refused = client.post(reverse("generation_new"), ask)
    assert refusal in refused.content.decode().replace("&#x27;", "'")


def test_hidden_videos_can_be_found_and_shown_again(login_as, cast, team, make_generation):
    g = make_generation(status="success", prompt="Kept out of sight", hidden=True)
    client = login_as(cast["bob"], team)
    assert "Kept out of sight" not in client.get(reverse("home")).content.decode()
    hidden = client.get(reverse("home"), {"status": "hidden"}).content.decode()
    assert "Kept out of sight" in hidden
    detail = client.get(reverse("generation_detail", args=[g.public_id])).content.decode()
    assert reverse("generation_unhide", args=[g.public_id]) in detail
    client.post(reverse("generation_unhide", args=[g.public_id]))
    g.refresh_from_db()
    assert not g.hidden
    assert "Kept out of sight" in client.get(reverse("home")).content.decode()
    # Vera (a viewer) sees the video but is offered nothing, and the service agrees.
    g.hidden = True
    g.save()
    vera = login_as(cast["vera"], team)
    page = vera.get(reverse("generation_detail", args=[g.public_id])).content.decode()
    assert reverse("generation_unhide", args=[g.public_id]) not in page
    vera.post(reverse("generation_unhide", args=[g.public_id]))
    g.refresh_from_db()
    assert g.hidden
