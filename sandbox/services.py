"""What the sandbox vendor does: accounts, validation and pricing as the seed, tasks, faults."""

import math
import random
import secrets
import shutil
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone

from sandbox import inputs as inputs_module
from sandbox import materials, pricing
from sandbox.media import ensure_rendered, media_dir
from sandbox.models import SandboxAccount, SandboxFault, SandboxTask, hash_key

# The vendor's parts, kept in their own modules and named here for the callers of services.
ASPECT_RATIOS = inputs_module.ASPECT_RATIOS
MODES = inputs_module.MODES
CreateInputs = inputs_module.CreateInputs
price = pricing.price
# The short side of the rendered video per output resolution; the long side follows the
# aspect ratio. 4K is priced but not rendered: recordInfo reports the file's real size.
SHORT_SIDE = {"480p": 480, "720p": 720, "1080p": 1080}
RATIOS = {ratio: tuple(int(n) for n in ratio.split(":")) for ratio in ASPECT_RATIOS}

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


def frame_size(aspect_ratio: str, resolution: str) -> tuple[int, int]:
    """Width and height (even numbers, as H.264 wants) for a ratio at a resolution."""
    a, b = RATIOS[aspect_ratio]
    short = SHORT_SIDE[resolution]
    long_side = 2 * round(short * max(a, b) / min(a, b) / 2)
    return (long_side, short) if a >= b else (short, long_side)


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


def validate_create(body, *, dialect: str | None = None) -> CreateInputs:
    """The vendor's rules in the configured dialect (settings.KINOVI_SANDBOX_DIALECT); every
    problem as {path, message}. Unknown inputs keys are ignored, exactly as the vendor does."""
    if not isinstance(body, dict):
        raise SandboxError(400, {"message": "The request body must be a JSON object."})
    try:
        return inputs_module.parse(body, dialect=dialect or settings.KINOVI_SANDBOX_DIALECT)
    except inputs_module.InvalidInputs as exc:
        raise SandboxError(400, {"message": "Invalid parameters.", "errors": exc.errors}) from None


def _plan(prompt: str) -> tuple[str, str, str]:
    if FAIL_MARKER in prompt:
        return SandboxTask.Outcome.FAIL, MODERATION_CODE, MODERATION_MESSAGE
    if ERROR_MARKER in prompt:
        return SandboxTask.Outcome.FAIL, SERVER_ERROR_CODE, SERVER_ERROR_MESSAGE
    return SandboxTask.Outcome.SUCCESS, "", ""


def running_count(account: SandboxAccount, now) -> int:
    return SandboxTask.objects.filter(account=account, ends_at__gt=now).count()


def _check_limits(locked: SandboxAccount, *, now, cost: int) -> None:
    """429 when the account's concurrency limit is reached, 402 when it cannot pay."""
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


def create_task(*, account: SandboxAccount, inputs: CreateInputs, public_base: str) -> SandboxTask:
    """Check the concurrency limit and the balance, charge, and plan the task's life."""
    now = timezone.now()
    cost = price(
        model=inputs.model,
        duration=inputs.duration,
        resolution=inputs.resolution,
        upscale_4k=inputs.upscale_4k,
        reference_video=inputs.reference_video_declared,
    )
    with transaction.atomic():
        # The account row lock serialises creates, so neither limit can be overrun by a race.
        locked = SandboxAccount.objects.select_for_update().get(pk=account.pk)
        _check_limits(locked, now=now, cost=cost)
        SandboxAccount.objects.filter(pk=locked.pk).update(credits=F("credits") - cost)
        outcome, code, message = _plan(inputs.prompt)
        starts_at = now + timedelta(seconds=settings.KINOVI_SANDBOX_WAIT_SECONDS)
        # A moderation refusal comes when generation would start; other ends after generating.
        ends_at = (
            starts_at
            if code == MODERATION_CODE
            else starts_at + timedelta(seconds=settings.KINOVI_SANDBOX_GENERATE_SECONDS)
        )
        width, height = frame_size(inputs.aspect_ratio, inputs.resolution)
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
            resolution=inputs.resolution,
            dialect=inputs.dialect,
            reference_video=inputs.reference_video_declared,
            material_urls=inputs.urls,
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
            seed=inputs.seed if inputs.seed is not None else random.randint(1, 2**31 - 1),
            width=width,
            height=height,
            webhook_due_at=ends_at if inputs.callback_url else None,
        )


# --- the end of a task ---------------------------------------------------------------------


def settle_finished(*, account: SandboxAccount | None = None, now=None, fetch=True) -> int:
    """Account for tasks whose time is up: refund failures. Safe to run from any process.

    A material that cannot be fetched turns a planned success into a refunded fail, so the
    materials are checked before a task is settled. With fetch=False (createTask, which must
    answer at once) tasks whose materials are not checked yet are left for later."""
    now = now or timezone.now()
    due = SandboxTask.objects.filter(settled_at__isnull=True, ends_at__lte=now)
    if account is not None:
        due = due.filter(account=account)
    unchecked = Q(materials_checked_at__isnull=True) & ~Q(material_urls=[])
    if fetch:
        for task in due.filter(unchecked)[:100]:
            check_materials(task)
    else:
        due = due.exclude(unchecked)
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


INSUFFICIENT_CODE = "4003"


def check_materials(task: SandboxTask) -> SandboxTask:
    """Fetch and check the task's materials once (as the vendor does when generation starts);
    a failure turns the task into a fail with {code, message}, refunded when settled. Returns
    the task as it now stands. Safe to run in several processes: the first to record wins."""
    if task.materials_checked_at is not None:
        return task
    if task.outcome != SandboxTask.Outcome.SUCCESS or not task.material_urls:
        return _record_materials(task, [], None)
    # A directory per attempt, so two processes fetching at once never share a half file.
    folder = f"materials-{secrets.token_hex(4)}"
    try:
        found = materials.fetch_all(task.material_urls, media_dir(task) / folder)
        materials.check_set(found, mode=task.mode)
    except materials.MaterialError as exc:
        shutil.rmtree(media_dir(task) / folder, ignore_errors=True)
        return _record_materials(task, [], (exc.code, exc.message))
    for item in found:
        item["file"] = f"{folder}/{item['file']}"
    recorded = _record_materials(task, found, None)
    if recorded.materials != found:
        # Another process recorded its own copy first: this one is not used.
        shutil.rmtree(media_dir(task) / folder, ignore_errors=True)
    return recorded


def _record_materials(task: SandboxTask, found: list, failure) -> SandboxTask:
    with transaction.atomic():
        fresh = SandboxTask.objects.select_for_update().get(pk=task.pk)
        if fresh.materials_checked_at is not None:
            return fresh  # another process recorded first; its result stands
        fresh.materials_checked_at = timezone.now()
        fresh.materials = found
        has_video = any(item["kind"] == "video" for item in found)
        if failure is None and has_video and not fresh.reference_video:
            failure = _charge_reference_video(fresh)
        if failure is not None:
            fresh.outcome = SandboxTask.Outcome.FAIL
            fresh.error_code, fresh.error_message = failure
        fresh.save(
            update_fields=[
                "materials_checked_at",
                "materials",
                "outcome",
                "error_code",
                "error_message",
                "credits_charged",
                "reference_video",
            ]
        )
    return fresh


def _charge_reference_video(task: SandboxTask):
    """docs' `urls` do not say which file is a video: the surcharge is charged once the fetched
    files show one. Returns a failure (code, message) when the account cannot pay it."""
    total = price(
        model=task.model,
        duration=task.duration,
        resolution=task.resolution,
        upscale_4k=task.upscale_4k,
        reference_video=True,
    )
    extra = total - task.credits_charged
    account = SandboxAccount.objects.select_for_update().get(pk=task.account_id)
    if account.credits < extra:
        return (
            INSUFFICIENT_CODE,
            f"Insufficient credits for the reference-video surcharge: {extra} required, "
            f"{account.credits} available.",
        )
    SandboxAccount.objects.filter(pk=account.pk).update(credits=F("credits") - extra)
    task.credits_charged = total
    task.reference_video = True
    return None


def expire_media(*, task_id: str | None = None, everything: bool = False, expired=True) -> int:
    """Make a task's output URLs answer 404 (or serve again with expired=False), as the
    vendor's do 14 days after a task ends. Returns how many tasks changed."""
    if (task_id is None) == (not everything):
        raise ValueError("Name one task, or ask for all of them.")
    tasks = SandboxTask.objects.all() if everything else SandboxTask.objects.filter(task_id=task_id)
    if task_id is not None and not tasks.exists():
        raise ValueError(f"No sandbox task {task_id}.")
    if expired:
        return tasks.filter(media_expired_at__isnull=True).update(media_expired_at=timezone.now())
    return tasks.filter(media_expired_at__isnull=False).update(media_expired_at=None)


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
    return {
        "url": base + reverse("sandbox:video", args=[task.task_id]),
        "lastFrameImage": base + reverse("sandbox:last_frame", args=[task.task_id]),
    }


def record_body(task: SandboxTask, *, base: str, now=None) -> dict:
    """recordInfo's answer. A success's media is rendered first, so its size is the file's."""
    now = now or timezone.now()
    if task.status_at(now) != "waiting":
        task = check_materials(task)
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
