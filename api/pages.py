"""The studio's pages about its API: the tokens of the current workspace, and the docs."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from accounts import access
from api import tokens, webhooks
from api.examples import TOKEN_PLACEHOLDER, examples
from api.forms import TokenForm
from api.models import ApiToken, Delivery


def _visible_tokens(membership):
    """Mine; and everyone's for owners and admins, who may revoke them."""
    queryset = ApiToken.objects.filter(workspace=membership.workspace).select_related(
        "user", "revoked_by"
    )
    if not membership.can_manage_members:
        queryset = queryset.filter(user=membership.user)
    return queryset.order_by("revoked_at", "-created_at", "-id")


def _tokens_page(request, *, form=None, new_token=None, status=200):
    context = {
        "tokens": _visible_tokens(request.membership),
        "form": form or TokenForm(),
        "new_token": new_token,
        "manages": request.membership.can_manage_members,
        "api_base": api_base(),
    }
    response = render(request, "api/tokens.html", context, status=status)
    # The page that shows a new token once must not be kept by the browser or a proxy.
    response["Cache-Control"] = "no-store"
    return response


@access.workspace_required()
def token_list(request):
    if request.method != "POST":
        return _tokens_page(request)
    form = TokenForm(request.POST)
    if not form.is_valid():
        return _tokens_page(request, form=form, status=400)
    try:
        token, raw = tokens.create_token(
            membership=request.membership,
            name=form.cleaned_data["name"],
            scopes=form.cleaned_data["scopes"],
            expires_at=form.expires_at,
        )
    except tokens.NotAllowed as error:
        form.add_error(None, error.message)
        return _tokens_page(request, form=form, status=400)
    # Shown in this answer only (never stored, never put in the session or a message).
    return _tokens_page(request, new_token={"token": token, "raw": raw})


@require_POST
@access.workspace_required()
def token_revoke(request, token_id):
    token = access.get_for_member(request, ApiToken.objects.select_related("user"), pk=token_id)
    try:
        tokens.revoke_token(token=token, membership=request.membership)
    except tokens.NotAllowed as error:
        if not tokens.can_revoke(token, request.membership):
            raise access.RoleRequired("can_manage_members") from None
        messages.error(request, error.message)
    else:
        messages.success(request, f"The token “{token.name}” was revoked; it stops working now.")
    return redirect("api_tokens")


def api_base() -> str:
    return f"{settings.SITE_URL}{reverse('api_create_task').rsplit('/jobs/', 1)[0]}"


@access.workspace_required()
def docs(request):
    context = {
        "api_base": api_base(),
        "workspace": request.workspace,
        "can_generate": request.membership.can_generate,
        "openapi_url": f"{settings.SITE_URL}{reverse('api_openapi')}",
        "examples": examples(api_base()),
        "token_variable": TOKEN_PLACEHOLDER.lstrip("$"),
    }
    return render(request, "api/docs.html", context)


# --- outbound webhooks --------------------------------------------------------------------------

ROTATE_REFUSAL = "Only owners can rotate the webhook secret."


def _deliveries(membership):
    queryset = Delivery.objects.filter(workspace=membership.workspace).select_related("generation")
    if not membership.can_manage_members:
        queryset = queryset.filter(generation__creator=membership.user)
    return queryset.prefetch_related("attempt_rows").order_by("-created_at", "-id")[:100]


@require_GET
@access.workspace_required("can_generate")
def webhook_deliveries(request):
    context = {
        "deliveries": _deliveries(request.membership),
        "secret": webhooks.secret_for(request.workspace),
        "can_rotate": request.membership.is_owner,
        "allow_private": settings.API_WEBHOOK_ALLOW_PRIVATE,
    }
    response = render(request, "api/webhooks.html", context)
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@access.workspace_required()
def webhook_rotate(request):
    if not request.membership.is_owner:
        raise PermissionDenied(ROTATE_REFUSAL)
    webhooks.rotate_secret(membership=request.membership)
    messages.success(request, "A new webhook secret is in use; update your receivers.")
    return redirect("api_webhooks")


@require_POST
@login_required
def webhook_resend(request, delivery_id):
    delivery = access.get_for_member(
        request, Delivery.objects.select_related("generation"), "can_generate", pk=delivery_id
    )
    membership = request.membership
    if delivery.generation.creator_id != membership.user_id and not membership.can_manage_members:
        raise access.RoleRequired("can_manage_members")
    webhooks.resend(delivery=delivery, membership=membership)
    messages.success(request, "It will be sent again now.")
    return redirect("api_webhooks")
