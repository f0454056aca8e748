"""Sign up, log in, passwords, workspaces and teams, invitations, and the API key pages."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from accounts import access, services
from accounts.forms import (
    AccountSettingsForm,
    ApiKeyForm,
    EmailAuthenticationForm,
    InvitedSignupForm,
    InviteForm,
    KeyLabelForm,
    RoleForm,
    SignupForm,
    WorkspaceNameForm,
)
from accounts.middleware import browser_zone_name
from accounts.models import ApiKey, Invitation, Membership, Role, Theme, User

# The raw invitation link lives in the session only until the team page has shown it once.
NEW_INVITATION_SESSION_KEY = "new_invitation"
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


def _first_error(form) -> str:
    for errors in form.errors.values():
        return errors[0]
    return "Check the form and try again."


# Sign up, log in, passwords -------------------------------------------------------------------


def signup(request):
    if request.user.is_authenticated:
        return redirect("home")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = services.create_user(
            email=form.cleaned_data["email"],
            password=form.cleaned_data["password"],
            name=form.cleaned_data["name"],
        )
        login(request, user, backend=MODEL_BACKEND)
        messages.success(request, "Welcome to Kinovi Studio.")
        return redirect("home")
    return render(request, "accounts/signup.html", {"form": form})


class EmailLoginView(auth_views.LoginView):
    form_class = EmailAuthenticationForm
    template_name = "accounts/login.html"
    redirect_authenticated_user = True


class LogoutView(auth_views.LogoutView):
    pass


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "accounts/password_change.html"
    success_url = reverse_lazy("home")

    def form_valid(self, form):
        response = super().form_valid(form)
        messages.success(self.request, "Your password has been changed.")
        return response


@login_required
def account_settings(request):
    """The signed-in user's own settings: nothing here belongs to a workspace."""
    user = request.user
    browser_zone = browser_zone_name(request)
    if request.method != "POST":
        initial = {
            "name": user.name,
            "email_on_finish": user.email_on_finish,
            "theme": user.theme,
            "time_zone": user.time_zone,
        }
        form = AccountSettingsForm(initial=initial, browser_zone=browser_zone)
        return render(request, "accounts/settings.html", {"form": form})
    form = AccountSettingsForm(request.POST, browser_zone=browser_zone)
    if form.is_valid():
        try:
            services.update_account_settings(
                user=user,
                name=form.cleaned_data["name"],
                email_on_finish=form.cleaned_data["email_on_finish"],
                theme=form.cleaned_data["theme"] or Theme.SYSTEM,
                time_zone=form.cleaned_data["time_zone"],
            )
        except services.AccountError as error:
            form.add_error(None, error.message)
        else:
            messages.success(request, "Your settings have been saved.")
            return redirect("account_settings")
    return render(request, "accounts/settings.html", {"form": form}, status=400)


class PasswordResetView(auth_views.PasswordResetView):
    template_name = "accounts/password_reset.html"
    email_template_name = "accounts/email/password_reset.txt"
    subject_template_name = "accounts/email/password_reset_subject.txt"
    success_url = reverse_lazy("password_reset_done")


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "accounts/password_reset_done.html"


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "accounts/password_reset_confirm.html"
    success_url = reverse_lazy("login")

    def form_valid(self, form):
        response = super().form_valid(form)
        messages.success(self.request, "Your password has been reset. Log in with the new one.")
        return response


@require_POST
@login_required
def switch(request):
    try:
        workspace_id = int(request.POST.get("workspace", ""))
    except ValueError:
        workspace_id = 0
    membership = access.switch_workspace(request, workspace_id)
    messages.info(request, f"Now working in {membership.workspace.name}.")
    target = request.POST.get("next") or "home"
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = "home"
    return redirect(target)


# Workspaces and teams -------------------------------------------------------------------------


@login_required
def workspaces(request):
    memberships = (
        access.memberships_of(request.user)
        .annotate(member_count=Count("workspace__memberships"))
        .order_by("-workspace__is_personal", "workspace__name")
    )
    form = WorkspaceNameForm(request.POST or None, prefix="team")
    if request.method == "POST" and form.is_valid():
        try:
            workspace = services.create_team(user=request.user, name=form.cleaned_data["name"])
        except services.AccountError as error:
            form.add_error("name", error.message)
        else:
            access.switch_workspace(request, workspace.pk)
            messages.success(request, f"Team “{workspace.name}” created. Invite your teammates.")
            return redirect("team", workspace.pk)
    return render(request, "accounts/workspaces.html", {"memberships": memberships, "form": form})


def _team_page(request, *, invite_form=None, rename_form=None, status=200):
    membership = request.membership
    workspace = request.workspace
    members = list(
        Membership.objects.filter(workspace=workspace)
        .select_related("user")
        .order_by("user__email")
    )
    manages = membership.can_manage_members and not workspace.is_personal
    for member in members:
        # Only owners touch owners; oneself is changed by leaving, not from this table.
        member.editable = (
            manages
            and member.pk != membership.pk
            and (membership.is_owner or member.role != Role.OWNER)
        )
    invitations = []
    if membership.can_manage_members and not workspace.is_personal:
        invitations = (
            Invitation.objects.filter(
                workspace=workspace,
                accepted_at__isnull=True,
                revoked_at__isnull=True,
                expires_at__gt=timezone.now(),
            )
            .select_related("invited_by")
            .order_by("-created_at")
        )
    new_invitation = request.session.pop(NEW_INVITATION_SESSION_KEY, None)
    if new_invitation and new_invitation.get("workspace") != workspace.pk:
        new_invitation = None
    role_choices = [c for c in Role.choices if membership.is_owner or c[0] != Role.OWNER]
    context = {
        "workspace": workspace,
        "membership": membership,
        "members": members,
        "manages": manages,
        "invitations": invitations,
        "new_invitation": new_invitation,
        "role_choices": role_choices,
        "invite_form": invite_form or InviteForm(can_invite_owner=membership.is_owner),
        "rename_form": rename_form or WorkspaceNameForm(initial={"name": workspace.name}),
    }
    return render(request, "accounts/team.html", context, status=status)


@login_required
def team(request, workspace_id):
    access.get_workspace_for_member(request, workspace_id)
    return _team_page(request)


@require_POST
@login_required
def invite(request, workspace_id):
    workspace = access.get_workspace_for_member(request, workspace_id, "can_manage_members")
    form = InviteForm(request.POST, can_invite_owner=request.membership.is_owner)
    if not form.is_valid():
        return _team_page(request, invite_form=form)
    try:
        invitation, token = services.invite(
            actor=request.membership,
            email=form.cleaned_data["email"],
            role=form.cleaned_data["role"],
        )
    except services.AccountError as error:
        messages.error(request, error.message)
        return _team_page(request, invite_form=form)
    request.session[NEW_INVITATION_SESSION_KEY] = {
        "workspace": workspace.pk,
        "email": invitation.email,
        "url": services.invitation_url(token),
    }
    if invitation.withdrew_earlier:
        messages.success(
            request,
            f"A new invitation was e-mailed to {invitation.email}; the link sent earlier was "
            "withdrawn and no longer works.",
        )
    else:
        messages.success(request, f"Invitation e-mailed to {invitation.email}.")
    return redirect("team", workspace.pk)


@require_POST
@login_required
def revoke_invitation(request, workspace_id, invitation_id):
    invitation = access.get_for_member(
        request,
        Invitation,
        "can_manage_members",
        pk=invitation_id,
        workspace_id=workspace_id,
    )
    try:
        services.revoke_invitation(actor=request.membership, invitation=invitation)
    except services.AccountError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"The invitation to {invitation.email} no longer works.")
    return redirect("team", workspace_id)


def _member(request, workspace_id, membership_id, permission=None) -> Membership:
    target = access.get_for_member(
        request,
        Membership.objects.select_related("user", "workspace"),
        permission,
        pk=membership_id,
        workspace_id=workspace_id,
    )
    return target


@require_POST
@login_required
def change_role(request, workspace_id, membership_id):
    target = _member(request, workspace_id, membership_id, "can_manage_members")
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose one of the roles: owner, admin, member or viewer.")
        return redirect("team", workspace_id)
    try:
        target = services.change_role(
            actor=request.membership, target=target, role=form.cleaned_data["role"]
        )
    except services.AccountError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"{target.user.email} is now {target.get_role_display()}.")
    return redirect("team", workspace_id)


@require_POST
@login_required
def remove_member(request, workspace_id, membership_id):
    target = _member(request, workspace_id, membership_id, "can_manage_members")
    try:
        services.remove_member(actor=request.membership, target=target)
    except services.AccountError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"{target.user.email} was removed from the workspace.")
    return redirect("team", workspace_id)


@require_POST
@login_required
def leave(request, workspace_id):
    workspace = access.get_workspace_for_member(request, workspace_id)
    try:
        services.leave_workspace(membership=request.membership)
    except services.AccountError as error:
        messages.error(request, error.message)
        return redirect("team", workspace_id)
    request.session.pop(access.SESSION_KEY, None)
    messages.success(request, f"You left {workspace.name}.")
    return redirect("workspaces")


@require_POST
@login_required
def rename(request, workspace_id):
    access.get_workspace_for_member(request, workspace_id)
    if not request.membership.is_owner:
        raise PermissionDenied("Only owners can rename a workspace.")
    form = WorkspaceNameForm(request.POST)
    if not form.is_valid():
        return _team_page(request, rename_form=form)
    try:
        workspace = services.rename_workspace(
            membership=request.membership, name=form.cleaned_data["name"]
        )
    except services.AccountError as error:
        form.add_error("name", error.message)
        return _team_page(request, rename_form=form)
    messages.success(request, f"Renamed to “{workspace.name}”.")
    return redirect("team", workspace_id)


@login_required
def delete_workspace(request, workspace_id):
    workspace = access.get_workspace_for_member(request, workspace_id, "can_delete_workspace")
    if request.method == "POST":
        try:
            services.delete_workspace(membership=request.membership)
        except services.AccountError as error:
            messages.error(request, error.message)
            return redirect("team", workspace_id)
        request.session.pop(access.SESSION_KEY, None)
        messages.success(request, f"The workspace “{workspace.name}” was deleted.")
        return redirect("workspaces")
    return render(request, "accounts/workspace_delete.html", {"workspace": workspace})


# Invitations ----------------------------------------------------------------------------------


def accept_invitation(request, token):
    try:
        invitation = services.find_invitation(token)
    except services.AccountError as error:
        return render(request, "accounts/invitation.html", {"problem": error.message}, status=410)
    context = {"invitation": invitation, "workspace": invitation.workspace}

    if request.user.is_authenticated:
        if request.user.email.lower() != invitation.email.lower():
            context["problem"] = (
                f"This invitation was sent to {invitation.email}, but you are logged in as "
                f"{request.user.email}. Log out and open the link again, or ask for an "
                "invitation to your own address."
            )
            context["wrong_user"] = True
            return render(request, "accounts/invitation.html", context, status=403)
        if request.method == "POST":
            try:
                membership = services.accept_invitation(token=token, user=request.user)
            except services.AccountError as error:
                context["problem"] = error.message
                return render(request, "accounts/invitation.html", context, status=400)
            return _joined(request, membership)
        return render(request, "accounts/invitation.html", context)

    if User.objects.filter(email__iexact=invitation.email).exists():
        context["login_url"] = f"{reverse('login')}?next={request.path}"
        return render(request, "accounts/invitation.html", context)

    form = InvitedSignupForm(request.POST or None, invited_email=invitation.email)
    if request.method == "POST" and form.is_valid():
        try:
            membership = services.sign_up_with_invitation(
                token=token,
                password=form.cleaned_data["password"],
                name=form.cleaned_data["name"],
            )
        except services.AccountError as error:
            form.add_error(None, error.message)
        else:
            login(request, membership.user, backend=MODEL_BACKEND)
            return _joined(request, membership)
    context["form"] = form
    return render(request, "accounts/invitation.html", context)


def _joined(request, membership: Membership):
    access.switch_workspace(request, membership.workspace_id)
    messages.success(
        request,
        f"You joined {membership.workspace.name} as {membership.get_role_display().lower()}.",
    )
    return redirect("team", membership.workspace_id)


# API keys -------------------------------------------------------------------------------------


def _keys_page(request, *, form=None, status=200):
    keys = (
        ApiKey.objects.filter(workspace=request.workspace)
        .select_related("created_by")
        .order_by("revoked_at", "-is_default", "label", "pk")
    )
    context = {
        "keys": keys,
        "form": form or ApiKeyForm(),
        "can_manage": request.membership.can_manage_keys,
        "sandbox_enabled": settings.KINOVI_SANDBOX,
    }
    return render(request, "accounts/keys.html", context, status=status)


@access.workspace_required()
def keys(request):
    if request.method != "POST":
        return _keys_page(request)
    access.check(request.membership, "can_manage_keys")
    form = ApiKeyForm(request.POST)
    if not form.is_valid():
        return _keys_page(request, form=form)
    try:
        key = services.add_key(
            actor=request.membership,
            label=form.cleaned_data["label"],
            secret=form.cleaned_data["secret"],
        )
    except services.AccountError as error:
        form.add_error("secret", error.message)
        return _keys_page(request, form=form)
    if key.status == ApiKey.Status.VERIFIED:
        messages.success(request, f"Key “{key.label}” ({key.masked}) added and verified.")
    else:
        messages.warning(
            request,
            f"Key “{key.label}” ({key.masked}) saved but not yet verified: {key.status_detail}",
        )
    return redirect("keys")


@require_POST
@access.workspace_required("can_manage_keys")
def sandbox_key(request):
    try:
        key = services.add_sandbox_key(actor=request.membership)
    except services.AccountError as error:
        messages.error(request, error.message)
    else:
        messages.success(
            request,
            f"A sandbox key ({key.masked}) was added"
            + (" and made the default." if key.is_default else "."),
        )
    return redirect("keys")


def _key(request, key_id) -> ApiKey:
    return access.get_for_member(
        request, ApiKey.objects.select_related("workspace"), "can_manage_keys", pk=key_id
    )


@login_required
def edit_key(request, key_id):
    key = _key(request, key_id)
    form = KeyLabelForm(request.POST or None, initial={"label": key.label})
    if request.method == "POST" and form.is_valid():
        try:
            services.relabel_key(
                actor=request.membership, key=key, label=form.cleaned_data["label"]
            )
        except services.AccountError as error:
            form.add_error("label", error.message)
        else:
            messages.success(request, "Key renamed.")
            return redirect("keys")
    return render(request, "accounts/key_edit.html", {"key": key, "form": form})


def _key_action(request, key_id, operation, done: str):
    key = _key(request, key_id)
    try:
        key = operation(actor=request.membership, key=key)
    except services.AccountError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, done.format(key=key))
    return redirect("keys")


@require_POST
@login_required
def default_key(request, key_id):
    return _key_action(
        request, key_id, services.set_default_key, "“{key.label}” is now the default key."
    )


@require_POST
@login_required
def revoke_key(request, key_id):
    return _key_action(
        request,
        key_id,
        services.revoke_key,
        "“{key.label}” was revoked; it will not be used again.",
    )


@require_POST
@login_required
def recheck_key(request, key_id):
    return _key_action(
        request,
        key_id,
        services.recheck_key,
        "Checked “{key.label}”: {key.status_detail}",
    )
