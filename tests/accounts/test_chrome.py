"""Issue 17's account-side pieces: theme and time zone settings, the time zone middleware, the
landing page, confirmations, no silent truncation, the invitation and log-in messages."""

import re
from datetime import UTC, datetime

import pytest
from django.urls import reverse

from accounts.models import Invitation, User, Workspace

URL = "/account/"
pytestmark = pytest.mark.django_db


def test_the_theme_is_saved_and_set_on_the_page(cast, login_as):
    client = login_as(cast["bob"])
    assert '<html lang="en" data-theme="system">' in client.get(URL).content.decode()
    response = client.post(URL, {"name": "Bob", "theme": "dark", "time_zone": ""}, follow=True)
    assert response.status_code == 200
    assert '<html lang="en" data-theme="dark">' in response.content.decode()
    assert User.objects.get(pk=cast["bob"].pk).theme == "dark"


def test_a_bad_theme_or_zone_is_explained_and_changes_nothing(cast, login_as):
    client = login_as(cast["bob"])
    for data in ({"theme": "neon"}, {"time_zone": "Mars/Olympus_Mons"}):
        response = client.post(URL, {"name": "Bobby", **data})
        assert response.status_code == 400
        assert "Select a valid choice." in response.content.decode()
    bob = User.objects.get(pk=cast["bob"].pk)
    assert (bob.name, bob.theme, bob.time_zone) == ("", "system", "")


def test_the_service_refuses_an_unknown_zone(cast):
    from accounts import services

    with pytest.raises(services.AccountError, match="not a time zone"):
        services.update_account_settings(
            user=cast["bob"], name="", email_on_finish=True, time_zone="Nowhere/Else"
        )


def test_times_follow_the_users_zone_then_the_browsers(cast, team, login_as):
    invitation_time = datetime(2027, 6, 1, 12, 0, tzinfo=UTC)
    Invitation.objects.create(
        workspace=team,
        email="new@example.com",
        role="member",
        token_hash="h" * 64,
        invited_by=cast["alice"],
        expires_at=invitation_time,
    )
    client = login_as(cast["alice"], team)
    page = client.get(reverse("team", args=[team.pk]))
    # No choice and no cookie: UTC, and the zone is said.
    assert 'id="current-zone">UTC<' in page.content.decode()

    client.cookies["tz"] = "Asia/Tokyo"
    html = client.get(reverse("team", args=[team.pk])).content.decode()
    assert 'id="current-zone">Asia/Tokyo<' in html
    User.objects.filter(pk=cast["alice"].pk).update(time_zone="America/New_York")
    html = client.get(reverse("team", args=[team.pk])).content.decode()
    assert 'id="current-zone">America/New_York<' in html
    assert "1 Jun 2027 08:00 EDT" in html  # the invitation's expiry, in the user's zone

    client.cookies["tz"] = "../../etc/passwd"
    User.objects.filter(pk=cast["alice"].pk).update(time_zone="")
    assert 'id="current-zone">UTC<' in client.get(URL).content.decode()


def test_the_browser_zone_is_offered_as_the_default(cast, login_as):
    client = login_as(cast["bob"])
    client.cookies["tz"] = "Europe/Paris"
    html = client.get(URL).content.decode()
    assert '<option value="" selected>My browser&#x27;s (Europe/Paris)</option>' in html


def test_visitors_get_the_landing_page(client):
    response = client.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Turn a sentence into a video clip" in html
    assert 'href="/signup/"' in html and 'href="/login/"' in html
    assert "Workspace" not in html


def test_signed_in_users_get_the_gallery(cast, team, login_as):
    html = login_as(cast["bob"], team).get("/").content.decode()
    assert "Turn a sentence into a video clip" not in html
    assert "<title>Videos · Kinovi Studio</title>" in html


def test_the_header_has_three_primary_links_and_two_menus(cast, team, login_as):
    html = login_as(cast["alice"], team).get("/").content.decode()
    nav = re.search(r'<nav class="mainnav".*?</nav>', html, re.S).group(0)
    assert re.findall(r">([^<>]+)</a>", nav) == ["Videos", "New video", "Usage"]
    assert 'id="workspace-menu"' in html and 'id="user-menu"' in html
    assert ">Workspaces</a>" not in html and ">Workspace</a>" not in html
    for link in ("/keys/", "/workspace/budget/", f"/workspaces/{team.pk}/", "/account/"):
        assert f'href="{link}"' in html


def test_a_long_workspace_name_is_truncated_with_the_full_name_in_a_title(cast, login_as):
    long_name = "A team with a remarkably long name " * 2 + "that goes on"
    workspace = Workspace.objects.create(name=long_name[:100])
    workspace.memberships.create(user=cast["bob"], role="owner")
    html = login_as(cast["bob"], workspace).get("/keys/").content.decode()
    assert f'title="{long_name[:100]}"' in html
    assert 'class="truncate" id="workspace-name"' in html


def test_risky_actions_ask_first(cast, team, login_as):
    Invitation.objects.create(
        workspace=team, email="x@example.com", role="member", token_hash="k" * 64
    )
    html = login_as(cast["alice"], team).get(reverse("team", args=[team.pk])).content.decode()
    for action in ("remove/", "leave/", "revoke/"):
        form = re.search(rf'<form method="post" action="[^"]*{action}"[^>]*>', html).group(0)
        assert "data-confirm=" in form, form


def test_over_long_names_are_not_cut_by_the_browser(cast, team, login_as):
    client = login_as(cast["alice"], team)
    html = client.get(reverse("team", args=[team.pk])).content.decode()
    assert "maxlength" not in html
    response = client.post(f"/workspaces/{team.pk}/rename/", {"name": "n" * 101})
    assert "That is too long: 101 characters, 100 at most." in response.content.decode()
    assert Workspace.objects.get(pk=team.pk).name == "Acme Films"
    assert "maxlength" not in client.get("/signup/").content.decode()


def test_a_second_invitation_says_the_first_link_was_withdrawn(cast, team, login_as, mailoutbox):
    client = login_as(cast["alice"], team)
    url = f"/workspaces/{team.pk}/invite/"
    first = client.post(url, {"email": "new@example.com", "role": "member"}, follow=True)
    assert "withdrawn" not in first.content.decode()
    second = client.post(url, {"email": "NEW@example.com", "role": "member"}, follow=True)
    assert "the link sent earlier was withdrawn and no longer works" in second.content.decode()
