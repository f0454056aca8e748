"""The API tokens page: a token is shown once, only its hash is kept, every event is audited,
and its owner or the workspace's owners and admins can revoke it."""

import re

import pytest
from django.urls import reverse

from accounts.models import AuditEntry, hash_token
from api.models import ApiToken

pytestmark = pytest.mark.django_db
TOKEN_SHAPE = re.compile(r"kst_[A-Za-z0-9_-]{43}")


def _make(client, **data):
    payload = {"name": "Nightly batch", "scopes": ["generate", "read"], "expires_in": "30"}
    payload.update(data)
    return client.post(reverse("api_tokens"), payload)


def test_a_new_token_is_shown_once_and_only_its_hash_is_kept(client, login_as, cast, team):
    login_as(cast["bob"], team)

    response = _make(client)

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    raw = TOKEN_SHAPE.search(response.content.decode()).group(0)
    row = ApiToken.objects.get()
    assert row.token_hash == hash_token(raw) and row.prefix == raw[:12]
    assert row.user == cast["bob"] and row.workspace == team
    assert row.scopes == ["generate", "read"] and row.expires_at is not None
    assert raw not in repr(list(ApiToken.objects.values_list()))
    # Never again: not on the page, not in the session.
    again = client.get(reverse("api_tokens")).content.decode()
    assert raw not in again and row.prefix in again
    assert raw not in repr(dict(client.session.items()))
    entry = AuditEntry.objects.get(action="api_token.created")
    assert entry.actor == cast["bob"] and entry.workspace == team
    assert raw not in repr(entry.data) + entry.target


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"name": "  "}, "Give the token a name"),
        ({"scopes": []}, "Choose at least one scope"),
        ({"scopes": ["admin"]}, "Select a valid choice"),
        ({"expires_in": "-3"}, "Select a valid choice"),
    ],
)
def test_bad_input_makes_no_token(client, login_as, cast, team, data, error):
    login_as(cast["bob"], team)
    response = _make(client, **data)
    assert response.status_code == 400
    assert error in response.content.decode()
    assert not ApiToken.objects.exists()


@pytest.mark.parametrize(
    ("revoker", "allowed"),
    [("bob", True), ("alice", True), ("adam", True), ("vera", False)],
)
def test_revoked_by_its_owner_or_a_manager_only(
    client, login_as, cast, team, make_token, revoker, allowed
):
    make_token(cast["bob"])
    token = ApiToken.objects.get()
    login_as(cast[revoker], team)
    client.raise_request_exception = False

    response = client.post(reverse("api_token_revoke", args=[token.pk]))

    token.refresh_from_db()
    if allowed:
        assert response.status_code == 302
        assert token.revoked_at is not None and token.revoked_by == cast[revoker]
        entry = AuditEntry.objects.get(action="api_token.revoked")
        assert entry.actor == cast[revoker] and entry.data["owner"] == "bob@example.com"
    else:
        assert response.status_code == 403
        assert token.revoked_at is None
        assert not AuditEntry.objects.filter(action="api_token.revoked").exists()


def test_a_stranger_gets_404_for_a_token(client, login_as, cast, make_token):
    make_token(cast["bob"])
    login_as(cast["charlie"])
    client.raise_request_exception = False
    response = client.post(reverse("api_token_revoke", args=[ApiToken.objects.get().pk]))
    assert response.status_code == 404
    assert ApiToken.objects.get().revoked_at is None


def test_members_see_their_tokens_managers_see_all(client, login_as, cast, team, make_token):
    make_token(cast["bob"])
    make_token(cast["vera"])
    bob_prefix, vera_prefix = (
        ApiToken.objects.get(user=cast[who]).prefix for who in ("bob", "vera")
    )
    login_as(cast["bob"], team)
    page = client.get(reverse("api_tokens")).content.decode()
    assert bob_prefix in page and vera_prefix not in page
    login_as(cast["adam"], team)
    page = client.get(reverse("api_tokens")).content.decode()
    assert bob_prefix in page and vera_prefix in page


def test_the_docs_page_shows_this_studios_base_url(client, login_as, cast, team, settings):
    settings.SITE_URL = "https://studio.example.com"
    login_as(cast["bob"], team)
    page = client.get(reverse("api_docs")).content.decode()
    assert "https://studio.example.com/api/v1/jobs/createTask" in page
    assert "data-copy=" in page and "recordInfo" in page and team.name in page
