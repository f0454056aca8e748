"""Generations, their status history, the credit ledger, webhook deliveries and the price table."""

import uuid
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import DecimalField, ExpressionWrapper, F, Q
from django.utils import timezone

from accounts.models import ApiKey, Workspace
from kinovi.schema import (  # noqa: F401 - the vocabulary, re-exported for the app
    DEFAULT_RESOLUTION,
    MAX_DURATION,
    MAX_PROMPT_LENGTH,
    MIN_DURATION,
    RESOLUTIONS_BY_MODEL,
    AspectRatio,
    Mode,
    Model,
    OutputResolution,
)


class Status(models.TextChoices):
    QUEUED = "queued", "Queued"
    SUBMITTING = "submitting", "Submitting"
    WAITING = "waiting", "Waiting"
    GENERATING = "generating", "Generating"
    SUCCESS = "success", "Done"
    FAIL = "fail", "Failed"
    REJECTED = "rejected", "Rejected"
    UNKNOWN = "unknown", "Outcome unknown"
    STALLED = "stalled", "Stalled"
    CANCELED = "canceled", "Canceled"


# Every group of statuses the project acts on, named once: services, jobs, views, templates
# (through the Generation properties below) and the partial indexes all read these. Tuples
# keep the order the indexes were declared with in their migrations.
S = Status
TERMINAL_STATUSES = frozenset({S.SUCCESS, S.FAIL, S.REJECTED, S.CANCELED})
# Endings the creator is e-mailed about (notifications.py); canceling is their own act.
NOTIFY_STATUSES = (S.SUCCESS, S.FAIL, S.REJECTED)
# Saved here but not yet reserved at Kinovi: the budget holds their estimate.
HELD_STATUSES = (S.QUEUED, S.SUBMITTING)
# Moving on by itself right now: pages refresh it often; retry and hide wait for its end.
ON_ITS_WAY_STATUSES = (S.QUEUED, S.SUBMITTING, S.WAITING, S.GENERATING)
# Submitted to Kinovi and not finished.
IN_FLIGHT_STATUSES = (S.SUBMITTING, S.WAITING, S.GENERATING, S.UNKNOWN, S.STALLED)
# Not finished at all: the dispatcher's and the poller's rows.
UNFINISHED_STATUSES = (S.QUEUED, *IN_FLIGHT_STATUSES)
# Surely running at Kinovi: each holds one of its key's concurrency slots.
SLOT_STATUSES = (S.SUBMITTING, S.WAITING, S.GENERATING)
# Maybe running at Kinovi: they hold a slot for a (scaled) minute only, then it is tried
# again (slots.DOUBTFUL_HOLD).
DOUBTFUL_STATUSES = (S.UNKNOWN, S.STALLED)
# Have a task id worth asking recordInfo about.
POLLABLE_STATUSES = frozenset({S.WAITING, S.GENERATING, S.STALLED})
# Kinovi holds (or may hold) the estimate: the reserve row exists.
RESERVED_STATUSES = frozenset({S.WAITING, S.GENERATING, S.SUCCESS, S.FAIL, S.UNKNOWN, S.STALLED})
# Ended without a charge (a failure is refunded in full).
UNCHARGED_STATUSES = frozenset({S.FAIL, S.REJECTED, S.CANCELED})

# The settings of a video besides its prompt and materials: the form's fields, the service's
# parameters, the createTask inputs; a retry or a remix copies exactly these.
VIDEO_SETTINGS = ("model", "duration", "aspect_ratio", "mode", "upscale_4k", "output_resolution")

VIEWER_REFUSAL = "Viewers can look but not generate. Ask an owner or admin for the member role."
UNKNOWN_WITHOUT_TASK = (
    "Kinovi never answered the request that creates this video, so we do not know its task id "
    "and Kinovi has no way to look it up by anything else. Only a callback from Kinovi or an "
    "operator (with the task id from Kinovi's dashboard) can resolve it. It is never "
    "resubmitted automatically, to avoid paying twice."
)
KEY_PAUSED_REFUSAL = (
    "Kinovi refused this video's API key, so it cannot be asked about the video. An owner or "
    "admin should make the key work again on the Keys page; checking then resumes by itself."
)


def refused_keys():
    """Keys Kinovi refused (401): their in-flight generations are not polled (paused) until
    the key is verified again, since every call with it is refused."""
    return ApiKey.objects.filter(status=ApiKey.Status.INVALID).values("pk")


class PriceQuerySet(models.QuerySet):
    def current(self, model: str, at=None, *, resolution: str = DEFAULT_RESOLUTION):
        at = at or timezone.now()
        return (
            self.filter(model=model, output_resolution=resolution, valid_from__lte=at)
            .order_by("-valid_from")
            .first()
        )


class Price(models.Model):
    """What a model costs from a date on. Data, not code: an operator adds a row to change it."""

    model = models.CharField(max_length=40, choices=Model.choices)
    # One row per model and output tier; the seed's rows (before tiers existed) are 720p.
    output_resolution = models.CharField(
        max_length=5, choices=OutputResolution.choices, default=DEFAULT_RESOLUTION
    )
    credits_per_second = models.PositiveIntegerField()
    upscale_4k_credits_per_second = models.PositiveIntegerField()
    # Added per output second when a reference video is among the materials (once, however
    # many videos there are).
    reference_video_credits_per_second = models.PositiveIntegerField(default=0)
    dollars_per_credit = models.DecimalField(max_digits=10, decimal_places=6)
    valid_from = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now)

    objects = PriceQuerySet.as_manager()

    class Meta:
        ordering = ["model", "-valid_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["model", "output_resolution", "valid_from"],
                name="one_price_per_tier_and_instant",
            )
        ]

    def __str__(self) -> str:
        return (
            f"{self.model} {self.output_resolution}: {self.credits_per_second}/s "
            f"from {self.valid_from:%Y-%m-%d}"
        )


class Generation(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # PROTECT: a workspace with videos keeps its history; accounts need not know about them.
    workspace = models.ForeignKey(Workspace, models.PROTECT, related_name="generations")
    creator = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.PROTECT, related_name="generations"
    )
    api_key = models.ForeignKey(ApiKey, models.PROTECT, related_name="generations")
    # What the user asked for: exactly the createTask inputs.
    model = models.CharField(max_length=40, choices=Model.choices, default=Model.STANDARD)
    prompt = models.TextField()
    duration = models.PositiveSmallIntegerField(default=5)
    aspect_ratio = models.CharField(
        max_length=5, choices=AspectRatio.choices, default=AspectRatio.WIDE
    )
    mode = models.CharField(max_length=10, choices=Mode.choices, default=Mode.KEYFRAME)
    upscale_4k = models.BooleanField("4K upscale", default=False)
    output_resolution = models.CharField(
        max_length=5, choices=OutputResolution.choices, default=DEFAULT_RESOLUTION
    )
    # Where it came from: a retry or a remix of another generation, part of a batch.
    parent = models.ForeignKey(
        "self", models.SET_NULL, null=True, blank=True, related_name="children"
    )
    batch_id = models.UUIDField(null=True, blank=True)

    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    task_id = models.CharField(max_length=100, null=True, blank=True, unique=True)
    estimated_credits = models.PositiveIntegerField()
    dollars_per_credit = models.DecimalField(
        max_digits=10, decimal_places=6, default=Decimal("0.005")
    )
    credits_used = models.PositiveIntegerField(null=True, blank=True)

    video_url = models.URLField(max_length=1000, blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    last_frame_url = models.URLField(max_length=1000, blank=True)
    seed = models.BigIntegerField(null=True, blank=True)
    error_code = models.CharField(max_length=50, blank=True)
    error_message = models.TextField(blank=True)
    # Per-field errors from a 400, or required/available from a 402, for the detail page.
    error_detail = models.JSONField(default=dict, blank=True)

    created_at = models.DateTimeField(default=timezone.now)
    submitted_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    # The next moment a submit (queued) or a poll (in flight) is due; null when nothing is.
    next_poll_at = models.DateTimeField(null=True, blank=True)
    poll_count = models.PositiveIntegerField(default=0)
    submit_attempts = models.PositiveSmallIntegerField(default=0)
    callback_token_hash = models.CharField(max_length=64, blank=True)
    # Set once a terminal state has been confirmed with recordInfo; from then on a delivery to
    # the callback URL is answered as a late duplicate, never judged (webhooks.py).
    confirmed_at = models.DateTimeField(null=True, blank=True)
    # The last time a webhook that could not be used moved the next poll earlier: a flood of
    # such posts hurries the poll at most once per polling.HURRY_EVERY (lifecycle.hurry).
    hurried_at = models.DateTimeField(null=True, blank=True)
    # Claimed by the "video finished" e-mail job just before it sends (notifications.py):
    # django-q2 may run the job twice, and only the run that sets it sends.
    finished_email_sent_at = models.DateTimeField("finished e-mail sent at", null=True, blank=True)
    hidden = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The gallery: a workspace's newest first, with or without a status filter.
            models.Index(fields=["workspace", "-created_at", "-id"], name="gen_gallery"),
            models.Index(fields=["workspace", "status", "-created_at"], name="gen_gallery_status"),
            models.Index(fields=["workspace", "creator", "-created_at"], name="gen_gallery_member"),
            # The poller and dispatcher only ever look at unfinished rows.
            models.Index(
                fields=["next_poll_at"],
                name="gen_due",
                condition=Q(status__in=list(UNFINISHED_STATUSES)),
            ),
            models.Index(
                fields=["api_key", "status"],
                name="gen_key_in_flight",
                condition=Q(status__in=list(IN_FLIGHT_STATUSES)),
            ),
            # The credit report's reconciliation (admin area): successes charged other than
            # estimated, and failures (checked for a refund row), by creation time.
            models.Index(
                fields=["created_at"],
                name="gen_charged_differs",
                condition=Q(status=S.SUCCESS, credits_used__isnull=False)
                & ~Q(credits_used=models.F("estimated_credits")),
            ),
            # With the id, "failed without a refund" is an index-only scan plus a probe each.
            models.Index(
                fields=["created_at", "id"], name="gen_failed_ids", condition=Q(status=S.FAIL)
            ),
            # The sweeper's net for "video finished" e-mails whose job never ran.
            models.Index(
                fields=["confirmed_at"],
                name="gen_email_unsent",
                condition=Q(status__in=list(NOTIFY_STATUSES), finished_email_sent_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.public_id} ({self.status})"

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def is_in_flight(self) -> bool:
        return self.status in IN_FLIGHT_STATUSES

    @property
    def is_on_its_way(self) -> bool:
        return self.status in ON_ITS_WAY_STATUSES

    @property
    def is_doubtful(self) -> bool:
        """Unknown or stalled: it may or may not be running at Kinovi."""
        return self.status in DOUBTFUL_STATUSES

    @property
    def is_paused(self) -> bool:
        """Would be polled, but Kinovi refused its key (the rule of `refused_keys`)."""
        return self.status in POLLABLE_STATUSES and self.api_key.status == ApiKey.Status.INVALID

    @property
    def estimated_dollars(self) -> Decimal:
        return self.estimated_credits * self.dollars_per_credit

    @property
    def charged_credits(self) -> int | None:
        """What Kinovi finally charged: nothing for a failure, creditsUsed for a success."""
        if self.status in UNCHARGED_STATUSES:
            return 0
        return self.credits_used

    # What a member may do with it. Each `*_refusal` says why not (None: allowed); the services
    # raise it and the pages offer only what `actions_for` allows, so they cannot disagree.

    def _member_refusal(self, membership) -> str | None:
        if membership.workspace_id != self.workspace_id:
            return "That video belongs to another workspace."
        if not membership.can_generate:
            return VIEWER_REFUSAL
        return None

    def _manager_refusal(self, membership) -> str | None:
        refusal = self._member_refusal(membership)
        if (
            refusal is None
            and self.creator_id != membership.user_id
            and not membership.can_manage_members
        ):
            return "Only its creator or a workspace owner or admin can do that."
        return refusal

    def retry_refusal(self, membership) -> str | None:
        refusal = self._member_refusal(membership)
        if refusal is None and self.is_on_its_way:
            return "This video is still on its way; wait for it to finish first."
        return refusal

    def cancel_refusal(self, membership) -> str | None:
        refusal = self._manager_refusal(membership)
        if refusal is None and self.status == S.CANCELED:
            return "It is already canceled."
        if refusal is None and self.status != S.QUEUED:
            return "It was already sent to Kinovi, so it can no longer be canceled."
        return refusal

    def hide_refusal(self, membership) -> str | None:
        refusal = self._manager_refusal(membership)
        if refusal is None and self.hidden:
            return "It is already hidden."
        if refusal is None and self.status == S.QUEUED:
            return "This video is waiting to be sent; cancel it instead."
        if refusal is None and self.is_on_its_way:
            return "This video is still on its way; it can be hidden once it finishes."
        return refusal

    def unhide_refusal(self, membership) -> str | None:
        refusal = self._manager_refusal(membership)
        if refusal is None and not self.hidden:
            return "It is not hidden."
        return refusal

    def recheck_refusal(self) -> str | None:
        """Anyone who sees the video may ask Kinovi about it again (it changes nothing else)."""
        if self.is_terminal:
            return "This video is finished; there is nothing to re-check."
        if self.status == S.QUEUED:
            return "This video has not been sent to Kinovi yet; it is waiting its turn."
        if not self.task_id and self.status == S.UNKNOWN:
            return UNKNOWN_WITHOUT_TASK
        if not self.task_id:
            return "This video is being sent to Kinovi right now; try again shortly."
        if self.is_paused:
            return KEY_PAUSED_REFUSAL
        return None

    def shot_chain(self, limit: int = 20) -> list["Generation"]:
        """This video and the ones it came from (retry, remix, continued shot), oldest first."""
        chain = [self]
        while chain[0].parent_id and len(chain) < limit:
            parent = Generation.objects.filter(pk=chain[0].parent_id).first()
            if parent is None or parent.workspace_id != self.workspace_id:
                break
            chain.insert(0, parent)
        return chain

    def video_settings(self) -> dict:
        """Everything about the video but its prompt and materials, as services.submit takes it."""
        return {name: getattr(self, name) for name in VIDEO_SETTINGS}

    def actions_for(self, membership) -> dict[str, bool]:
        """What the pages offer this member, from the same predicates the services enforce."""
        return {
            "retry": self.retry_refusal(membership) is None,
            "cancel": self.cancel_refusal(membership) is None,
            "hide": self.hide_refusal(membership) is None,
            "unhide": self.unhide_refusal(membership) is None,
            "recheck": membership.can_generate and self.recheck_refusal() is None,
        }


class StatusEvent(models.Model):
    class Source(models.TextChoices):
        SUBMIT = "submit", "Submit"
        POLL = "poll", "Poll"
        WEBHOOK = "webhook", "Webhook"
        OPERATOR = "operator", "Operator"
        SWEEPER = "sweeper", "Sweeper"
        USER = "user", "User"

    generation = models.ForeignKey(Generation, models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=12, choices=Status.choices, blank=True)
    to_status = models.CharField(max_length=12, choices=Status.choices)
    source = models.CharField(max_length=10, choices=Source.choices)
    detail = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["generation", "created_at"], name="event_timeline")]

    def __str__(self) -> str:
        return f"{self.from_status or '∅'} → {self.to_status} ({self.source})"


class CreditEntry(models.Model):
    """Append-only ledger: one row per credit movement, traceable to a generation and a person.

    reserve: the estimate, when createTask is accepted (negative: credits spent).
    capture: the correction to Kinovi's creditsUsed when it differs from the reserve.
    refund:  the reserve given back when the task fails (positive).
    """

    class Kind(models.TextChoices):
        RESERVE = "reserve", "Reserve"
        CAPTURE = "capture", "Capture"
        REFUND = "refund", "Refund"

    generation = models.ForeignKey(Generation, models.PROTECT, related_name="credit_entries")
    workspace = models.ForeignKey(Workspace, models.PROTECT, related_name="credit_entries")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, models.PROTECT, related_name="+")
    api_key = models.ForeignKey(ApiKey, models.PROTECT, related_name="credit_entries")
    model = models.CharField(max_length=40, choices=Model.choices)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    # Signed: spending is negative, refunds positive, so a sum is the balance movement.
    credits = models.IntegerField()
    dollars_per_credit = models.DecimalField(max_digits=10, decimal_places=6)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "credit entries"
        constraints = [
            models.UniqueConstraint(fields=["generation", "kind"], name="one_entry_per_kind")
        ]
        indexes = [
            models.Index(fields=["created_at"], name="ledger_time"),
            models.Index(fields=["workspace", "created_at"], name="ledger_workspace_time"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.credits:+d} for {self.generation_id}"

    @property
    def dollars(self) -> Decimal:
        return self.credits * self.dollars_per_credit


# A ledger row's money, exactly: credits × the dollar price it was written at. Every sum of
# dollars (usage page, admin totals, credit report) uses this one expression.
MONEY = DecimalField(max_digits=20, decimal_places=6)
LEDGER_DOLLARS = ExpressionWrapper(F("credits") * F("dollars_per_credit"), output_field=MONEY)


class WebhookDelivery(models.Model):
    class Outcome(models.TextChoices):
        RECEIVED = "received", "Received, not yet judged"
        APPLIED = "applied", "Applied"
        DUPLICATE = "duplicate", "Duplicate"
        IGNORED = "ignored", "Ignored"
        REJECTED = "rejected", "Rejected"
        EARLY = "early", "Early (before the task id was known)"

    generation = models.ForeignKey(
        Generation, models.SET_NULL, null=True, blank=True, related_name="webhook_deliveries"
    )
    headers = models.JSONField(default=dict)
    body = models.TextField(blank=True)
    body_truncated = models.BooleanField(default=False)
    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.RECEIVED)
    error = models.CharField(max_length=500, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    # What the body claimed (never applied as such: only recordInfo's answer is applied).
    claimed_task_id = models.CharField(max_length=100, blank=True)
    claimed_status = models.CharField(max_length=12, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"Delivery {self.pk} ({self.outcome})"


class BudgetWarning(models.Model):
    """A budget warning e-mail already sent: one row per workspace, month and threshold.

    The unique constraint is what makes "e-mailed once per month" hold when two processes
    notice the same crossing at the same moment (owned by the admin/budget area).
    """

    workspace = models.ForeignKey(Workspace, models.CASCADE, related_name="budget_warnings")
    month = models.DateField(help_text="First day of the calendar month the warning is about.")
    threshold = models.PositiveSmallIntegerField(help_text="Percent of the budget: 80 or 100.")
    used_credits = models.PositiveIntegerField()
    budget_credits = models.PositiveIntegerField()
    recipients = models.JSONField(default=list, blank=True)
    sent_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-sent_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "month", "threshold"], name="one_budget_warning_per_month"
            )
        ]

    def __str__(self) -> str:
        return f"{self.threshold}% of {self.workspace} for {self.month:%Y-%m}"


class Heartbeat(models.Model):
    """A background loop's last beat (ticker, sweeper) and counters (e.g. bad webhook tokens).

    The ticker row doubles as a lease so that only one ticker loop runs across all clusters.
    """

    TICKER = "ticker"
    SWEEPER = "sweeper"
    BAD_WEBHOOK_TOKEN = "webhook-bad-token"
    # Deliveries with a valid token after the generation's end (answered 2xx, not judged).
    LATE_WEBHOOK = "webhook-late"

    name = models.CharField(max_length=40, unique=True)
    beat_at = models.DateTimeField(null=True, blank=True)
    count = models.PositiveBigIntegerField(default=0)
    detail = models.CharField(max_length=300, blank=True)
    lease_owner = models.CharField(max_length=40, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} at {self.beat_at}"


class LedgerDay(models.Model):
    """The ledger summed per UTC day, workspace, person, key and model, for the credit report.

    Kept by a PostgreSQL trigger on every ledger insert (migration 0005), in the same
    transaction, so it is never behind; the report reads it instead of scanning a million
    ledger rows. Signs as in the ledger (spending negative). Elsewhere (SQLite) it stays empty
    and the report aggregates the ledger directly. Owned by the admin/report area.
    """

    day = models.DateField()
    workspace = models.ForeignKey(Workspace, models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="+")
    api_key = models.ForeignKey(ApiKey, models.CASCADE, related_name="+")
    model = models.CharField(max_length=40, choices=Model.choices)
    generations = models.IntegerField(default=0, help_text="Reserve rows: generations accepted.")
    reserved = models.BigIntegerField(default=0)
    captured = models.BigIntegerField(default=0)
    refunded = models.BigIntegerField(default=0)
    net = models.BigIntegerField(default=0)
    dollars = models.DecimalField(max_digits=20, decimal_places=6, default=Decimal("0"))

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "workspace", "user", "api_key", "model"], name="one_ledger_day"
            )
        ]
        indexes = [models.Index(fields=["day"], name="ledger_day")]

    def __str__(self) -> str:
        return f"{self.day} {self.workspace_id}/{self.user_id}/{self.api_key_id} {self.model}"
