"""Puts the current workspace and the user's other workspaces into every template."""

from accounts.access import current_membership, memberships_of


def workspace(request):
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    membership = current_membership(request)

    def all_memberships():
        return list(
            memberships_of(request.user).order_by("-workspace__is_personal", "workspace__name")
        )

    return {
        "current_membership": membership,
        "current_workspace": membership.workspace if membership else None,
        "my_memberships": all_memberships,
    }
