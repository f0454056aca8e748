"""A canary key never shows up in a page, a log record, an audit row, or a repr."""

import logging

import pytest

from accounts.models import ApiKey, AuditEntry

from .conftest import CANARY


@pytest.fixture
def owner(cast, team, login_as):
    return login_as(cast["alice"], team)


def test_the_canary_never_leaks(owner, team, kinovi, caplog):
    caplog.set_level(logging.DEBUG)
    pages = []
    # A validation error with the canary typed in: the form does not send it back.
    pages.append(owner.post("/keys/", {"label": "", "secret": CANARY}))
    # Kinovi rejecting it: refused, the form comes back empty.
    kinovi.mode = "401"
    pages.append(owner.post("/keys/", {"label": "Bad", "secret": CANARY}))
    # Kinovi not answering: saved as unverified, with a warning.
    kinovi.mode = "slow"
    pages.append(owner.post("/keys/", {"label": "Slow", "secret": CANARY}, follow=True))
    kinovi.mode = "404"
    pages.append(owner.post("/keys/", {"label": "Good", "secret": CANARY}, follow=True))
    key = ApiKey.objects.get(label="Good")
    pages.append(owner.get("/keys/"))
    pages.append(owner.get(f"/keys/{key.pk}/"))
    pages.append(owner.post(f"/keys/{key.pk}/", {"label": ""}))
    pages.append(owner.post(f"/keys/{key.pk}/check/", follow=True))
    pages.append(owner.post(f"/keys/{key.pk}/default/", follow=True))
    pages.append(owner.post(f"/keys/{key.pk}/revoke/", follow=True))
    pages.append(owner.get(f"/workspaces/{team.pk}/"))

    assert len(kinovi.requests) == 4  # the canary did reach the (fake) vendor, and only it
    for response in pages:
        assert response.status_code in (200, 302)
        assert CANARY not in response.content.decode()
        assert CANARY[-8:-4] not in response.content.decode()  # not even partly unmasked

    for record in caplog.records:
        assert CANARY not in record.getMessage()
        assert CANARY not in repr(record.args)
    assert CANARY not in caplog.text

    for entry in AuditEntry.objects.all():
        assert CANARY not in str(entry.data) and CANARY not in entry.target

    for stored in ApiKey.objects.all():
        assert stored.secret == CANARY
        assert CANARY not in str(stored) and CANARY not in repr(stored)
        assert CANARY not in stored.secret_ciphertext


def test_the_canary_never_shows_in_the_admin(client, team, make_key, make_user):
    key = make_key(team, label="Canary", secret=CANARY)
    AuditEntry.objects.create(action="key.added", workspace=team, data={"masked": key.masked})
    admin = make_user("root@example.com")
    admin.is_staff = admin.is_superuser = True
    admin.save()
    client.force_login(admin, backend="django.contrib.auth.backends.ModelBackend")
    for url in (
        "/admin/accounts/apikey/",
        f"/admin/accounts/apikey/{key.pk}/change/",
        "/admin/accounts/auditentry/",
        f"/admin/accounts/workspace/{team.pk}/change/",
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        body = response.content.decode()
        assert CANARY not in body, url
        assert key.secret_ciphertext not in body, url
    assert "••••7890" in client.get("/admin/accounts/apikey/").content.decode()
