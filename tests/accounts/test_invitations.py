"""Invitations: sent, shown once, accepted by a new or an existing user; refused when spent."""

from datetime import timedelta

import time_machine
from django.utils import timezone

from accounts.models import AuditEntry, Invitation, Membership, Role, User, hash_token
from tests.conftest import PASSWORD


def _invite(client, team, email="new@example.com", role="member"):
    return client.post(f"/workspaces/{team.pk}/invite/", {"email": email, "role": role})


def test_it_sends_an_invitation_and_shows_the_link_once(cast, team, login_as, mailoutbox):
    client = login_as(cast["adam"], team)
    response = _invite(client, team, "New@Example.com", "viewer")
    assert response.status_code == 302

    invitation = Invitation.objects.get()
    assert (invitation.email, invitation.role) == ("new@example.com", Role.VIEWER)
    assert invitation.invited_by == cast["adam"]
    assert len(mailoutbox) == 1
    mail = mailoutbox[0]
    assert mail.to == ["new@example.com"]
    link = next(line for line in mail.body.splitlines() if "/invitations/" in line).strip()
    token = link.rsplit("/", 2)[-2]
    # Only the hash is stored.
    assert invitation.token_hash == hash_token(token)
    assert token not in invitation.token_hash

    first = client.get(f"/workspaces/{team.pk}/").content.decode()
    assert link in first
    assert 'data-copy="#invitation-link"' in first
    second = client.get(f"/workspaces/{team.pk}/").content.decode()
    assert link not in second
    assert AuditEntry.objects.get(action="invitation.sent").target == "new@example.com"


def test_a_new_invitation_replaces_the_pending_one(cast, team, login_as, mailoutbox):
    client = login_as(cast["alice"], team)
    _invite(client, team)
    _invite(client, team)
    assert Invitation.objects.count() == 2
    assert Invitation.objects.filter(revoked_at__isnull=True).count() == 1


def test_it_refuses_inviting_a_member(cast, team, login_as, mailoutbox):
    response = _invite(login_as(cast["alice"], team), team, "bob@example.com")
    assert response.status_code == 200
    assert "already a member" in response.content.decode()
    assert not Invitation.objects.exists()
    assert mailoutbox == []


def test_it_refuses_a_bad_address(cast, team, login_as, mailoutbox):
    response = _invite(login_as(cast["alice"], team), team, "not-an-address")
    assert response.status_code == 200
    assert "Enter a valid email address" in response.content.decode()
    assert not Invitation.objects.exists()


def test_an_admin_cannot_invite_an_owner(cast, team, login_as, mailoutbox):
    response = _invite(login_as(cast["adam"], team), team, role="owner")
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not Invitation.objects.exists()


def test_a_personal_workspace_cannot_invite(make_user, login_as, mailoutbox):
    user = make_user("solo@example.com")
    workspace = Membership.objects.get(user=user).workspace
    response = _invite(login_as(user), workspace)
    assert "Personal workspaces are just for you" in response.content.decode()
    assert not Invitation.objects.exists()


def test_a_new_user_signs_up_from_the_link(client, cast, team, make_invitation):
    invitation, token = make_invitation(team, "nia@example.com", role=Role.MEMBER)
    page = client.get(f"/invitations/{token}/").content.decode()
    assert "Join Acme Films" in page
    assert 'value="nia@example.com"' in page
    assert "disabled" in page

    # A different address in the POST is ignored: the account is made for the invited one.
    response = client.post(
        f"/invitations/{token}/",
        {"email": "mallory@example.com", "name": "Nia", "password": PASSWORD},
    )
    assert response.status_code == 302
    user = User.objects.get(email="nia@example.com")
    assert not User.objects.filter(email="mallory@example.com").exists()
    assert Membership.objects.get(user=user, workspace=team).role == Role.MEMBER
    assert Membership.objects.filter(user=user, workspace__is_personal=True).exists()
    invitation.refresh_from_db()
    assert invitation.accepted_by == user and invitation.accepted_at
    assert client.session["workspace_id"] == team.pk
    assert "You joined Acme Films" in client.get(response.url).content.decode()


def test_a_new_user_with_a_weak_password_changes_nothing(client, team, make_invitation, cast):
    invitation, token = make_invitation(team, "nia@example.com")
    response = client.post(f"/invitations/{token}/", {"password": "password"})
    assert response.status_code == 200
    assert "too common" in response.content.decode()
    assert not User.objects.filter(email="nia@example.com").exists()
    invitation.refresh_from_db()
    assert invitation.accepted_at is None


def test_an_existing_user_logged_in_accepts(cast, team, login_as, make_invitation):
    invitation, token = make_invitation(team, "charlie@example.com", role=Role.VIEWER)
    client = login_as(cast["charlie"])
    assert "Join Acme Films" in client.get(f"/invitations/{token}/").content.decode()
    response = client.post(f"/invitations/{token}/")
    assert response.status_code == 302
    assert Membership.objects.get(user=cast["charlie"], workspace=team).role == Role.VIEWER
    assert AuditEntry.objects.get(action="invitation.accepted").actor == cast["charlie"]


def test_an_existing_user_logged_out_is_sent_to_log_in(client, cast, team, make_invitation):
    _, token = make_invitation(team, "charlie@example.com")
    body = client.get(f"/invitations/{token}/").content.decode()
    assert f"/login/?next=/invitations/{token}/" in body
    assert "Create account" not in body
    response = client.post(f"/invitations/{token}/", {"password": PASSWORD})
    assert not Membership.objects.filter(user=cast["charlie"], workspace=team).exists()
    assert response.status_code == 200


def test_the_wrong_user_gets_a_clear_message(cast, team, login_as, make_invitation):
    invitation, token = make_invitation(team, "charlie@example.com")
    client = login_as(cast["bob"])
    for response in (client.get(f"/invitations/{token}/"), client.post(f"/invitations/{token}/")):
        assert response.status_code == 403
        body = response.content.decode()
        assert "was sent to charlie@example.com" in body
        assert "logged in as bob@example.com" in body
    invitation.refresh_from_db()
    assert invitation.accepted_at is None
    assert Membership.objects.filter(workspace=team).count() == 4


def test_a_used_link_does_not_work_twice(cast, team, login_as, make_invitation):
    _, token = make_invitation(team, "charlie@example.com")
    client = login_as(cast["charlie"])
    client.post(f"/invitations/{token}/")
    Membership.objects.filter(user=cast["charlie"], workspace=team).delete()
    response = client.post(f"/invitations/{token}/")
    assert response.status_code == 410
    assert "already been used" in response.content.decode()
    assert not Membership.objects.filter(user=cast["charlie"], workspace=team).exists()


def test_an_expired_link_does_not_work(client, team, make_invitation, cast):
    invitation, token = make_invitation(team, "nia@example.com")
    with time_machine.travel(invitation.expires_at + timedelta(seconds=1)):
        response = client.post(f"/invitations/{token}/", {"password": PASSWORD})
    assert response.status_code == 410
    assert "has expired" in response.content.decode()
    assert not User.objects.filter(email="nia@example.com").exists()


def test_a_revoked_link_does_not_work(cast, team, login_as, make_invitation):
    invitation, token = make_invitation(team, "charlie@example.com")
    admin = login_as(cast["adam"], team)
    response = admin.post(f"/workspaces/{team.pk}/invitations/{invitation.pk}/revoke/")
    assert response.status_code == 302
    invitation.refresh_from_db()
    assert invitation.revoked_at is not None
    assert AuditEntry.objects.get(action="invitation.revoked").target == "charlie@example.com"

    charlie = login_as(cast["charlie"])
    response = charlie.post(f"/invitations/{token}/")
    assert response.status_code == 410
    assert "was withdrawn" in response.content.decode()
    assert not Membership.objects.filter(user=cast["charlie"], workspace=team).exists()


def test_an_unknown_link_gets_a_clear_message(client, db):
    response = client.get("/invitations/not-a-real-token/")
    assert response.status_code == 410
    assert "not valid" in response.content.decode()


def test_revoking_twice_says_so(cast, team, login_as, make_invitation):
    invitation, _ = make_invitation(team, "x@example.com", revoked_at=timezone.now())
    response = login_as(cast["alice"], team).post(
        f"/workspaces/{team.pk}/invitations/{invitation.pk}/revoke/", follow=True
    )
    assert "already revoked" in response.content.decode()
