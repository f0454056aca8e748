"""The shared cast (an owner, an admin, a member, a viewer of one team, and a stranger)."""

import pytest

from accounts.models import Membership, Role, Workspace
from accounts.services import create_user

PASSWORD = "correct horse battery staple 42"


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def make_user(db):
    def make(email: str, *, password: str = PASSWORD, **extra):
        return create_user(email=email, password=password, **extra)

    return make


@pytest.fixture
def team(db):
    return Workspace.objects.create(name="Acme Films")


@pytest.fixture
def cast(make_user, team):
    """Alice owns the team, Adam is its admin, Bob a member, Vera a viewer, Charlie a stranger."""
    people = {}
    for name, role in [
        ("alice", Role.OWNER),
        ("adam", Role.ADMIN),
        ("bob", Role.MEMBER),
        ("vera", Role.VIEWER),
    ]:
        user = make_user(f"{name}@example.com")
        Membership.objects.create(user=user, workspace=team, role=role)
        people[name] = user
    people["charlie"] = make_user("charlie@example.com")
    return people


@pytest.fixture
def login_as(client):
    def login(user, workspace=None):
        client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
        if workspace is not None:
            session = client.session
            session["workspace_id"] = workspace.pk
            session.save()
        return client

    return login
