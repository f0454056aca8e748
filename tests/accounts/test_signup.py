from accounts.models import Membership, Role, User
from tests.conftest import PASSWORD


def test_it_creates_user_with_personal_workspace(client, db):
    response = client.post(
        "/signup/", {"email": "New@Example.com", "name": "Nia", "password": PASSWORD}
    )
    assert response.status_code == 302
    user = User.objects.get(email="new@example.com")
    membership = Membership.objects.get(user=user)
    assert membership.role == Role.OWNER
    assert membership.workspace.is_personal
    assert client.get("/").status_code == 200


def test_it_refuses_duplicate_email(client, make_user):
    make_user("taken@example.com")
    response = client.post("/signup/", {"email": "TAKEN@example.com", "password": PASSWORD})
    assert response.status_code == 200
    assert "already exists" in response.content.decode()
    assert User.objects.count() == 1


def test_it_refuses_weak_password(client, db):
    response = client.post("/signup/", {"email": "weak@example.com", "password": "password"})
    assert response.status_code == 200
    assert "too common" in response.content.decode()
    assert not User.objects.exists()
