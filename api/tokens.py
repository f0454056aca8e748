"""Personal access tokens: made, shown once, checked on every request, revoked.

A token is `kst_` followed by 43 URL-safe characters (256 random bits). Only its SHA-256 is
stored, with the first characters for display. It acts with its owner's membership as it is
at the moment of each request, so a role change or a removal applies at once.
"""

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from accounts.models import Membership, hash_token, log_action
from api.models import ApiToken, Scope

TOKEN_PREFIX = "kst_"
DISPLAY_LENGTH = 12  # "kst_" and 8 characters: enough to tell tokens apart, useless to guess.
MAX_TOKEN_LENGTH = 200
LAST_USE_PRECISION = timedelta(minutes=1)


class TokenRefused(Exception):
    """The request's token does not authenticate; `message` is safe to answer."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotAllowed(Exception):
    """The user may not do this to that token; `message` says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Caller:
    """Who an API request acts as: the token and its owner's current membership."""

    token: ApiToken
    membership: Membership

    @property
    def workspace(self):
        return self.membership.workspace


def create_token(
    *, membership: Membership, name: str, scopes: list[str], expires_at: datetime | None
) -> tuple[ApiToken, str]:
    """A new token of `membership`'s user for its workspace, and the raw token (shown once)."""
    scopes = sorted(set(scopes))
    if not scopes or not set(scopes) <= set(Scope.values):
        raise NotAllowed("Choose at least one scope: generate, read.")
    if expires_at is not None and expires_at <= timezone.now():
        raise NotAllowed("The expiry must be in the future.")
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(
            workspace=membership.workspace,
            user=membership.user,
            name=name.strip()[:100],
            prefix=raw[:DISPLAY_LENGTH],
            token_hash=hash_token(raw),
            scopes=scopes,
            expires_at=expires_at,
        )
        log_action(
            actor=membership.user,
            action="api_token.created",
            workspace=membership.workspace,
            target=str(token),
            scopes=scopes,
            expires_at=expires_at.isoformat() if expires_at else None,
        )
    return token, raw


def can_revoke(token: ApiToken, membership: Membership) -> bool:
    """Its owner, and the owners and admins of its workspace."""
    if membership.workspace_id != token.workspace_id:
        return False
    return token.user_id == membership.user_id or membership.can_manage_members


def revoke_token(*, token: ApiToken, membership: Membership) -> ApiToken:
    if not can_revoke(token, membership):
        raise NotAllowed("Only its owner or an owner or admin of this workspace can revoke it.")
    with transaction.atomic():
        changed = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now(), revoked_by=membership.user
        )
        if not changed:
            raise NotAllowed("This token is already revoked.")
        log_action(
            actor=membership.user,
            action="api_token.revoked",
            workspace=token.workspace,
            target=str(token),
            owner=token.user.email,
        )
    token.refresh_from_db()
    return token


def bearer_token(authorization: str) -> str | None:
    """The token of an `Authorization: Bearer …` header, or None."""
    scheme, _, value = (authorization or "").strip().partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not value or len(value) > MAX_TOKEN_LENGTH:
        return None
    return value


def authenticate(raw: str | None, *, address: str | None) -> Caller:
    """The caller a raw token stands for, or TokenRefused. Records the last use."""
    if not raw or not raw.startswith(TOKEN_PREFIX):
        raise TokenRefused("Missing or invalid API key: send Authorization: Bearer kst_….")
    token = (
        ApiToken.objects.select_related("workspace", "user")
        .filter(token_hash=hash_token(raw))
        .first()
    )
    if token is None:
        raise TokenRefused("Invalid API key.")
    if token.revoked_at is not None:
        raise TokenRefused("This API key was revoked.")
    if token.is_expired:
        raise TokenRefused("This API key has expired.")
    if not token.user.is_active:
        raise TokenRefused("The account this API key belongs to is disabled.")
    membership = (
        Membership.objects.select_related("workspace", "user")
        .filter(user=token.user, workspace=token.workspace)
        .first()
    )
    if membership is None:
        raise TokenRefused("The owner of this API key is no longer a member of its workspace.")
    _record_use(token, address)
    return Caller(token=token, membership=membership)


def _record_use(token: ApiToken, address: str | None) -> None:
    """Last use, to the minute: a script polling every few seconds would otherwise write the
    token's row on every request (bench/api_overhead.py)."""
    now = timezone.now()
    if (
        token.last_used_at is not None
        and token.last_used_ip == address
        and now - token.last_used_at < LAST_USE_PRECISION
    ):
        return
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=now, last_used_ip=address)
    token.last_used_at, token.last_used_ip = now, address
