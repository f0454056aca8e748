"""Operations on people and workspaces: each one a keyword-only function that does the writes."""

from django.db import transaction

from accounts.models import Membership, Role, User, Workspace


class AccountError(Exception):
    """A refused operation, with a message fit to show the user."""


@transaction.atomic
def create_user(*, email: str, password: str | None, name: str = "") -> User:
    """A new user always comes with a personal workspace they own."""
    user = User.objects.create_user(email=email, password=password, name=name)
    workspace = Workspace.objects.create(
        name=f"{user.get_short_name()}'s workspace", is_personal=True
    )
    Membership.objects.create(user=user, workspace=workspace, role=Role.OWNER)
    return user
