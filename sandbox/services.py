"""What the sandbox vendor does: accounts, validation and pricing as the seed, tasks, faults."""

import math
import random
import secrets
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from sandbox.models import SandboxAccount, SandboxFault, SandboxTask, hash_key

# The seed's prices, on purpose independent of the project's price table: the sandbox plays
# the vendor, so a wrong row in our table must show up as a mismatch, not be mirrored.
CREDITS_PER_SECOND = {"seedance-20": 40, "seedance2-fast": 28}
UPSCALE_4K_CREDITS_PER_SECOND = 28
ASPECT_RATIOS = ("16:9", "9:16", "1:1", "3:4", "4:3", "21:9")
MODES = ("keyframe", "reference")
MAX_PROMPT_LENGTH = 4000
# Small, even sizes keep rendering cheap; recordInfo reports exactly the file's size.
SIZES = {
    "16:9": (640, 360),
    "9:16": (360, 640),
    "1:1": (480, 480),
    "21:9": (672, 288),
    "4:3": (480, 360),
    "3:4": (360, 480),
}

FAIL_MARKER = "[sandbox:fail]"
ERROR_MARKER = "[sandbox:error]"
MODERATION_CODE = "2038"
MODERATION_MESSAGE = (
    "Your input text violates platform rules. Please modify your prompt and try again."
)
SERVER_ERROR_CODE = "500"
SERVER_ERROR_MESSAGE = "Internal error while generating the video. Please try again later."
ENDPOINTS = {choice.value for choice in SandboxFault.Endpoint}


class SandboxError(Exception):
    """A vendor error answer: HTTP status and the JSON body to send."""

    def __init__(self, status: int, body: dict, *, retry_after: int | None = None):
        super().__init__(body.get("message", ""))
        self.status = status
        self.body = body
        self.retry_after = retry_after


@dataclass(frozen=True)
class CreateInputs:
    model: str
    prompt: str
    duration: int
    aspect_ratio: str
    mode: str
    upscale_4k: bool
    callback_url: str
    raw_inputs: dict


def price(*, model: str, duration: int, upscale_4k: bool) -> int:
    per_second = CREDITS_PER_SECOND[model] + (UPSCALE_4K_CREDITS_PER_SECOND if upscale_4k else 0)
    return per_second * duration


# --- accounts and faults ------------------------------------------------------------------


def create_account(*, label: str, credits: int = 100_000, concurrency_limit: int = 2) -> str:
    """A new sandbox account; returns its key (`sk_sandbox_…`), which is shown only once."""
    label = (label or "").strip()[:100] or "Sandbox account"
    if credits < 0 or concurrency_limit < 1:
        raise ValueError("Credits cannot be negative and the concurrency limit must be at least 1.")
    key = f"sk_sandbox_{secrets.token_urlsafe(24)}"
    SandboxAccount.objects.create(
        label=label,
        key_hash=hash_key(key),
        key_last4=key[-4:],
        credits=credits,
        concurrency_limit=concurrency_limit,
    )
    return key


def inject_faults(
    *, status: int, count: int, endpoint: str = "any", retry_after: int | None = None
) -> SandboxFault:
    """Make the next `count` calls to `endpoint` (createTask, recordInfo or any) answer
    `status` (500 or 429) before anything else happens, for demos and fault tests."""
    if status not in (429, 500):
        raise ValueError("A sandbox fault answers 429 or 500.")
    if count < 1:
        raise ValueError("The fault count must be at least 1.")
    if endpoint not in ENDPOINTS:
        raise ValueError(f"The endpoint must be one of {', '.join(sorted(ENDPOINTS))}.")
    if retry_after is not None and retry_after < 0:
        raise ValueError("Retry-After cannot be negative.")
    return SandboxFault.objects.create(
        status=status, remaining=count, endpoint=endpoint, retry_after=retry_after
    )


def clear_faults() -> int:
    return SandboxFault.objects.filter(remaining__gt=0).update(remaining=0)


def take_fault(*, endpoint: str) -> SandboxError | None:
    """Consume one planned fault for this endpoint, if any is left."""
    for fault in SandboxFault.objects.filter(
        remaining__gt=0, endpoint__in=[endpoint, SandboxFault.Endpoint.ANY]
    ).order_by("created_at", "id")[:5]:
        # Compare-and-set: two concurrent calls never consume the same last unit.
        taken = SandboxFault.objects.filter(pk=fault.pk, remaining__gt=0).update(
            remaining=F("remaining") - 1
        )
        if not taken:
            continue
        if fault.status == 429:
            return SandboxError(
                429,
                {"message": "Rate limited (sandbox fault injection).", "limit": 0, "current": 0},
                retry_after=fault.retry_after,
            )
        return SandboxError(500, {"message": "Internal server error (sandbox fault injection)."})
    return None


def authenticate(authorization: str) -> SandboxAccount:
    scheme, _, key = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise SandboxError(401, {"message": "Missing API key. Use Authorization: Bearer <key>."})
    account = SandboxAccount.objects.filter(key_hash=hash_key(key.strip())).first()
    if account is None:
        raise SandboxError(401, {"message": "Invalid API key."})
    if not account.api_enabled:
        raise SandboxError(403, {"message": "API access is not enabled for this account."})
    return account


# --- createTask --------------------------------------------------------------------------------


def validate_create(body) -> CreateInputs:
    """The seed's rules; every problem as {path, message}. Unknown inputs keys are ignored,
    exactly as the vendor does (which is why the client validates its own payload)."""
    if not isinstance(body, dict):
        raise SandboxError(400, {"message": "The request body must be a JSON object."})
    errors = []

    def refuse(path, message):
        errors.append({"path": path, "message": message})

    model = body.get("model")
    if model is None:
        refuse("model", "model is required.")
    elif model not in CREDITS_PER_SECOND:
        refuse("model", "model must be seedance-20 or seedance2-fast.")

    callback_url = body.get("callBackUrl")
    if callback_url in (None, ""):
        callback_url = ""
    elif not isinstance(callback_url, str) or len(callback_url) > 2048:
        refuse("callBackUrl", "callBackUrl must be a URL.")
    else:
        parts = urlsplit(callback_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            refuse("callBackUrl", "callBackUrl must be an http or https URL.")

    inputs = body.get("inputs")
    if not isinstance(inputs, dict):
        refuse("inputs", "inputs is required and must be an object.")
        inputs = {}

    prompt = inputs.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        if "inputs" not in {e["path"] for e in errors}:
            refuse("inputs.prompt", "prompt is required.")
    elif len(prompt) > MAX_PROMPT_LENGTH:
        refuse("inputs.prompt", f"prompt must be at most {MAX_PROMPT_LENGTH} characters.")

    duration = inputs.get("duration", "5")
    if not isinstance(duration, str) or not duration.isdigit() or not 4 <= int(duration) <= 15:
        refuse("inputs.duration", 'duration must be a string from "4" to "15".')

    aspect_ratio = inputs.get("aspectRatio", "16:9")
    if aspect_ratio not in ASPECT_RATIOS:
        refuse("inputs.aspectRatio", f"aspectRatio must be one of {', '.join(ASPECT_RATIOS)}.")

    mode = inputs.get("mode", "keyframe")
    if mode not in MODES:
        refuse("inputs.mode", "mode must be keyframe or reference.")

    upscale = inputs.get("upscaleResolution")
    if upscale not in (None, "4k"):
        refuse("inputs.upscaleResolution", 'upscaleResolution can only be "4k".')

    if errors:
        raise SandboxError(400, {"message": "Invalid parameters.", "errors": errors})
    return CreateInputs(
        model=model,
        prompt=prompt,
        duration=int(duration),
        aspect_ratio=aspect_ratio,
        mode=mode,
        upscale_4k=upscale == "4k",
        callback_url=callback_url,
        raw_inputs=inputs,
    )


def _plan(prompt: str) -> tuple[str, str, str]:
    if FAIL_MARKER in prompt:
        return SandboxTask.Outcome.FAIL, MODERATION_CODE, MODERATION_MESSAGE
    if ERROR_MARKER in prompt:
        return SandboxTask.Outcome.FAIL, SERVER_ERROR_CODE, SERVER_ERROR_MESSAGE
    return SandboxTask.Outcome.SUCCESS, "", ""


def running_count(account: SandboxAccount, now) -> int:
    return SandboxTask.objects.filter(account=account, ends_at__gt=now).count()


def create_task(*, account: SandboxAccount, inputs: CreateInputs, public_base: str) -> SandboxTask:
    """Check the concurrency limit and the balance, charge, and plan the task's life."""
    now = timezone.now()
    cost = price(model=inputs.model, duration=inputs.duration, upscale_4k=inputs.upscale_4k)
    with transaction.atomic():
        # The account row lock serialises creates, so neither limit can be overrun by a race.
        locked = SandboxAccount.objects.select_for_update().get(pk=account.pk)
        running = SandboxTask.objects.filter(account=locked, ends_at__gt=now)
        current = running.count()
        if current >= locked.concurrency_limit:
            first_end = running.order_by("ends_at").values_list("ends_at", flat=True).first()
            wait = max(1, math.ceil((first_end - now).total_seconds())) if first_end else 1
            raise SandboxError(
                429,
                {
                    "message": "Concurrency limit reached: too many tasks in progress. "
                    "Wait for one to finish.",
                    "limit": locked.concurrency_limit,
                    "current": current,
                },
                retry_after=wait,
            )
        if locked.credits < cost:
            raise SandboxError(
                402,
                {
                    "message": "Insufficient credits.",
                    "required": cost,
                    "available": locked.credits,
                },
            )
        SandboxAccount.objects.filter(pk=locked.pk).update(credits=F("credits") - cost)
        outcome, code, message = _plan(inputs.prompt)
        starts_at = now + timedelta(seconds=settings.KINOVI_SANDBOX_WAIT_SECONDS)
        # A moderation refusal comes when generation would start; other ends after generating.
        ends_at = (
            starts_at
            if code == MODERATION_CODE
            else starts_at + timedelta(seconds=settings.KINOVI_SANDBOX_GENERATE_SECONDS)
        )
        width, height = SIZES[inputs.aspect_ratio]
        return SandboxTask.objects.create(
            task_id=f"task_{secrets.token_hex(16)}",
            order_id=f"order_{secrets.token_hex(8)}",
            account=locked,
            model=inputs.model,
            prompt=inputs.prompt,
            duration=inputs.duration,
            aspect_ratio=inputs.aspect_ratio,
            mode=inputs.mode,
            upscale_4k=inputs.upscale_4k,
            inputs=inputs.raw_inputs,
            callback_url=inputs.callback_url,
            public_base=public_base,
            created_at=now,
            starts_at=starts_at,
            ends_at=ends_at,
            outcome=outcome,
            error_code=code,
            error_message=message,
            credits_charged=cost,
            seed=random.randint(1, 2**31 - 1),
            width=width,
            height=height,
            webhook_due_at=ends_at if inputs.callback_url else None,
        )


# --- the end of a task ---------------------------------------------------------------------


def settle_finished(*, account: SandboxAccount | None = None, now=None) -> int:
    """Account for tasks whose time is up: refund failures. Safe to run from any process."""
    now = now or timezone.now()
    due = SandboxTask.objects.filter(settled_at__isnull=True, ends_at__lte=now)
    if account is not None:
        due = due.filter(account=account)
    settled = 0
    for task in due.only("pk", "account_id", "outcome", "credits_charged")[:100]:
        with transaction.atomic():
            refund = task.credits_charged if task.outcome == SandboxTask.Outcome.FAIL else 0
            # Compare-and-set: the refund happens once even if several processes settle.
            claimed = SandboxTask.objects.filter(pk=task.pk, settled_at__isnull=True).update(
                settled_at=now, credits_refunded=refund
            )
            if claimed and refund:
                SandboxAccount.objects.filter(pk=task.account_id).update(
                    credits=F("credits") + refund
                )
            settled += claimed
    return settled


def get_task(*, account: SandboxAccount, task_id) -> SandboxTask:
    if not isinstance(task_id, str) or not task_id.strip() or len(task_id) > 64:
        raise SandboxError(
            400,
            {
                "message": "Invalid taskId.",
                "errors": [{"path": "taskId", "message": "taskId is required."}],
            },
        )
    task = SandboxTask.objects.filter(task_id=task_id.strip()).first()
    if task is None:
        raise SandboxError(404, {"message": "Task not found."})
    if task.account_id != account.pk:
        raise SandboxError(403, {"message": "This task belongs to another account."})
    return task


def _ms(moment) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def output_urls(task: SandboxTask, base: str) -> dict:
    from django.urls import reverse

    return {
        "url": base + reverse("sandbox:video", args=[task.task_id]),
        "lastFrameImage": base + reverse("sandbox:last_frame", args=[task.task_id]),
    }


def record_body(task: SandboxTask, *, base: str, now=None) -> dict:
    """recordInfo's answer. A success's media is rendered first, so its size is the file's."""
    from sandbox.media import ensure_rendered

    now = now or timezone.now()
    status = task.status_at(now)
    output = None
    if status == "success":
        ensure_rendered(task)
        output = [_output_entry(task, base)]
    return {
        "taskId": task.task_id,
        "model": task.model,
        "status": status,
        # On fail the original amount is still shown, as the vendor does (it was refunded).
        "creditsUsed": task.credits_charged,
        "output": output,
        "error": (
            {"code": task.error_code, "message": task.error_message} if status == "fail" else None
        ),
        "createTime": _ms(task.created_at),
        "completeTime": _ms(task.ends_at) if status in ("success", "fail") else None,
    }


def _output_entry(task: SandboxTask, base: str) -> dict:
    return {
        **output_urls(task, base),
        "width": task.width,
        "height": task.height,
        "mediaType": "video/mp4",
        "seed": task.seed,
    }


def webhook_body(task: SandboxTask) -> dict:
    """The documented completion envelope; on fail creditsUsed is 0 and output null."""
    success = task.outcome == SandboxTask.Outcome.SUCCESS
    return {
        "code": 200,
        "message": "success",
        "data": {
            "taskId": task.task_id,
            "orderId": task.order_id,
            "model": task.model,
            "state": task.outcome,
            "creditsUsed": task.credits_charged if success else 0,
            "output": [_output_entry(task, task.public_base)] if success else None,
            "error": None if success else {"code": task.error_code, "message": task.error_message},
            "createTime": _ms(task.created_at),
            "completeTime": _ms(task.ends_at) if success else None,
            "updateTime": _ms(task.ends_at),
        },
    }
