"""Every role against every team and key action: allowed ones take effect, others are 403."""

import pytest

from accounts.models import ApiKey, Invitation, Membership, Role, Workspace

ROLES = {"alice": Role.OWNER, "adam": Role.ADMIN, "bob": Role.MEMBER, "vera": Role.VIEWER}
MANAGERS = {Role.OWNER, Role.ADMIN}
EVERYONE = set(ROLES.values())


@pytest.fixture
def world(cast, team, make_user, make_key, make_invitation):
    mia = make_user("mia@example.com")
    target = Membership.objects.create(user=mia, workspace=team, role=Role.MEMBER)
    invitation, _ = make_invitation(team, "pending@example.com")
    default = make_key(team, label="Default", secret="sk_live_default_0001", is_default=True)
    other = make_key(
        team, label="Other", secret="sk_live_other_0002", status=ApiKey.Status.UNVERIFIED
    )
    return {"team": team, "target": target, "invitation": invitation, "key": other, "d": default}


def _fresh(obj):
    return type(obj).objects.filter(pk=obj.pk).first()


# Each action: (method, url, data, did_it_happen(world) -> bool)
ACTIONS = {
    "view team": (
        "get",
        lambda w: f"/workspaces/{w['team'].pk}/",
        None,
        lambda w, r: r.status_code == 200,
        EVERYONE,
    ),
    "view keys": ("get", lambda w: "/keys/", None, lambda w, r: r.status_code == 200, EVERYONE),
    "invite": (
        "post",
        lambda w: f"/workspaces/{w['team'].pk}/invite/",
        {"email": "fresh@example.com", "role": "member"},
        lambda w, r: Invitation.objects.filter(email="fresh@example.com").exists(),
        MANAGERS,
    ),
    "revoke invitation": (
        "post",
        lambda w: f"/workspaces/{w['team'].pk}/invitations/{w['invitation'].pk}/revoke/",
        {},
        lambda w, r: _fresh(w["invitation"]).revoked_at is not None,
        MANAGERS,
    ),
    "change role": (
        "post",
        lambda w: f"/workspaces/{w['team'].pk}/members/{w['target'].pk}/role/",
        {"role": "viewer"},
        lambda w, r: _fresh(w["target"]).role == Role.VIEWER,
        MANAGERS,
    ),
    "remove member": (
        "post",
        lambda w: f"/workspaces/{w['team'].pk}/members/{w['target'].pk}/remove/",
        {},
        lambda w, r: _fresh(w["target"]) is None,
        MANAGERS,
    ),
    "rename workspace": (
        "post",
        lambda w: f"/workspaces/{w['team'].pk}/rename/",
        {"name": "Renamed"},
        lambda w, r: _fresh(w["team"]).name == "Renamed",
        {Role.OWNER},
    ),
    "delete workspace": (
        "post",
        lambda w: f"/workspaces/{w['team'].pk}/delete/",
        {},
        lambda w, r: not Workspace.objects.filter(pk=w["team"].pk).exists(),
        {Role.OWNER},
    ),
    "add key": (
        "post",
        lambda w: "/keys/",
        {"label": "New", "secret": "sk_live_brand_new_4321"},
        lambda w, r: ApiKey.objects.filter(label="New").exists(),
        MANAGERS,
    ),
    "open key form": (
        "get",
        lambda w: f"/keys/{w['key'].pk}/",
        None,
        lambda w, r: r.status_code == 200,
        MANAGERS,
    ),
    "relabel key": (
        "post",
        lambda w: f"/keys/{w['key'].pk}/",
        {"label": "Relabeled"},
        lambda w, r: _fresh(w["key"]).label == "Relabeled",
        MANAGERS,
    ),
    "set default key": (
        "post",
        lambda w: f"/keys/{w['key'].pk}/default/",
        {},
        lambda w, r: _fresh(w["key"]).is_default,
        MANAGERS,
    ),
    "revoke key": (
        "post",
        lambda w: f"/keys/{w['key'].pk}/revoke/",
        {},
        lambda w, r: _fresh(w["key"]).revoked_at is not None,
        MANAGERS,
    ),
    "re-check key": (
        "post",
        lambda w: f"/keys/{w['key'].pk}/check/",
        {},
        lambda w, r: _fresh(w["key"]).status == ApiKey.Status.VERIFIED,
        MANAGERS,
    ),
    "use the sandbox": (
        "post",
        lambda w: "/keys/sandbox/",
        {},
        # With the sandbox off, a manager gets the "not enabled" message instead of a 403.
        lambda w, r: r.status_code == 302,
        MANAGERS,
    ),
}


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("person", ROLES)
def test_role_matrix(world, cast, login_as, kinovi, settings, action, person):
    settings.KINOVI_SANDBOX = False
    method, url, data, happened, allowed = ACTIONS[action]
    role = ROLES[person]
    client = login_as(cast[person], world["team"])
    response = client.get(url(world)) if method == "get" else client.post(url(world), data)
    if role in allowed:
        assert response.status_code in (200, 302), response.content.decode()[:500]
        assert happened(world, response)
    else:
        assert response.status_code == 403
        assert "Only owners" in response.content.decode()
        assert not happened(world, response)
