"""The one place that resolves the current workspace and checks a member's role.

Every view reaches data through these helpers: an object of a workspace the user does not
belong to is a 404 (never a 403 that confirms it exists); a role without the right is a 403.
"""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest

from accounts.models import Membership, Workspace

SESSION_KEY = "workspace_id"

# What each permission is called when a role lacks it, for the 403 page.
PERMISSION_MESSAGES = {
    "can_generate": "Viewers can look but not generate. Ask an owner or admin for the member role.",
    "can_manage_keys": "Only owners and admins of this workspace can manage its API keys.",
    "can_manage_members": "Only owners and admins of this workspace can manage its members.",
    "can_manage_budget": "Only owners and admins of this workspace can change its budget.",
    "can_see_usage": "Only owners and admins of this workspace can see its usage.",
    "can_delete_workspace": "Only owners can delete a workspace.",
}


class RoleRequired(PermissionDenied):
    def __init__(self, permission: str) -> None:
        super().__init__(PERMISSION_MESSAGES.get(permission, "Your role does not allow this."))


def check(membership: Membership, permission: str | None) -> None:
    if permission and not getattr(membership, permission):
        raise RoleRequired(permission)


def memberships_of(user) -> QuerySet[Membership]:
    return Membership.objects.filter(user=user).select_related("workspace")


def current_membership(request: HttpRequest) -> Membership | None:
    """The membership of the workspace chosen in the header, falling back to the personal one."""
    if not request.user.is_authenticated:
        return None
    cached = getattr(request, "_membership", None)
    if cached is not None:
        return cached
    mine = memberships_of(request.user)
    chosen = request.session.get(SESSION_KEY)
    membership = None
    if chosen is not None:
        membership = mine.filter(workspace_id=chosen).first()
    if membership is None:
        membership = mine.order_by("-workspace__is_personal", "created_at").first()
        if membership is not None:
            request.session[SESSION_KEY] = membership.workspace_id
    request._membership = membership
    return membership


def switch_workspace(request: HttpRequest, workspace_id: int) -> Membership:
    membership = memberships_of(request.user).filter(workspace_id=workspace_id).first()
    if membership is None:
        raise Http404("No such workspace.")
    request.session[SESSION_KEY] = membership.workspace_id
    request._membership = membership
    return membership


def workspace_required(permission: str | None = None):
    """Decorator: login required, `request.membership` and `request.workspace` set, role checked."""

    def decorator(view):
        @wraps(view)
        @login_required
        def wrapper(request, *args, **kwargs):
            membership = current_membership(request)
            if membership is None:
                raise Http404("You do not belong to any workspace.")
            check(membership, permission)
            request.membership = membership
            request.workspace = membership.workspace
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def get_for_member(
    request: HttpRequest,
    queryset: QuerySet | type[Model],
    permission: str | None = None,
    *,
    workspace_field: str = "workspace",
    **lookup,
):
    """Load one object from any workspace the user belongs to, or 404; then check the role.

    Sets `request.membership`/`request.workspace` to the object's workspace, so a link to a
    teammate's generation works whichever workspace is selected in the header.
    """
    if isinstance(queryset, type):
        queryset = queryset._default_manager.all()
    if not request.user.is_authenticated:
        raise Http404
    workspace_ids = Membership.objects.filter(user=request.user).values("workspace_id")
    scoped = queryset.filter(**{f"{workspace_field}__in": workspace_ids}, **lookup)
    try:
        obj = scoped.get()
    except (queryset.model.DoesNotExist, ValueError, TypeError):
        raise Http404 from None
    workspace_id = getattr(obj, f"{workspace_field}_id") if workspace_field != "pk" else obj.pk
    membership = memberships_of(request.user).get(workspace_id=workspace_id)
    check(membership, permission)
    request.membership = membership
    request.workspace = membership.workspace
    return obj


def get_workspace_for_member(request: HttpRequest, workspace_id, permission: str | None = None):
    return get_for_member(request, Workspace, permission, workspace_field="pk", pk=workspace_id)
