"""Security suite fixtures: workspace A with one object of every kind, and a row snapshot.

Nothing here is autouse: the header and deploy tests in this folder keep their own setup.
"""

import pytest

from accounts.models import ApiKey, AuditEntry, Invitation, Membership, Role, User, Workspace
from api import tokens
from api.models import ApiToken, Callback, Delivery, WebhookSecret
from generations.models import CreditEntry, Generation, StatusEvent, WebhookDelivery

CANARY = "sk_live_CANARY_9f8e7d6c5b4a"
# Nothing listens on the discard port: Kinovi calls fail at once with "connection refused".
UNREACHABLE_KINOVI = "http://127.0.0.1:9/api/v1"


@pytest.fixture
def fast_passwords(settings):
    # Five accounts per test would otherwise spend seconds in PBKDF2.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def offline_kinovi(settings):
    """Any Kinovi call made while the suite runs is refused at once, never sent outside."""
    settings.KINOVI_BASE_URL = UNREACHABLE_KINOVI
    settings.KINOVI_CONNECT_TIMEOUT = 0.5
    settings.KINOVI_READ_TIMEOUT = 0.5


@pytest.fixture
def canary():
    """The secret of workspace A's key (the canary suite also tries one of another shape)."""
    return CANARY


@pytest.fixture
def world(fast_passwords, offline_kinovi, cast, team, make_user, canary):
    """Workspace A (the cast's team) holding a key, a generation, an invitation and a member
    to act on; Charlie is the stranger with only his personal workspace."""
    key = ApiKey(workspace=team, label="Team key", is_default=True, created_by=cast["alice"])
    key.secret = canary
    key.status = ApiKey.Status.VERIFIED
    key.save()
    generation = Generation.objects.create(
        workspace=team,
        creator=cast["bob"],
        api_key=key,
        prompt="A secret storyboard of workspace A",
        estimated_credits=200,
        status="fail",
        task_id="task-of-workspace-a",
    )
    token, token_hash = Invitation.new_token()
    invitation = Invitation.objects.create(
        workspace=team, email="pending@example.com", token_hash=token_hash, invited_by=cast["alice"]
    )
    mia = make_user("mia@example.com")
    target = Membership.objects.create(user=mia, workspace=team, role=Role.MEMBER)
    api_token, _ = tokens.create_token(
        membership=Membership.objects.get(user=cast["bob"], workspace=team),
        name="Bob's script",
        scopes=["generate", "read"],
        expires_at=None,
    )
    Callback.objects.create(generation=generation, token=api_token, url="https://hooks.example/a")
    api_delivery = Delivery.objects.create(
        generation=generation,
        workspace=team,
        url="https://hooks.example/a",
        message_id="msg_workspace_a",
        payload={"code": 200},
        state=Delivery.State.FAILED,
        attempts=8,
    )
    material = _material(team)
    return {
        "material": material,
        "api_delivery": api_delivery,
        "team": team,
        "key": key,
        "generation": generation,
        "invitation": invitation,
        "invitation_token": token,
        "target": target,
        "cast": cast,
        "api_token": api_token,
    }


def _material(team):
    """A material of workspace A with a real (tiny) file and thumbnail."""
    import io

    from django.core.files.base import ContentFile
    from PIL import Image

    from materials.models import Material

    out = io.BytesIO()
    Image.new("RGB", (8, 8), "#d62828").save(out, "JPEG")
    material = Material(
        workspace=team, name="secret-plan.jpg", kind="image", format="jpeg", sha256="a" * 64
    )
    material.bytes = len(out.getvalue())
    material.file.save("x", ContentFile(out.getvalue()), save=False)
    material.thumbnail.save("t", ContentFile(out.getvalue()), save=False)
    material.save()
    return material


def snapshot() -> dict:
    """Every row an attacker could want to change, in a comparable form."""
    from materials.models import Material

    return {
        "materials": list(Material.objects.order_by("pk").values_list("pk", "workspace_id")),
        "users": list(
            User.objects.order_by("pk").values_list(
                "pk", "email", "name", "password", "is_active", "email_on_finish"
            )
        ),
        "workspaces": list(
            Workspace.objects.order_by("pk").values_list("pk", "name", "monthly_budget_credits")
        ),
        "memberships": list(
            Membership.objects.order_by("pk").values_list(
                "pk", "user_id", "workspace_id", "role", "monthly_cap_credits"
            )
        ),
        "invitations": list(
            Invitation.objects.order_by("pk").values_list("pk", "revoked_at", "accepted_at")
        ),
        "keys": list(
            ApiKey.objects.order_by("pk").values_list(
                "pk", "label", "is_default", "status", "revoked_at", "secret_ciphertext"
            )
        ),
        "generations": list(
            Generation.objects.order_by("pk").values_list(
                "pk", "status", "hidden", "credits_used", "video_url", "confirmed_at"
            )
        ),
        "ledger": list(CreditEntry.objects.order_by("pk").values_list("pk", "kind", "credits")),
        "events": StatusEvent.objects.count(),
        "audit": AuditEntry.objects.count(),
        "api_deliveries": list(
            Delivery.objects.order_by("pk").values_list(
                "pk", "state", "attempts", "next_attempt_at"
            )
        ),
        "webhook_secrets": list(WebhookSecret.objects.values_list("pk", "secret_ciphertext")),
        "api_tokens": list(
            ApiToken.objects.order_by("pk").values_list("pk", "name", "scopes", "revoked_at")
        ),
        "deliveries": WebhookDelivery.objects.count(),
    }
