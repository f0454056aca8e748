"""Team settings: members, roles, removal, leaving, renaming and deleting a workspace."""

import pytest

from accounts.models import AuditEntry, Membership, Role, Workspace


def _membership(user, team):
    return Membership.objects.get(user=user, workspace=team)


def test_it_works(cast, team, login_as, make_invitation, django_assert_max_num_queries):
    make_invitation(team, "new@example.com", invited_by=cast["alice"])
    client = login_as(cast["alice"], team)
    with django_assert_max_num_queries(12):
        response = client.get(f"/workspaces/{team.pk}/")
    assert response.status_code == 200
    body = response.content.decode()
    for name in ("alice", "adam", "bob", "vera"):
        assert f"{name}@example.com" in body
    assert "charlie@example.com" not in body
    assert "new@example.com" in body  # the pending invitation
    assert "Invite someone" in body


def test_members_see_the_team_but_not_invitations_or_forms(cast, team, login_as, make_invitation):
    make_invitation(team, "new@example.com")
    body = login_as(cast["bob"], team).get(f"/workspaces/{team.pk}/").content.decode()
    assert "alice@example.com" in body
    assert "new@example.com" not in body
    assert "Invite someone" not in body
    assert "Remove" not in body


def test_personal_workspace_says_it_is_single_member(make_user, login_as):
    user = make_user("solo@example.com")
    workspace = Membership.objects.get(user=user).workspace
    body = login_as(user).get(f"/workspaces/{workspace.pk}/").content.decode()
    assert "just for you and cannot be shared" in body
    assert "Leave this team" not in body


def test_workspaces_page_lists_mine_and_creates_a_team(
    cast, team, login_as, django_assert_max_num_queries
):
    client = login_as(cast["bob"])
    with django_assert_max_num_queries(10):
        response = client.get("/workspaces/")
    body = response.content.decode()
    assert "Acme Films" in body and "bob's workspace" in body.replace("&#x27;", "'")
    assert "Create a team" in body

    response = client.post("/workspaces/", {"team-name": "  Night   Shift "})
    created = Workspace.objects.get(name="Night Shift")
    assert response.status_code == 302 and response.url == f"/workspaces/{created.pk}/"
    assert not created.is_personal
    assert _membership(cast["bob"], created).role == Role.OWNER
    assert client.session["workspace_id"] == created.pk
    assert AuditEntry.objects.filter(action="workspace.created", workspace=created).exists()


def test_create_team_refuses_an_empty_name(cast, login_as):
    before = Workspace.objects.count()
    response = login_as(cast["bob"]).post("/workspaces/", {"team-name": "   "})
    assert response.status_code == 200
    assert "This field is required" in response.content.decode()
    assert Workspace.objects.count() == before


def test_an_owner_changes_a_role(cast, team, login_as):
    client = login_as(cast["alice"], team)
    bob = _membership(cast["bob"], team)
    response = client.post(f"/workspaces/{team.pk}/members/{bob.pk}/role/", {"role": "admin"})
    assert response.status_code == 302
    bob.refresh_from_db()
    assert bob.role == Role.ADMIN
    entry = AuditEntry.objects.get(action="member.role_changed")
    assert entry.actor == cast["alice"] and entry.target == "bob@example.com"
    assert entry.data == {"old_role": "member", "new_role": "admin"}


def test_an_admin_cannot_make_an_owner(cast, team, login_as):
    client = login_as(cast["adam"], team)
    bob = _membership(cast["bob"], team)
    response = client.post(
        f"/workspaces/{team.pk}/members/{bob.pk}/role/", {"role": "owner"}, follow=True
    )
    assert "Only owners can make someone an owner" in response.content.decode()
    bob.refresh_from_db()
    assert bob.role == Role.MEMBER
    assert not AuditEntry.objects.exists()


def test_an_admin_cannot_demote_an_owner(cast, team, login_as):
    alice = _membership(cast["alice"], team)
    response = login_as(cast["adam"], team).post(
        f"/workspaces/{team.pk}/members/{alice.pk}/role/", {"role": "viewer"}, follow=True
    )
    assert "Only owners can" in response.content.decode()
    alice.refresh_from_db()
    assert alice.role == Role.OWNER


def test_the_last_owner_cannot_be_demoted(cast, team, login_as):
    alice = _membership(cast["alice"], team)
    response = login_as(cast["alice"], team).post(
        f"/workspaces/{team.pk}/members/{alice.pk}/role/", {"role": "admin"}, follow=True
    )
    assert "at least one owner" in response.content.decode()
    alice.refresh_from_db()
    assert alice.role == Role.OWNER


def test_an_owner_can_step_down_once_there_is_another(cast, team, login_as):
    client = login_as(cast["alice"], team)
    adam = _membership(cast["adam"], team)
    alice = _membership(cast["alice"], team)
    client.post(f"/workspaces/{team.pk}/members/{adam.pk}/role/", {"role": "owner"})
    client.post(f"/workspaces/{team.pk}/members/{alice.pk}/role/", {"role": "member"})
    adam.refresh_from_db()
    alice.refresh_from_db()
    assert (adam.role, alice.role) == (Role.OWNER, Role.MEMBER)


def test_a_bogus_role_is_refused(cast, team, login_as):
    bob = _membership(cast["bob"], team)
    response = login_as(cast["alice"], team).post(
        f"/workspaces/{team.pk}/members/{bob.pk}/role/", {"role": "god"}, follow=True
    )
    assert "Choose one of the roles" in response.content.decode()
    bob.refresh_from_db()
    assert bob.role == Role.MEMBER


def test_an_admin_removes_a_member(cast, team, login_as):
    bob = _membership(cast["bob"], team)
    response = login_as(cast["adam"], team).post(
        f"/workspaces/{team.pk}/members/{bob.pk}/remove/", follow=True
    )
    assert "was removed" in response.content.decode()
    assert not Membership.objects.filter(pk=bob.pk).exists()
    assert AuditEntry.objects.get(action="member.removed").target == "bob@example.com"


def test_an_admin_cannot_remove_an_owner(cast, team, login_as):
    alice = _membership(cast["alice"], team)
    response = login_as(cast["adam"], team).post(
        f"/workspaces/{team.pk}/members/{alice.pk}/remove/", follow=True
    )
    assert "Only owners can remove an owner" in response.content.decode()
    assert Membership.objects.filter(pk=alice.pk).exists()


def test_removing_oneself_points_to_leave(cast, team, login_as):
    adam = _membership(cast["adam"], team)
    response = login_as(cast["adam"], team).post(
        f"/workspaces/{team.pk}/members/{adam.pk}/remove/", follow=True
    )
    assert "leave the workspace" in response.content.decode()
    assert Membership.objects.filter(pk=adam.pk).exists()


def test_a_member_leaves(cast, team, login_as):
    client = login_as(cast["bob"], team)
    response = client.post(f"/workspaces/{team.pk}/leave/")
    assert response.status_code == 302 and response.url == "/workspaces/"
    assert not Membership.objects.filter(user=cast["bob"], workspace=team).exists()
    assert AuditEntry.objects.get(action="member.left").target == "bob@example.com"
    # The header falls back to the personal workspace.
    assert client.get("/workspaces/").status_code == 200
    assert client.get(f"/workspaces/{team.pk}/").status_code == 404


def test_the_last_owner_cannot_leave(cast, team, login_as):
    response = login_as(cast["alice"], team).post(f"/workspaces/{team.pk}/leave/", follow=True)
    assert "You are the last owner" in response.content.decode()
    assert Membership.objects.filter(user=cast["alice"], workspace=team).exists()


def test_a_personal_workspace_cannot_be_left(make_user, login_as):
    user = make_user("solo@example.com")
    workspace = Membership.objects.get(user=user).workspace
    response = login_as(user).post(f"/workspaces/{workspace.pk}/leave/", follow=True)
    assert "Personal workspaces are just for you" in response.content.decode()
    assert Membership.objects.filter(user=user, workspace=workspace).exists()


def test_an_owner_renames(cast, team, login_as):
    response = login_as(cast["alice"], team).post(
        f"/workspaces/{team.pk}/rename/", {"name": "Acme Studios"}
    )
    assert response.status_code == 302
    team.refresh_from_db()
    assert team.name == "Acme Studios"
    assert AuditEntry.objects.get(action="workspace.renamed").data["old_name"] == "Acme Films"


def test_rename_refuses_an_empty_name(cast, team, login_as):
    response = login_as(cast["alice"], team).post(f"/workspaces/{team.pk}/rename/", {"name": ""})
    assert response.status_code == 200
    team.refresh_from_db()
    assert team.name == "Acme Films"


def test_an_owner_deletes_an_empty_team(cast, team, login_as):
    client = login_as(cast["alice"], team)
    assert "cannot be undone" in client.get(f"/workspaces/{team.pk}/delete/").content.decode()
    response = client.post(f"/workspaces/{team.pk}/delete/")
    assert response.status_code == 302
    assert not Workspace.objects.filter(pk=team.pk).exists()
    entry = AuditEntry.objects.get(action="workspace.deleted")
    assert entry.target == "Acme Films"
    assert client.get("/workspaces/").status_code == 200


def test_a_team_with_videos_cannot_be_deleted(cast, team, login_as, make_key):
    from generations.models import Generation

    key = make_key(team)
    Generation.objects.create(
        workspace=team, creator=cast["bob"], api_key=key, prompt="A cat", estimated_credits=200
    )
    response = login_as(cast["alice"], team).post(f"/workspaces/{team.pk}/delete/", follow=True)
    assert "has videos" in response.content.decode()
    assert Workspace.objects.filter(pk=team.pk).exists()
    assert Membership.objects.filter(workspace=team).count() == 4


def test_a_personal_workspace_cannot_be_deleted(make_user, login_as):
    user = make_user("solo@example.com")
    workspace = Membership.objects.get(user=user).workspace
    response = login_as(user).post(f"/workspaces/{workspace.pk}/delete/", follow=True)
    assert "cannot be deleted" in response.content.decode()
    assert Workspace.objects.filter(pk=workspace.pk).exists()


@pytest.mark.parametrize("who", ["adam", "bob", "vera"])
def test_only_owners_delete(cast, team, login_as, who):
    response = login_as(cast[who], team).post(f"/workspaces/{team.pk}/delete/")
    assert response.status_code == 403
    assert "Only owners can delete a workspace" in response.content.decode()
    assert Workspace.objects.filter(pk=team.pk).exists()
