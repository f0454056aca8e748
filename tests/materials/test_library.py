"""The materials page: members add and delete, viewers look, strangers get 404; a material a
generation used cannot be deleted; deletions are audited and remove the file."""

import pytest
from django.core.files.storage import default_storage
from django.urls import reverse

from accounts.models import AuditEntry
from materials.models import GenerationMaterial, Material

pytestmark = pytest.mark.django_db


@pytest.fixture
def material(cast, team, upload_as, media):
    assert upload_as(cast["bob"], team, media.image("still.png")).status_code == 201
    return Material.objects.get()


def test_it_works(login_as, cast, team, material):
    html = login_as(cast["bob"], team).get(reverse("materials")).content.decode()
    assert "still.png" in html and 'action="/materials/upload/"' in html
    assert reverse("material_delete", args=[material.public_id]) in html


def test_viewers_look_but_cannot_add_or_delete(login_as, cast, team, material):
    client = login_as(cast["vera"], team)
    html = client.get(reverse("materials")).content.decode()
    assert "still.png" in html and "material_upload" not in html and "Delete" not in html
    assert client.get(reverse("material_thumbnail", args=[material.public_id])).status_code == 200
    response = client.post(reverse("material_delete", args=[material.public_id]))
    assert response.status_code == 403
    assert Material.objects.exists()


def test_it_checks_access(login_as, cast, team, material, client):
    stranger = login_as(cast["charlie"])
    assert stranger.get(reverse("material_thumbnail", args=[material.public_id])).status_code == 404
    assert stranger.post(reverse("material_delete", args=[material.public_id])).status_code == 404
    assert Material.objects.exists()


def test_a_member_deletes_an_unused_material(
    login_as, cast, team, material, django_capture_on_commit_callbacks
):
    name = material.file.name
    with django_capture_on_commit_callbacks(execute=True):
        response = login_as(cast["bob"], team).post(
            reverse("material_delete", args=[material.public_id])
        )
    assert response.status_code == 302
    assert not Material.objects.exists()
    assert not default_storage.exists(name)
    entry = AuditEntry.objects.get(action="material.deleted")
    assert entry.actor == cast["bob"] and entry.data["name"] == "still.png"


def test_a_used_material_stays(login_as, cast, team, material, make_generation_for):
    generation = make_generation_for(team)
    GenerationMaterial.objects.create(
        generation=generation, material=material, role="first_frame", position=0
    )
    client = login_as(cast["bob"], team)
    response = client.post(reverse("material_delete", args=[material.public_id]), follow=True)
    assert "is used by 1 video(s) and stays" in response.content.decode()
    assert Material.objects.exists()
    assert not AuditEntry.objects.filter(action="material.deleted").exists()


@pytest.fixture
def make_generation_for(cast, team_key):
    from generations.models import Generation

    def make(workspace):
        return Generation.objects.create(
            workspace=workspace,
            creator=cast["bob"],
            api_key=team_key,
            prompt="A boat",
            estimated_credits=200,
        )

    return make
