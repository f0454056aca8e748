"""Personal access tokens, idempotency records and rate-limit windows of the studio's API."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models import Workspace


class Scope(models.TextChoices):
    GENERATE = "generate", "Generate (create and cancel videos)"
    READ = "read", "Read (task status and lists)"


class ApiToken(models.Model):
    """A member's token for one workspace. Only the SHA-256 of the token is kept.

    It grants nothing by itself: every request acts with the owner's membership as it is at
    that moment (a member made viewer cannot generate; a removed member's token is refused).
    """

    workspace = models.ForeignKey(Workspace, models.CASCADE, related_name="api_tokens")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    # The first characters of the token, enough to recognise it in a list; not a secret.
    prefix = models.CharField(max_length=16, editable=False)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    scopes = models.JSONField(default=list)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["revoked_at", "-created_at", "-id"]
        indexes = [models.Index(fields=["workspace", "user"], name="apitoken_owner")]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def __repr__(self) -> str:
        return f"<ApiToken {self.pk} {self.prefix}…>"

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and not self.is_expired

    def has_scope(self, scope: str) -> bool:
        return scope in (self.scopes or [])


class IdempotencyRecord(models.Model):
    """One Idempotency-Key of one token: the body it came with and the generation it made.

    The row is inserted first and then locked while the generation is made, so concurrent
    requests with the same key wait for the first and answer its task.
    """

    token = models.ForeignKey(ApiToken, models.CASCADE, related_name="idempotency_records")
    key = models.CharField(max_length=255)
    body_hash = models.CharField(max_length=64)
    generation = models.ForeignKey(
        "generations.Generation", models.CASCADE, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["token", "key"], name="one_record_per_key")]
        indexes = [models.Index(fields=["created_at"], name="idempotency_age")]

    def __str__(self) -> str:
        return f"Idempotency key of token {self.token_id}"


class RateWindow(models.Model):
    """Requests counted per token and fixed window when no Redis is configured."""

    token = models.ForeignKey(ApiToken, models.CASCADE, related_name="+")
    window_start = models.BigIntegerField(
        help_text="The window's start, in seconds since the epoch."
    )
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["token", "window_start"], name="one_count_per_window")
        ]

    def __str__(self) -> str:
        return f"{self.count} requests of token {self.token_id} at {self.window_start}"
