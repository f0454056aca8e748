"""Another workspace's objects are a 404 for every accounts URL that takes an id."""

import pytest
from django.urls import URLPattern

from accounts import urls as accounts_urls
from accounts.models import Membership, Role, Workspace


@pytest.fixture
def objects(cast, team, make_key, make_invitation, make_user):
    invitation, _ = make_invitation(team, "pending@example.com")
    return {
        "workspace_id": team.pk,
        "invitation_id": invitation.pk,
        "membership_id": Membership.objects.get(user=cast["bob"], workspace=team).pk,
        "key_id": make_key(team).pk,
    }


CASES = {
    "team": ("get", "/workspaces/{workspace_id}/"),
    "invite": ("post", "/workspaces/{workspace_id}/invite/"),
    "revoke_invitation": (
        "post",
        "/workspaces/{workspace_id}/invitations/{invitation_id}/revoke/",
    ),
    "change_role": ("post", "/workspaces/{workspace_id}/members/{membership_id}/role/"),
    "remove_member": ("post", "/workspaces/{workspace_id}/members/{membership_id}/remove/"),
    "leave_workspace": ("post", "/workspaces/{workspace_id}/leave/"),
    "rename_workspace": ("post", "/workspaces/{workspace_id}/rename/"),
    "delete_workspace": ("post", "/workspaces/{workspace_id}/delete/"),
    "edit_key": ("post", "/keys/{key_id}/"),
    "default_key": ("post", "/keys/{key_id}/default/"),
    "revoke_key": ("post", "/keys/{key_id}/revoke/"),
    "recheck_key": ("post", "/keys/{key_id}/check/"),
}


def test_every_url_with_an_id_is_covered():
    with_ids = {
        p.name
        for p in accounts_urls.urlpatterns
        if isinstance(p, URLPattern) and "<int:" in str(p.pattern)
    }
    assert with_ids == set(CASES)


@pytest.mark.parametrize("name", CASES)
def test_a_stranger_gets_404_and_nothing_changes(cast, team, objects, login_as, name):
    method, template = CASES[name]
    client = login_as(cast["charlie"])
    url = template.format(**objects)
    data = {"name": "Hijacked", "role": "owner", "label": "Hijacked", "email": "x@example.com"}
    response = client.get(url) if method == "get" else client.post(url, data)
    assert response.status_code == 404
    team.refresh_from_db()
    assert team.name == "Acme Films"
    assert Membership.objects.filter(workspace=team).count() == 4
    assert not Membership.objects.filter(user=cast["charlie"], workspace=team).exists()


def test_ids_from_another_workspace_under_my_workspace_are_404(
    cast, team, objects, login_as, make_key
):
    other = Workspace.objects.create(name="Other team")
    Membership.objects.create(user=cast["charlie"], workspace=other, role=Role.OWNER)
    client = login_as(cast["charlie"], other)
    bob = objects["membership_id"]
    response = client.post(f"/workspaces/{other.pk}/members/{bob}/role/", {"role": "viewer"})
    assert response.status_code == 404
    response = client.post(f"/workspaces/{other.pk}/invitations/{objects['invitation_id']}/revoke/")
    assert response.status_code == 404
    assert Membership.objects.get(pk=bob).role == Role.MEMBER


def test_switching_to_a_foreign_workspace_is_404(cast, team, login_as):
    response = login_as(cast["charlie"]).post("/workspaces/switch/", {"workspace": team.pk})
    assert response.status_code == 404
