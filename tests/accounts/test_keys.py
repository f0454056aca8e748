"""The API keys page: list, add (checked with Kinovi), rename, default, revoke, re-check."""

import pytest

from accounts.models import ApiKey, AuditEntry, Membership, Role
from accounts.services import verify_key

from .conftest import CANARY


@pytest.fixture
def owner(cast, team, login_as):
    return login_as(cast["alice"], team)


def test_it_works(owner, team, make_key, cast, django_assert_max_num_queries):
    make_key(team, label="Production", secret="sk_live_abcdef9876", is_default=True)
    for i in range(5):
        make_key(team, label=f"Extra {i}", secret=f"sk_live_extra_{i:04d}", created_by=cast["bob"])
    with django_assert_max_num_queries(12):
        response = owner.get("/keys/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "Production" in body and "••••9876" in body
    assert "default" in body
    assert "bob@example.com" in body
    assert "Add a key" in body


def test_members_and_viewers_see_the_list_but_no_forms(cast, team, make_key, login_as):
    make_key(team, label="Production", secret="sk_live_abcdef9876")
    for name in ("bob", "vera"):
        body = login_as(cast[name], team).get("/keys/").content.decode()
        assert "••••9876" in body
        assert "Add a key" not in body
        assert "Revoke" not in body
        assert "Only owners and admins can add or change them" in body


def test_a_viewer_posting_a_key_is_refused_with_a_clear_message(cast, team, login_as, kinovi):
    client = login_as(cast["vera"], team)
    response = client.post("/keys/", {"label": "Mine", "secret": CANARY})
    assert response.status_code == 403
    assert "Only owners and admins of this workspace can manage its API keys" in (
        response.content.decode()
    )
    assert not ApiKey.objects.exists()
    assert kinovi.requests == []


def test_it_adds_a_verified_key_as_the_first_default(owner, team, kinovi, cast):
    response = owner.post("/keys/", {"label": "Production", "secret": CANARY}, follow=True)
    key = ApiKey.objects.get()
    assert key.workspace == team
    assert key.status == ApiKey.Status.VERIFIED and key.verified_at
    assert key.is_default
    assert key.created_by == cast["alice"]
    assert key.secret == CANARY
    assert "added and verified" in response.content.decode()
    entry = AuditEntry.objects.get(action="key.added")
    assert entry.data["masked"] == "••••7890"
    assert CANARY not in str(entry.data)


def test_a_second_key_is_not_the_default(owner, team, kinovi, make_key):
    make_key(team, is_default=True)
    owner.post("/keys/", {"label": "Second", "secret": CANARY})
    assert not ApiKey.objects.get(label="Second").is_default


def test_it_refuses_a_key_kinovi_rejects(owner, kinovi):
    kinovi.mode = "401"
    response = owner.post("/keys/", {"label": "Bad", "secret": CANARY})
    assert response.status_code == 200
    body = response.content.decode()
    assert "Kinovi rejected this key" in body
    assert CANARY not in body
    assert not ApiKey.objects.exists()
    assert not AuditEntry.objects.exists()


def test_it_saves_an_unchecked_key_with_a_warning(owner, kinovi):
    kinovi.mode = "slow"
    response = owner.post("/keys/", {"label": "Later", "secret": CANARY}, follow=True)
    key = ApiKey.objects.get()
    assert key.status == ApiKey.Status.UNVERIFIED
    assert key.verified_at is None
    body = response.content.decode()
    assert "not yet verified" in body.lower()
    assert "message-warning" in body


@pytest.mark.parametrize(
    "data, message",
    [
        ({"label": "", "secret": CANARY}, "This field is required"),
        ({"label": "Short", "secret": "abc"}, "at least 8 characters"),
        ({"label": "Spaces", "secret": "sk live with spaces"}, "no spaces"),
        ({"label": "Newline", "secret": "sk_live_abc\r\nX-Evil: 1"}, "no spaces"),
    ],
)
def test_it_explains_bad_input_and_saves_nothing(owner, kinovi, data, message):
    response = owner.post("/keys/", data)
    assert response.status_code == 200
    body = response.content.decode()
    assert message in body
    assert CANARY not in body
    assert not ApiKey.objects.exists()
    assert kinovi.requests == []


def test_it_relabels(owner, team, make_key):
    key = make_key(team, label="Old")
    assert owner.get(f"/keys/{key.pk}/").status_code == 200
    response = owner.post(f"/keys/{key.pk}/", {"label": "  New   name "})
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.label == "New name"
    assert AuditEntry.objects.get(action="key.relabeled").data["new_label"] == "New name"


def test_relabel_refuses_an_empty_label(owner, team, make_key):
    key = make_key(team, label="Old")
    response = owner.post(f"/keys/{key.pk}/", {"label": "   "})
    assert response.status_code == 200
    key.refresh_from_db()
    assert key.label == "Old"


def test_it_sets_the_default(owner, team, make_key):
    first = make_key(team, label="First", is_default=True)
    second = make_key(team, label="Second")
    response = owner.post(f"/keys/{second.pk}/default/")
    assert response.status_code == 302
    first.refresh_from_db()
    second.refresh_from_db()
    assert second.is_default and not first.is_default
    assert AuditEntry.objects.filter(action="key.default_set").count() == 1


def test_it_refuses_a_revoked_or_invalid_key_as_default(owner, team, make_key):
    make_key(team, label="First", is_default=True)
    invalid = make_key(team, label="Invalid", status=ApiKey.Status.INVALID)
    response = owner.post(f"/keys/{invalid.pk}/default/", follow=True)
    assert "cannot be the default" in response.content.decode()
    invalid.refresh_from_db()
    assert not invalid.is_default


def test_it_revokes(owner, team, make_key):
    key = make_key(team, label="Gone", is_default=True)
    response = owner.post(f"/keys/{key.pk}/revoke/", follow=True)
    key.refresh_from_db()
    assert key.revoked_at is not None and not key.is_default
    assert "Revoked" in response.content.decode()
    assert AuditEntry.objects.get(action="key.revoked").data["masked"] == key.masked
    again = owner.post(f"/keys/{key.pk}/revoke/", follow=True)
    assert "already revoked" in again.content.decode()


def test_it_rechecks_an_unverified_key(owner, team, make_key, kinovi):
    key = make_key(team, label="Later", status=ApiKey.Status.UNVERIFIED)
    owner.post(f"/keys/{key.pk}/check/")
    key.refresh_from_db()
    assert key.status == ApiKey.Status.VERIFIED
    kinovi.mode = "401"
    owner.post(f"/keys/{key.pk}/check/")
    key.refresh_from_db()
    assert key.status == ApiKey.Status.INVALID


def test_it_shows_the_empty_state_with_the_sandbox(owner, settings):
    settings.KINOVI_SANDBOX = True
    body = owner.get("/keys/").content.decode()
    assert "No API key yet" in body
    assert "Use the sandbox" in body


def test_it_hides_the_sandbox_when_disabled(owner, settings):
    settings.KINOVI_SANDBOX = False
    body = owner.get("/keys/").content.decode()
    assert "Use the sandbox" not in body
    response = owner.post("/keys/sandbox/", follow=True)
    assert "not enabled" in response.content.decode()
    assert not ApiKey.objects.exists()


def test_the_sandbox_button_adds_a_verified_default_key(owner, team, settings, live_server):
    settings.KINOVI_SANDBOX = True
    response = owner.post("/keys/sandbox/", follow=True)
    key = ApiKey.objects.get()
    assert key.label == "Sandbox"
    assert key.status == ApiKey.Status.VERIFIED
    assert key.is_default
    assert key.secret.startswith("sk_sandbox_")
    assert key.secret not in response.content.decode()
    assert "A sandbox key" in response.content.decode()
    assert AuditEntry.objects.get(action="key.added").data["source"] == "sandbox"
    # "Verified" is true: the built-in sandbox, over real HTTP, accepts the stored key.
    settings.KINOVI_BASE_URL = live_server.url + "/sandbox/api/v1"
    assert verify_key(key.secret)[0] == ApiKey.Status.VERIFIED
    assert verify_key("sk_sandbox_not_a_real_key_0000")[0] == ApiKey.Status.INVALID


def test_a_second_sandbox_key_is_not_the_default(owner, team, settings, make_key):
    settings.KINOVI_SANDBOX = True
    make_key(team, is_default=True)
    owner.post("/keys/sandbox/")
    assert not ApiKey.objects.get(label="Sandbox").is_default


def test_personal_workspace_keys(make_user, login_as, kinovi):
    user = make_user("solo@example.com")
    client = login_as(user)
    client.post("/keys/", {"label": "Mine", "secret": CANARY})
    key = ApiKey.objects.get()
    assert key.workspace == Membership.objects.get(user=user, role=Role.OWNER).workspace
