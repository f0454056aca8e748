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


class WebhookSecret(models.Model):
    """The workspace's signing secret for outbound webhooks (Standard Webhooks `whsec_…`),
    encrypted at rest like the Kinovi keys; owners rotate it."""

    workspace = models.OneToOneField(Workspace, models.CASCADE, related_name="webhook_secret")
    secret_ciphertext = models.TextField(editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    rotated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )

    def __str__(self) -> str:
        return f"Webhook secret of {self.workspace}"

    def __repr__(self) -> str:
        return f"<WebhookSecret of workspace {self.workspace_id}>"


class Callback(models.Model):
    """The callBackUrl a script gave with createTask: told when the task ends."""

    generation = models.OneToOneField(
        "generations.Generation", models.CASCADE, related_name="api_callback"
    )
    token = models.ForeignKey(ApiToken, models.SET_NULL, null=True, blank=True, related_name="+")
    url = models.URLField(max_length=2000)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"Callback of generation {self.generation_id}"


class Delivery(models.Model):
    """The completion webhook of one generation, sent until a 2xx or the retries run out."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Gave up"

    generation = models.OneToOneField(
        "generations.Generation", models.CASCADE, related_name="api_delivery"
    )
    workspace = models.ForeignKey(Workspace, models.CASCADE, related_name="api_deliveries")
    url = models.URLField(max_length=2000)
    message_id = models.CharField(max_length=64, unique=True)
    payload = models.JSONField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"], name="delivery_due", condition=models.Q(state="pending")
            ),
            models.Index(fields=["workspace", "-created_at"], name="delivery_list"),
        ]

    def __str__(self) -> str:
        return f"Delivery {self.message_id} ({self.state})"


class Attempt(models.Model):
    """One POST of a delivery: what the receiver answered, or why nothing was sent."""

    delivery = models.ForeignKey(Delivery, models.CASCADE, related_name="attempt_rows")
    attempted_at = models.DateTimeField(default=timezone.now)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True)
    error = models.CharField(max_length=300, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["attempted_at", "id"]

    def __str__(self) -> str:
        return f"Attempt at {self.attempted_at:%H:%M:%S} ({self.status_code or self.error})"
