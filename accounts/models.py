"""People, workspaces, memberships with roles, invitations and the Kinovi keys a workspace owns."""

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts import crypto


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, email, password, **extra_fields):
        if not email:
            raise ValueError("An e-mail address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra_fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", False)
        extra_fields.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra_fields)

    def create_superuser(self, email, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", True)
        extra_fields.setdefault("is_superuser", True)
        return self._create_user(email, password, **extra_fields)

    def get_by_natural_key(self, username):
        return self.get(email__iexact=username)


class Theme(models.TextChoices):
    SYSTEM = "system", "System"
    LIGHT = "light", "Light"
    DARK = "dark", "Dark"


class User(AbstractUser):
    username = None
    first_name = None
    last_name = None
    name = models.CharField("display name", max_length=150, blank=True)
    email = models.EmailField("e-mail address", unique=True)
    email_on_finish = models.BooleanField(
        "e-mail me when a video finishes",
        default=True,
        help_text="A message when one of your videos is ready, fails or is rejected.",
    )
    theme = models.CharField(max_length=10, choices=Theme.choices, default=Theme.SYSTEM)
    # An IANA zone name; empty means "the browser's", which the page reports in a cookie.
    time_zone = models.CharField("time zone", max_length=64, blank=True, default="")

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    objects = UserManager()

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email

    def get_full_name(self) -> str:
        return self.name or self.email

    def get_short_name(self) -> str:
        return self.name or self.email.split("@")[0]


class Workspace(models.Model):
    """Where keys, generations and budgets live. Every user has a personal one; teams share one."""

    name = models.CharField(max_length=100)
    is_personal = models.BooleanField(default=False)
    monthly_budget_credits = models.PositiveIntegerField(
        null=True, blank=True, help_text="Credits the workspace may spend per calendar month."
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-is_personal", "name"]

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    MEMBER = "member", "Member"
    VIEWER = "viewer", "Viewer"


class Membership(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="memberships")
    workspace = models.ForeignKey(Workspace, models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    monthly_cap_credits = models.PositiveIntegerField(
        null=True, blank=True, help_text="Credits this member may spend per calendar month."
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "workspace"], name="unique_membership")
        ]
        ordering = ["workspace__name", "user__email"]

    def __str__(self) -> str:
        return f"{self.user} in {self.workspace} ({self.role})"

    @property
    def is_owner(self) -> bool:
        return self.role == Role.OWNER

    @property
    def can_generate(self) -> bool:
        return self.role in {Role.OWNER, Role.ADMIN, Role.MEMBER}

    @property
    def can_manage_keys(self) -> bool:
        return self.role in {Role.OWNER, Role.ADMIN}

    @property
    def can_manage_members(self) -> bool:
        return self.role in {Role.OWNER, Role.ADMIN}

    @property
    def can_manage_budget(self) -> bool:
        return self.role in {Role.OWNER, Role.ADMIN}

    @property
    def can_see_usage(self) -> bool:
        return self.role in {Role.OWNER, Role.ADMIN}

    @property
    def can_delete_workspace(self) -> bool:
        return self.role == Role.OWNER


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _invitation_expiry():
    return timezone.now() + timedelta(days=settings.INVITATION_DAYS)


class Invitation(models.Model):
    """A single-use link to join a workspace; only the hash of its token is stored."""

    workspace = models.ForeignKey(Workspace, models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(default=_invitation_expiry)
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Invitation of {self.email} to {self.workspace}"

    @classmethod
    def new_token(cls) -> tuple[str, str]:
        token = secrets.token_urlsafe(32)
        return token, hash_token(token)

    @property
    def is_pending(self) -> bool:
        return (
            self.accepted_at is None
            and self.revoked_at is None
            and self.expires_at > timezone.now()
        )


class ApiKeyQuerySet(models.QuerySet):
    def usable(self):
        """Keys a member may generate with: not revoked, not refused by Kinovi (is_usable)."""
        return self.filter(revoked_at__isnull=True).exclude(status=ApiKey.Status.INVALID)


class ApiKey(models.Model):
    """A Kinovi API key owned by a workspace; the secret is encrypted at rest and never shown."""

    class Status(models.TextChoices):
        UNVERIFIED = "unverified", "Not yet verified"
        VERIFIED = "verified", "Verified"
        INVALID = "invalid", "Invalid"

    workspace = models.ForeignKey(Workspace, models.CASCADE, related_name="api_keys")
    label = models.CharField(max_length=100)
    secret_ciphertext = models.TextField(editable=False)
    last_four = models.CharField(max_length=4, editable=False)
    is_default = models.BooleanField(default=False)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.UNVERIFIED)
    status_detail = models.CharField(max_length=300, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # Learned from 429 replies (their `limit`), or set by an admin; None means "not known yet".
    concurrency_limit = models.PositiveSmallIntegerField(null=True, blank=True)
    # From when one submission beyond the learned limit may be tried (a probe: accepted, the
    # limit rises); set a minute on by every 429 that teaches the limit (None: no probing).
    concurrency_probe_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        ordering = ["-is_default", "label"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace"],
                condition=Q(is_default=True, revoked_at__isnull=True),
                name="one_default_key_per_workspace",
            )
        ]

    def __str__(self) -> str:
        return f"{self.label} ({self.masked})"

    def __repr__(self) -> str:
        return f"<ApiKey {self.pk} {self.label!r} {self.masked}>"

    @property
    def secret(self) -> str:
        return crypto.decrypt(self.secret_ciphertext)

    @secret.setter
    def secret(self, value: str) -> None:
        self.secret_ciphertext = crypto.encrypt(value)
        self.last_four = value[-4:]

    @property
    def masked(self) -> str:
        return f"••••{self.last_four}"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @property
    def is_usable(self) -> bool:
        """The rule of ApiKeyQuerySet.usable, for a key in hand."""
        return self.unusable_reason is None

    @property
    def unusable_reason(self) -> str | None:
        if self.revoked_at is not None:
            return "That API key was revoked. Choose another key."
        if self.status == self.Status.INVALID:
            detail = f" ({self.status_detail})" if self.status_detail else ""
            return (
                f"Kinovi refused that API key{detail}. Update it on the Keys page or choose "
                "another."
            )
        return None


class AuditEntry(models.Model):
    """Who changed a role, a key, a budget or a price, and when. Secrets appear masked only."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    workspace = models.ForeignKey(
        Workspace, models.SET_NULL, null=True, blank=True, related_name="audit_entries"
    )
    action = models.CharField(max_length=60, help_text="Namespaced code, e.g. member.role_changed")
    target = models.CharField(max_length=200, blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.action} by {self.actor} at {self.created_at:%Y-%m-%d %H:%M}"


def log_action(*, actor, action: str, workspace=None, target="", **data) -> AuditEntry:
    return AuditEntry.objects.create(
        actor=actor if getattr(actor, "pk", None) else None,
        workspace=workspace,
        action=action,
        target=str(target)[:200],
        data=data,
    )
