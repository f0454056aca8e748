"""Retry, re-check, cancel and hide: through the services, refused for viewers and strangers."""

import pytest
from django.urls import reverse

from generations.models import Generation, StatusEvent

pytestmark = pytest.mark.django_db

ACTIONS = ["generation_retry", "generation_recheck", "generation_cancel", "generation_hide"]


@pytest.mark.parametrize("action", ACTIONS)
def test_it_checks_access(client, login_as, cast, team, make_generation, action):
    g = make_generation(status="queued")
    url = reverse(action, args=[g.public_id])
    response = client.post(url)
    assert response.status_code == 302 and reverse("login") in response["Location"]
    assert login_as(cast["charlie"]).post(url).status_code == 404
    response = login_as(cast["vera"], team).post(url)
    assert response.status_code == 403
    assert "Viewers can look but not generate" in response.content.decode()
    assert login_as(cast["bob"], team).get(url).status_code == 405
    g.refresh_from_db()
    assert (g.status, g.hidden) == ("queued", False)
    assert Generation.objects.count() == 1


def test_retry_works(login_as, cast, team, make_generation):
    g = make_generation(
        status="fail",
        model="seedance2-fast",
        duration=7,
        aspect_ratio="1:1",
        upscale_4k=True,
        error_code="500",
    )
    client = login_as(cast["alice"], team)
    response = client.post(reverse("generation_retry", args=[g.public_id]))
    new = Generation.objects.exclude(pk=g.pk).get()
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('home')}#g-{new.public_id}"
    assert new.parent == g and new.status == "queued" and new.creator == cast["alice"]
    assert (new.model, new.duration, new.aspect_ratio, new.upscale_4k, new.prompt) == (
        g.model,
        g.duration,
        g.aspect_ratio,
        g.upscale_4k,
        g.prompt,
    )


def test_retry_refused_while_in_flight(login_as, cast, team, make_generation):
    g = make_generation(status="generating")
    client = login_as(cast["bob"], team)
    response = client.post(reverse("generation_retry", args=[g.public_id]), follow=True)
    assert "still on its way" in response.content.decode()
    assert Generation.objects.count() == 1


def test_retry_over_budget_is_explained(login_as, cast, team, make_generation):
    team.monthly_budget_credits = 250
    team.save()
    g = make_generation(status="success", estimated_credits=200)
    g2 = make_generation(status="success", estimated_credits=200)
    from generations.models import CreditEntry

    for one in (g, g2):
        CreditEntry.objects.create(
            generation=one,
            workspace=team,
            user=one.creator,
            api_key=one.api_key,
            model=one.model,
            kind="reserve",
            credits=-200,
            dollars_per_credit=one.dollars_per_credit,
        )
    response = login_as(cast["bob"], team).post(
        reverse("generation_retry", args=[g.public_id]), follow=True
    )
    assert "monthly budget" in response.content.decode()
    assert Generation.objects.count() == 2


def test_cancel_works_only_while_queued(login_as, cast, team, make_generation):
    g = make_generation(status="queued", events=[("", "queued", "submit")])
    client = login_as(cast["bob"], team)
    response = client.post(reverse("generation_cancel", args=[g.public_id]), follow=True)
    g.refresh_from_db()
    assert g.status == "canceled"
    assert "Canceled before it was sent" in response.content.decode()
    assert StatusEvent.objects.filter(generation=g, to_status="canceled", source="user").exists()
    sent = make_generation(status="waiting", task_id="task_sent1")
    response = client.post(reverse("generation_cancel", args=[sent.public_id]), follow=True)
    sent.refresh_from_db()
    assert sent.status == "waiting"
    assert "can no longer be canceled" in response.content.decode()


def test_hide_works(login_as, cast, team, make_generation):
    g = make_generation(status="success", prompt="To be hidden")
    client = login_as(cast["bob"], team)
    response = client.post(reverse("generation_hide", args=[g.public_id]), follow=True)
    g.refresh_from_db()
    assert g.hidden
    assert "Hidden from the gallery" in response.content.decode()
    assert "To be hidden" not in client.get(reverse("home")).content.decode()


def test_recheck_explains_what_it_can_and_cannot_do(login_as, cast, team, make_generation):
    client = login_as(cast["bob"], team)
    stalled = make_generation(status="stalled", task_id="task_stalled2")
    response = client.post(reverse("generation_recheck", args=[stalled.public_id]), follow=True)
    assert "Asking Kinovi" in response.content.decode()
    stalled.refresh_from_db()
    assert stalled.next_poll_at is not None
    unknown = make_generation(status="unknown")
    response = client.post(reverse("generation_recheck", args=[unknown.public_id]), follow=True)
    assert "never answered" in response.content.decode()
    done = make_generation(status="success")
    response = client.post(reverse("generation_recheck", args=[done.public_id]), follow=True)
    assert "nothing to re-check" in response.content.decode()


def test_retrying_from_another_workspace_shows_the_new_card(login_as, cast, team, make_generation):
    g = make_generation(status="fail", prompt="Team take one")
    personal = cast["bob"].memberships.get(workspace__is_personal=True).workspace
    client = login_as(cast["bob"], personal)
    response = client.post(reverse("generation_retry", args=[g.public_id]), follow=True)
    new = Generation.objects.get(parent=g)
    assert f'id="g-{new.public_id}"' in response.content.decode()
