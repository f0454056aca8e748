"""The fake vendor's data: sandbox accounts (hashed keys, credits, concurrency), tasks, faults."""

import hashlib

from django.db import models
from django.db.models import Q
from django.utils import timezone


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class SandboxAccount(models.Model):
    """A Kinovi account as the sandbox plays it. Only a hash of the key is kept, so a leaked
    database does not leak working test keys either."""

    label = models.CharField(max_length=100)
    key_hash = models.CharField(max_length=64, unique=True)
    key_last4 = models.CharField(max_length=4)
    credits = models.IntegerField(default=100_000)
    concurrency_limit = models.PositiveSmallIntegerField(default=2)
    # The vendor answers 403 for accounts without API access.
    api_enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.label} (••••{self.key_last4})"


class SandboxTask(models.Model):
    class Outcome(models.TextChoices):
        SUCCESS = "success", "Success"
        FAIL = "fail", "Fail"

    task_id = models.CharField(max_length=64, unique=True)
    order_id = models.CharField(max_length=64)
    account = models.ForeignKey(SandboxAccount, models.CASCADE, related_name="tasks")
    model = models.CharField(max_length=40)
    prompt = models.TextField()
    duration = models.PositiveSmallIntegerField()
    aspect_ratio = models.CharField(max_length=5)
    mode = models.CharField(max_length=10)
    upscale_4k = models.BooleanField(default=False)
    # The priced and rendered tier; tasks from before resolutions existed were 720p-priced.
    resolution = models.CharField(max_length=5, default="720p")
    dialect = models.CharField(max_length=6, default="docs")
    # The reference-video surcharge is in credits_charged (known at create from videoUrls,
    # or once the fetched files show a video among docs' untyped urls).
    reference_video = models.BooleanField(default=False)
    inputs = models.JSONField(default=dict)  # the raw inputs as received
    # [{"url", "kind"}] as asked; then, once fetched and probed, the facts of each file (see
    # materials.fetch_all), stored under media_dir/materials/.
    material_urls = models.JSONField(default=list)
    materials = models.JSONField(default=list)
    materials_checked_at = models.DateTimeField(null=True, blank=True)
    callback_url = models.URLField(max_length=2048, blank=True)
    # Where the sandbox was reached, so output URLs in webhooks point at the same host.
    public_base = models.CharField(max_length=300, blank=True)

    created_at = models.DateTimeField(default=timezone.now)
    # The planned life: waiting until starts_at, generating until ends_at, then the outcome.
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField(db_index=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    error_code = models.CharField(max_length=20, blank=True)
    error_message = models.CharField(max_length=500, blank=True)

    credits_charged = models.PositiveIntegerField()
    credits_refunded = models.PositiveIntegerField(default=0)
    # Set once the end has been accounted for (refund applied); see services.settle_finished.
    settled_at = models.DateTimeField(null=True, blank=True)

    seed = models.PositiveIntegerField(default=0)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    video_path = models.CharField(max_length=300, blank=True)  # relative to MEDIA_ROOT
    last_frame_path = models.CharField(max_length=300, blank=True)
    # Set by services.expire_media: the output URLs answer 404, as the vendor's do after 14 days.
    media_expired_at = models.DateTimeField(null=True, blank=True)

    # The next moment a webhook delivery is due; null once delivered, given up, or never needed.
    webhook_due_at = models.DateTimeField(null=True, blank=True)
    webhook_attempts = models.PositiveSmallIntegerField(default=0)
    webhook_last_status = models.CharField(max_length=100, blank=True)
    webhook_delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # send_due_webhooks runs about every second: it must only ever touch due rows.
            models.Index(
                fields=["webhook_due_at"],
                name="sandbox_webhook_due",
                condition=Q(webhook_due_at__isnull=False),
            ),
            models.Index(
                fields=["ends_at"],
                name="sandbox_unsettled",
                condition=Q(settled_at__isnull=True),
            ),
            models.Index(fields=["account", "ends_at"], name="sandbox_account_running"),
        ]

    def __str__(self) -> str:
        return self.task_id

    def status_at(self, now) -> str:
        if now < self.starts_at:
            return "waiting"
        if now < self.ends_at:
            return "generating"
        return self.outcome


class SandboxFault(models.Model):
    """The next `remaining` calls to `endpoint` answer `status` (500 or 429) instead."""

    class Endpoint(models.TextChoices):
        ANY = "any", "Any"
        CREATE = "createTask", "createTask"
        RECORD = "recordInfo", "recordInfo"

    endpoint = models.CharField(max_length=12, choices=Endpoint.choices, default=Endpoint.ANY)
    status = models.PositiveSmallIntegerField()
    remaining = models.PositiveIntegerField()
    retry_after = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.remaining} × {self.status} on {self.endpoint}"
