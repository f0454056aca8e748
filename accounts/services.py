"""Operations on people, workspaces, invitations and keys: keyword-only functions doing the writes.

Each refuses a bad request by raising `AccountError` with a message fit to show the user, and
changes nothing when it does. Every change of a role, a member or a key is audited with
`log_action` (secrets masked).
"""

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import ProtectedError
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

import kinovi
from accounts.middleware import zone_or_none
from accounts.models import (
    ApiKey,
    Invitation,
    Membership,
    Role,
    Theme,
    User,
    Workspace,
    hash_token,
    log_action,
)
from sandbox import services as sandbox_services

logger = logging.getLogger(__name__)

# A well-formed task id that cannot exist: asking for it proves the key authenticates without
# creating (or paying for) anything.
PROBE_TASK_ID = "task_" + "0" * 24
# A key check happens while the user waits on the form: never hang for the full poll timeout.
KEY_CHECK_TIMEOUT = 10.0


class AccountError(Exception):
    """A refused operation, with a message fit to show the user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# People ---------------------------------------------------------------------------------------


@transaction.atomic
def create_user(*, email: str, password: str | None, name: str = "") -> User:
    """A new user always comes with a personal workspace they own."""
    user = User.objects.create_user(email=email, password=password, name=name)
    workspace = Workspace.objects.create(
        name=f"{user.get_short_name()}'s workspace", is_personal=True
    )
    Membership.objects.create(user=user, workspace=workspace, role=Role.OWNER)
    return user


def update_account_settings(
    *,
    user: User,
    name: str,
    email_on_finish: bool,
    theme: str | None = None,
    time_zone: str | None = None,
) -> User:
    """The user's own display name, "video finished" e-mail switch, theme and time zone.

    `theme` and `time_zone` left as None keep what the user had; an empty time zone means
    "the browser's".
    """
    name = " ".join((name or "").split())
    limit = User._meta.get_field("name").max_length
    if len(name) > limit:
        raise AccountError(f"That name is too long: {len(name)} characters, {limit} at most.")
    if theme is not None and theme not in Theme.values:
        raise AccountError("Choose a theme: same as your system, light or dark.")
    if time_zone and zone_or_none(time_zone) is None:
        raise AccountError(f"“{time_zone[:64]}” is not a time zone we know.")
    user.name = name
    user.email_on_finish = bool(email_on_finish)
    fields = ["name", "email_on_finish"]
    if theme is not None:
        user.theme = theme
        fields.append("theme")
    if time_zone is not None:
        user.time_zone = time_zone
        fields.append("time_zone")
    user.save(update_fields=fields)
    return user


# Workspaces -----------------------------------------------------------------------------------


def _require(membership: Membership, permission: str, message: str) -> None:
    if not getattr(membership, permission):
        raise AccountError(message)


def _require_team(workspace: Workspace) -> None:
    if workspace.is_personal:
        raise AccountError(
            "Personal workspaces are just for you. Create a team workspace to work with others."
        )


def _clean_name(name: str) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise AccountError("Give the workspace a name.")
    if len(name) > Workspace._meta.get_field("name").max_length:
        raise AccountError("That name is too long (100 characters at most).")
    return name


@transaction.atomic
def create_team(*, user: User, name: str) -> Workspace:
    """A team workspace; its creator is its first owner."""
    workspace = Workspace.objects.create(name=_clean_name(name), is_personal=False)
    Membership.objects.create(user=user, workspace=workspace, role=Role.OWNER)
    log_action(actor=user, action="workspace.created", workspace=workspace, target=workspace.name)
    return workspace


@transaction.atomic
def rename_workspace(*, membership: Membership, name: str) -> Workspace:
    _require(membership, "can_delete_workspace", "Only owners can rename a workspace.")
    workspace = membership.workspace
    old, new = workspace.name, _clean_name(name)
    workspace.name = new
    workspace.save(update_fields=["name"])
    log_action(
        actor=membership.user,
        action="workspace.renamed",
        workspace=workspace,
        target=new,
        old_name=old,
        new_name=new,
    )
    return workspace


@transaction.atomic
def delete_workspace(*, membership: Membership) -> None:
    _require(membership, "can_delete_workspace", "Only owners can delete a workspace.")
    workspace = Workspace.objects.select_for_update(no_key=True).get(pk=membership.workspace_id)
    if workspace.is_personal:
        raise AccountError("Your personal workspace cannot be deleted.")
    log_action(
        actor=membership.user,
        action="workspace.deleted",
        workspace=None,
        target=workspace.name,
        workspace_id=workspace.pk,
    )
    try:
        workspace.delete()
    except ProtectedError:
        # Its videos and ledger point at it with protecting foreign keys: the history stays.
        raise AccountError(
            "This workspace has videos and a credit history, so it cannot be deleted. "
            "Remove its members and revoke its keys instead."
        ) from None


def _owner_count(workspace_id: int) -> int:
    # Lock the owners' rows so two simultaneous demotions cannot both see "another owner left".
    owners = (
        Membership.objects.select_for_update(no_key=True)
        .filter(workspace_id=workspace_id, role=Role.OWNER)
        .order_by("pk")
    )
    return len(list(owners))


@transaction.atomic
def change_role(*, actor: Membership, target: Membership, role: str) -> Membership:
    if role not in Role.values:
        raise AccountError("Choose one of the roles: owner, admin, member or viewer.")
    _require(actor, "can_manage_members", "Only owners and admins can change roles.")
    if actor.workspace_id != target.workspace_id:
        raise AccountError("That person is not a member of this workspace.")
    _require_team(target.workspace)
    # The workspace before its memberships, as update_budget takes them (docs/LOCKS.md).
    _lock_workspace(target.workspace_id)
    target = (
        Membership.objects.select_for_update(no_key=True).select_related("user").get(pk=target.pk)
    )
    if target.role == role:
        return target
    if (role == Role.OWNER or target.role == Role.OWNER) and not actor.is_owner:
        raise AccountError("Only owners can make someone an owner or change an owner's role.")
    if target.role == Role.OWNER and _owner_count(target.workspace_id) <= 1:
        raise AccountError(
            "A workspace needs at least one owner: make someone else an owner first."
        )
    old = target.role
    target.role = role
    target.save(update_fields=["role"])
    log_action(
        actor=actor.user,
        action="member.role_changed",
        workspace=target.workspace,
        target=target.user.email,
        old_role=old,
        new_role=role,
    )
    return target


@transaction.atomic
def remove_member(*, actor: Membership, target: Membership) -> None:
    _require(actor, "can_manage_members", "Only owners and admins can remove members.")
    if actor.workspace_id != target.workspace_id:
        raise AccountError("That person is not a member of this workspace.")
    _require_team(target.workspace)
    if actor.pk == target.pk:
        raise AccountError("To remove yourself, leave the workspace.")
    # The workspace before its memberships, as update_budget takes them (docs/LOCKS.md).
    _lock_workspace(target.workspace_id)
    target = (
        Membership.objects.select_for_update(no_key=True).select_related("user").get(pk=target.pk)
    )
    if target.role == Role.OWNER:
        if not actor.is_owner:
            raise AccountError("Only owners can remove an owner.")
        if _owner_count(target.workspace_id) <= 1:
            raise AccountError("The last owner of a workspace cannot be removed.")
    log_action(
        actor=actor.user,
        action="member.removed",
        workspace=target.workspace,
        target=target.user.email,
        role=target.role,
    )
    target.delete()


@transaction.atomic
def leave_workspace(*, membership: Membership) -> None:
    _require_team(membership.workspace)
    _lock_workspace(membership.workspace_id)
    membership = Membership.objects.select_for_update(no_key=True).get(pk=membership.pk)
    if membership.role == Role.OWNER and _owner_count(membership.workspace_id) <= 1:
        raise AccountError(
            "You are the last owner: make someone else an owner before leaving, "
            "or delete the workspace."
        )
    log_action(
        actor=membership.user,
        action="member.left",
        workspace=membership.workspace,
        target=membership.user.email,
        role=membership.role,
    )
    membership.delete()


# Invitations ----------------------------------------------------------------------------------


def invitation_url(token: str) -> str:
    return settings.SITE_URL + reverse("accept_invitation", args=[token])


def invite(*, actor: Membership, email: str, role: str) -> tuple[Invitation, str]:
    """Create a single-use invitation, e-mail its link, and return it with the raw token.

    The raw token exists only in the e-mail and in this return value (to show once); the
    database keeps its hash.
    """
    email = (email or "").strip().lower()
    with transaction.atomic():
        _require(actor, "can_manage_members", "Only owners and admins can invite people.")
        _require_team(actor.workspace)
        if role not in Role.values:
            raise AccountError("Choose one of the roles: owner, admin, member or viewer.")
        if role == Role.OWNER and not actor.is_owner:
            raise AccountError("Only owners can invite someone as an owner.")
        if Membership.objects.filter(
            workspace_id=actor.workspace_id, user__email__iexact=email
        ).exists():
            raise AccountError(f"{email} is already a member of this workspace.")
        # A new invitation replaces any pending one for the same address: one live link each.
        withdrawn = Invitation.objects.filter(
            workspace_id=actor.workspace_id,
            email__iexact=email,
            accepted_at__isnull=True,
            revoked_at__isnull=True,
        ).update(revoked_at=timezone.now())
        token, token_hash = Invitation.new_token()
        invitation = Invitation.objects.create(
            workspace=actor.workspace,
            email=email,
            role=role,
            token_hash=token_hash,
            invited_by=actor.user,
        )
        # Not a column: tells the caller to say that the earlier link stopped working.
        invitation.withdrew_earlier = withdrawn > 0
        log_action(
            actor=actor.user,
            action="invitation.sent",
            workspace=actor.workspace,
            target=email,
            role=role,
            invitation_id=invitation.pk,
        )
    context = {
        "invitation": invitation,
        "inviter": actor.user,
        "workspace": actor.workspace,
        "url": invitation_url(token),
    }
    send_mail(
        subject=f"You are invited to {actor.workspace.name} on Kinovi Studio",
        message=render_to_string("accounts/email/invitation.txt", context),
        from_email=None,
        recipient_list=[email],
    )
    return invitation, token


@transaction.atomic
def revoke_invitation(*, actor: Membership, invitation: Invitation) -> Invitation:
    _require(actor, "can_manage_members", "Only owners and admins can revoke invitations.")
    invitation = Invitation.objects.select_for_update(no_key=True).get(pk=invitation.pk)
    if invitation.workspace_id != actor.workspace_id:
        raise AccountError("That invitation belongs to another workspace.")
    if invitation.accepted_at is not None:
        raise AccountError("That invitation has already been accepted.")
    if invitation.revoked_at is not None:
        raise AccountError("That invitation was already revoked.")
    invitation.revoked_at = timezone.now()
    invitation.save(update_fields=["revoked_at"])
    log_action(
        actor=actor.user,
        action="invitation.revoked",
        workspace=invitation.workspace,
        target=invitation.email,
        invitation_id=invitation.pk,
    )
    return invitation


def find_invitation(token: str) -> Invitation:
    """The invitation behind a link, or AccountError saying why the link no longer works."""
    invitation = (
        Invitation.objects.select_related("workspace", "invited_by")
        .filter(token_hash=hash_token(token or ""))
        .first()
    )
    _check_usable(invitation)
    return invitation


def _check_usable(invitation: Invitation | None) -> None:
    if invitation is None:
        raise AccountError(
            "This invitation link is not valid. Check that you copied all of it, "
            "or ask for a new invitation."
        )
    if invitation.accepted_at is not None:
        raise AccountError(
            "This invitation has already been used. Each link works once; "
            "ask for a new invitation if you need one."
        )
    if invitation.revoked_at is not None:
        raise AccountError("This invitation was withdrawn. Ask for a new one if you need it.")
    if invitation.expires_at <= timezone.now():
        raise AccountError("This invitation has expired. Ask for a new one.")


@transaction.atomic
def accept_invitation(*, token: str, user: User) -> Membership:
    invitation = (
        Invitation.objects.select_for_update(no_key=True)
        .select_related("workspace")
        .filter(token_hash=hash_token(token or ""))
        .first()
    )
    _check_usable(invitation)
    if user.email.lower() != invitation.email.lower():
        raise AccountError(
            f"This invitation was sent to {invitation.email}, but you are logged in as "
            f"{user.email}. Log out and open the link again, or ask for an invitation "
            "to your own address."
        )
    if Membership.objects.filter(user=user, workspace_id=invitation.workspace_id).exists():
        raise AccountError(f"You are already a member of {invitation.workspace.name}.")
    membership = Membership.objects.create(
        user=user, workspace=invitation.workspace, role=invitation.role
    )
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    log_action(
        actor=user,
        action="invitation.accepted",
        workspace=invitation.workspace,
        target=user.email,
        role=invitation.role,
        invitation_id=invitation.pk,
    )
    return membership


@transaction.atomic
def sign_up_with_invitation(*, token: str, password: str, name: str = "") -> Membership:
    """A new user accepting an invitation: the account is made for the invited address."""
    invitation = find_invitation(token)
    if User.objects.filter(email__iexact=invitation.email).exists():
        raise AccountError("An account with this e-mail already exists. Log in to accept.")
    user = create_user(email=invitation.email, password=password, name=name)
    return accept_invitation(token=token, user=user)


# API keys -------------------------------------------------------------------------------------


def verify_key(secret: str) -> tuple[str, str]:
    """Ask Kinovi whether a key authenticates; returns (ApiKey.Status value, detail for people).

    A recordInfo call for a task that cannot exist: 401 means the key is wrong; 404 or 400
    means Kinovi accepted the key and only disliked the id; anything else (no answer, a
    server error) leaves the key "not yet verified".
    """
    client = kinovi.KinoviClient(
        secret,
        connect_timeout=min(settings.KINOVI_CONNECT_TIMEOUT, KEY_CHECK_TIMEOUT),
        read_timeout=min(settings.KINOVI_READ_TIMEOUT, KEY_CHECK_TIMEOUT),
        retries=0,
    )
    try:
        client.record_info(PROBE_TASK_ID)
    except kinovi.AuthenticationFailed:
        return ApiKey.Status.INVALID, "Kinovi rejected this key (401): check it and try again."
    except (kinovi.NotFound, kinovi.InvalidRequest):
        return ApiKey.Status.VERIFIED, "Kinovi accepted this key."
    except kinovi.AccessNotEnabled:
        return (
            ApiKey.Status.UNVERIFIED,
            "Kinovi says API access is not enabled for this account (403).",
        )
    except kinovi.KinoviError as error:
        logger.info("Key check got no clear answer: %s", type(error).__name__)
        return (
            ApiKey.Status.UNVERIFIED,
            "Kinovi could not be reached to check this key; it will be checked again on use.",
        )
    # A task that cannot exist was found: the key authenticated, which is all we asked.
    return ApiKey.Status.VERIFIED, "Kinovi accepted this key."


def _clean_label(label: str) -> str:
    label = " ".join((label or "").split())
    if not label:
        raise AccountError("Give the key a label, e.g. “Production” or “Ana's key”.")
    return label[: ApiKey._meta.get_field("label").max_length]


def _lock_workspace(workspace_id: int) -> Workspace:
    # Serialises default-key changes per workspace, so the one-default constraint never trips.
    return Workspace.objects.select_for_update(no_key=True).get(pk=workspace_id)


def _has_default(workspace_id: int) -> bool:
    return ApiKey.objects.filter(
        workspace_id=workspace_id, is_default=True, revoked_at__isnull=True
    ).exists()


def add_key(*, actor: Membership, label: str, secret: str) -> ApiKey:
    """Check the key with Kinovi, then store it encrypted. A key Kinovi rejects is not saved."""
    _require(actor, "can_manage_keys", "Only owners and admins can add API keys.")
    label = _clean_label(label)
    status, detail = verify_key(secret)
    if status == ApiKey.Status.INVALID:
        raise AccountError(detail)
    return _store_key(actor=actor, label=label, secret=secret, status=status, detail=detail)


def add_sandbox_key(*, actor: Membership) -> ApiKey:
    """A fresh key on the built-in sandbox, stored as a verified key labelled "Sandbox"."""
    _require(actor, "can_manage_keys", "Only owners and admins can add API keys.")
    if not settings.KINOVI_SANDBOX:
        raise AccountError("The sandbox is not enabled on this site.")
    secret = sandbox_services.create_account(label=f"{actor.workspace.name} ({actor.user.email})")
    return _store_key(
        actor=actor,
        label="Sandbox",
        secret=secret,
        status=ApiKey.Status.VERIFIED,
        detail="A key on the built-in sandbox: videos are test patterns, free.",
        source="sandbox",
    )


def _store_key(
    *, actor: Membership, label: str, secret: str, status: str, detail: str, **audit
) -> ApiKey:
    """Save an encrypted key (the workspace's default if it has none) and audit it, masked."""
    with transaction.atomic():
        _lock_workspace(actor.workspace_id)
        key = ApiKey(
            workspace_id=actor.workspace_id,
            label=label,
            status=status,
            status_detail=detail,
            verified_at=timezone.now() if status == ApiKey.Status.VERIFIED else None,
            is_default=not _has_default(actor.workspace_id),
            created_by=actor.user,
        )
        key.secret = secret
        key.save()
        log_action(
            actor=actor.user,
            action="key.added",
            workspace=actor.workspace,
            target=str(key),
            key_id=key.pk,
            masked=key.masked,
            status=status,
            is_default=key.is_default,
            **audit,
        )
    return key


def _locked_key(actor: Membership, key: ApiKey, verb: str) -> ApiKey:
    _require(actor, "can_manage_keys", f"Only owners and admins can {verb} API keys.")
    if key.workspace_id != actor.workspace_id:
        raise AccountError("That key belongs to another workspace.")
    _lock_workspace(actor.workspace_id)
    return ApiKey.objects.select_for_update(no_key=True).get(pk=key.pk)


@transaction.atomic
def relabel_key(*, actor: Membership, key: ApiKey, label: str) -> ApiKey:
    key = _locked_key(actor, key, "rename")
    old, new = key.label, _clean_label(label)
    key.label = new
    key.save(update_fields=["label"])
    log_action(
        actor=actor.user,
        action="key.relabeled",
        workspace=actor.workspace,
        target=str(key),
        key_id=key.pk,
        masked=key.masked,
        old_label=old,
        new_label=new,
    )
    return key


@transaction.atomic
def set_default_key(*, actor: Membership, key: ApiKey) -> ApiKey:
    key = _locked_key(actor, key, "change")
    if key.revoked_at is not None:
        raise AccountError("A revoked key cannot be the default.")
    if not key.is_usable:
        raise AccountError("Kinovi rejected this key, so it cannot be the default.")
    if key.is_default:
        return key
    ApiKey.objects.filter(workspace_id=key.workspace_id, is_default=True).update(is_default=False)
    key.is_default = True
    key.save(update_fields=["is_default"])
    log_action(
        actor=actor.user,
        action="key.default_set",
        workspace=actor.workspace,
        target=str(key),
        key_id=key.pk,
        masked=key.masked,
    )
    return key


@transaction.atomic
def revoke_key(*, actor: Membership, key: ApiKey) -> ApiKey:
    """Soft: the row stays for the ledger and history; the key is never used again."""
    key = _locked_key(actor, key, "revoke")
    if key.revoked_at is not None:
        raise AccountError("That key was already revoked.")
    was_default = key.is_default
    key.revoked_at = timezone.now()
    key.is_default = False
    key.save(update_fields=["revoked_at", "is_default"])
    log_action(
        actor=actor.user,
        action="key.revoked",
        workspace=actor.workspace,
        target=str(key),
        key_id=key.pk,
        masked=key.masked,
        was_default=was_default,
    )
    return key


def recheck_key(*, actor: Membership, key: ApiKey) -> ApiKey:
    """Ask Kinovi again about a stored key (e.g. one saved while Kinovi was unreachable)."""
    _require(actor, "can_manage_keys", "Only owners and admins can check API keys.")
    if key.workspace_id != actor.workspace_id:
        raise AccountError("That key belongs to another workspace.")
    if key.revoked_at is not None:
        raise AccountError("That key is revoked.")
    status, detail = verify_key(key.secret)
    with transaction.atomic():
        key = ApiKey.objects.select_for_update(no_key=True).get(pk=key.pk)
        old = key.status
        key.status = status
        key.status_detail = detail
        fields = ["status", "status_detail"]
        if status == ApiKey.Status.VERIFIED:
            key.verified_at = timezone.now()
            fields.append("verified_at")
        key.save(update_fields=fields)
        if old != status:
            log_action(
                actor=actor.user,
                action="key.status_changed",
                workspace=actor.workspace,
                target=str(key),
                key_id=key.pk,
                masked=key.masked,
                old_status=old,
                new_status=status,
            )
    return key
