"""Operations on generations (submit, batch, retry, cancel, re-check, hide) and the budget figures.

Each operation is a keyword-only function that refuses a bad request with `SubmissionRefused`
or `ActionRefused` carrying a message fit to show the user, and changes nothing when it does.

Budget ("spent this month"): the generations created this calendar month (UTC) count with
  - their estimate while queued or submitting (nothing reserved at Kinovi yet, but it will be),
  - minus the sum of their ledger rows otherwise (reserve − capture correction + refund):
    an in-flight or unknown one counts its estimate, a success what Kinovi charged, a failure,
    a rejection or a cancellation nothing.
The check and the new rows happen under a row lock on the workspace, so concurrent
submissions are serialized and cannot overdraw.
"""

import uuid
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.urls import reverse
from django.utils import timezone

from accounts.models import ApiKey, Membership, Workspace, hash_token
from generations import pricing
from generations.lifecycle import POLLABLE_STATUSES, apply_status
from generations.models import (
    IN_FLIGHT_STATUSES,
    MAX_DURATION,
    MAX_PROMPT_LENGTH,
    MIN_DURATION,
    AspectRatio,
    CreditEntry,
    Generation,
    Mode,
    Model,
    Status,
    StatusEvent,
    WebhookDelivery,
)

MAX_BATCH = 50
# Held against the budget before Kinovi has reserved anything.
HELD_STATUSES = (Status.QUEUED, Status.SUBMITTING)


class SubmissionRefused(Exception):
    """A submission that was not accepted; `message` says why, for the user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ActionRefused(Exception):
    """An action on a generation that is not possible now; `message` says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- budgets ----------------------------------------------------------------------------------


def month_start(now: datetime | None = None) -> datetime:
    now = timezone.localtime(now or timezone.now())
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def spent_this_month(*, workspace: Workspace, user=None, now: datetime | None = None) -> int:
    """Credits this month's generations of the workspace (or of one member) use or hold."""
    generations = Generation.objects.filter(workspace=workspace, created_at__gte=month_start(now))
    if user is not None:
        generations = generations.filter(creator=user)
    held = generations.filter(status__in=HELD_STATUSES).aggregate(total=Sum("estimated_credits"))[
        "total"
    ]
    moved = CreditEntry.objects.filter(generation__in=generations.values("pk")).aggregate(
        total=Sum("credits")
    )["total"]
    return (held or 0) - (moved or 0)


def _percent(used: int, budget: int | None) -> int | None:
    if not budget:
        return None
    return int(used * 100 / budget)


def budget_status(*, workspace: Workspace, membership: Membership | None = None) -> dict:
    """The month's figures for the header, the new-video page and the budget page.

    `available` is what a new submission may cost right now (None: no limit applies).
    """
    budget = workspace.monthly_budget_credits
    used = spent_this_month(workspace=workspace)
    remaining = None if budget is None else max(0, budget - used)
    status = {
        "budget": budget,
        "used": used,
        "remaining": remaining,
        "percent": _percent(used, budget),
        "member_cap": None,
        "member_used": None,
        "member_remaining": None,
        "member_percent": None,
    }
    limits = [remaining] if remaining is not None else []
    if membership is not None and membership.monthly_cap_credits is not None:
        cap = membership.monthly_cap_credits
        member_used = spent_this_month(workspace=workspace, user=membership.user_id)
        member_remaining = max(0, cap - member_used)
        status.update(
            member_cap=cap,
            member_used=member_used,
            member_remaining=member_remaining,
            member_percent=_percent(member_used, cap),
        )
        limits.append(member_remaining)
    status["available"] = min(limits) if limits else None
    return status


def _check_budget(workspace: Workspace, membership: Membership, cost: int) -> None:
    """Refuses `cost` if it would take the workspace or the member over the month's limit."""
    budget = workspace.monthly_budget_credits
    if budget is not None:
        used = spent_this_month(workspace=workspace)
        if used + cost > budget:
            raise SubmissionRefused(
                f"This costs {cost} credits but only {max(0, budget - used)} of the workspace's "
                f"{budget}-credit monthly budget are left. Nothing was sent. Ask an owner or "
                "admin to raise the budget, or choose a shorter or cheaper video."
            )
    cap = membership.monthly_cap_credits
    if cap is not None:
        used = spent_this_month(workspace=workspace, user=membership.user_id)
        if used + cost > cap:
            raise SubmissionRefused(
                f"This costs {cost} credits but only {max(0, cap - used)} of your {cap}-credit "
                "monthly cap in this workspace are left. Nothing was sent."
            )


# --- submitting -------------------------------------------------------------------------------


def _check_member(membership: Membership, error=SubmissionRefused) -> None:
    if not membership.can_generate:
        raise error("Viewers can look but not generate. Ask an owner or admin for the member role.")


def _check_key(api_key: ApiKey | None, workspace_id: int) -> ApiKey:
    if api_key is None:
        raise SubmissionRefused("Add a Kinovi API key to this workspace first (Keys page).")
    if api_key.workspace_id != workspace_id:
        raise SubmissionRefused("That API key belongs to another workspace.")
    if api_key.revoked_at is not None:
        raise SubmissionRefused("That API key was revoked. Choose another key.")
    if api_key.status == ApiKey.Status.INVALID:
        detail = f" ({api_key.status_detail})" if api_key.status_detail else ""
        raise SubmissionRefused(
            f"Kinovi refused that API key{detail}. Update it on the Keys page or choose another."
        )
    return api_key


def _clean_params(*, model, duration, aspect_ratio, mode, upscale_4k) -> dict:
    if model not in Model.values:
        raise SubmissionRefused("Choose a model: Seedance 2.0 standard or fast.")
    try:
        duration = int(duration)
    except (TypeError, ValueError):
        raise SubmissionRefused("The duration must be a whole number of seconds.") from None
    if not MIN_DURATION <= duration <= MAX_DURATION:
        raise SubmissionRefused(
            f"The duration must be between {MIN_DURATION} and {MAX_DURATION} seconds."
        )
    if aspect_ratio not in AspectRatio.values:
        raise SubmissionRefused(f"Choose an aspect ratio: {', '.join(AspectRatio.values)}.")
    if mode not in Mode.values:
        raise SubmissionRefused("Choose a mode: keyframe or reference.")
    if not isinstance(upscale_4k, bool):
        raise SubmissionRefused("The 4K upscale choice must be yes or no.")
    return {
        "model": model,
        "duration": duration,
        "aspect_ratio": aspect_ratio,
        "mode": mode,
        "upscale_4k": upscale_4k,
    }


def _clean_prompts(prompts: list[str]) -> list[str]:
    if not isinstance(prompts, list | tuple) or not prompts:
        raise SubmissionRefused("Write a prompt describing the video.")
    if len(prompts) > MAX_BATCH:
        raise SubmissionRefused(f"A batch holds at most {MAX_BATCH} prompts.")
    cleaned = []
    many = len(prompts) > 1
    for position, prompt in enumerate(prompts, start=1):
        where = f"Prompt {position}" if many else "The prompt"
        prompt = prompt.strip() if isinstance(prompt, str) else ""
        if not prompt:
            raise SubmissionRefused(f"{where} is empty: describe the video you want.")
        if len(prompt) > MAX_PROMPT_LENGTH:
            raise SubmissionRefused(
                f"{where} has {len(prompt)} characters; Kinovi accepts at most {MAX_PROMPT_LENGTH}."
            )
        cleaned.append(prompt)
    return cleaned


def submit(
    *,
    membership: Membership,
    api_key: ApiKey,
    model: str,
    prompt: str,
    duration: int,
    aspect_ratio: str,
    mode: str,
    upscale_4k: bool,
    parent: Generation | None = None,
    batch_id: uuid.UUID | None = None,
) -> Generation:
    """Save one generation as queued (budget checked and held) and enqueue its submission."""
    return submit_batch(
        membership=membership,
        api_key=api_key,
        prompts=[prompt],
        model=model,
        duration=duration,
        aspect_ratio=aspect_ratio,
        mode=mode,
        upscale_4k=upscale_4k,
        parent=parent,
        batch_id=batch_id,
    )[0]


def submit_batch(
    *,
    membership: Membership,
    api_key: ApiKey,
    prompts: list[str],
    model: str,
    duration: int,
    aspect_ratio: str,
    mode: str,
    upscale_4k: bool,
    parent: Generation | None = None,
    batch_id: uuid.UUID | None = None,
) -> list[Generation]:
    """Queue one generation per prompt, all or nothing: the budget must cover the total."""
    _check_member(membership)
    _check_key(api_key, membership.workspace_id)
    params = _clean_params(
        model=model, duration=duration, aspect_ratio=aspect_ratio, mode=mode, upscale_4k=upscale_4k
    )
    prompts = _clean_prompts(prompts)
    if parent is not None and parent.workspace_id != membership.workspace_id:
        raise SubmissionRefused("That video belongs to another workspace.")
    try:
        estimate = pricing.estimate(
            model=params["model"], duration=params["duration"], upscale_4k=params["upscale_4k"]
        )
    except pricing.NoPrice as exc:
        raise SubmissionRefused(f"{exc} Nothing was sent.") from None
    if len(prompts) > 1 and batch_id is None:
        batch_id = uuid.uuid4()

    with transaction.atomic():
        # The workspace row lock serializes every submission of the workspace (and so of each
        # member), so "check the budget, then add the rows" cannot interleave.
        workspace = Workspace.objects.select_for_update().get(pk=membership.workspace_id)
        _check_budget(workspace, membership, estimate.credits * len(prompts))
        now = timezone.now()
        generations = Generation.objects.bulk_create(
            [
                Generation(
                    workspace=workspace,
                    creator_id=membership.user_id,
                    api_key=api_key,
                    prompt=prompt,
                    parent=parent,
                    batch_id=batch_id,
                    status=Status.QUEUED,
                    estimated_credits=estimate.credits,
                    dollars_per_credit=estimate.dollars_per_credit,
                    created_at=now,
                    next_poll_at=now,
                    **params,
                )
                for prompt in prompts
            ]
        )
        StatusEvent.objects.bulk_create(
            [
                StatusEvent(
                    generation=generation,
                    from_status="",
                    to_status=Status.QUEUED,
                    source=StatusEvent.Source.SUBMIT,
                    detail=f"estimate {estimate.credits} credits",
                    created_at=now,
                )
                for generation in generations
            ]
        )
        from generations import tasks

        for generation in generations:
            transaction.on_commit(lambda pk=generation.pk: tasks.enqueue_submit(pk))
    return generations


# --- actions on one generation ----------------------------------------------------------------


def _check_own_workspace(generation: Generation, membership: Membership) -> None:
    if generation.workspace_id != membership.workspace_id:
        raise ActionRefused("That video belongs to another workspace.")


def _check_creator_or_manager(generation: Generation, membership: Membership) -> None:
    _check_own_workspace(generation, membership)
    _check_member(membership, ActionRefused)
    if generation.creator_id != membership.user_id and not membership.can_manage_members:
        raise ActionRefused("Only its creator or a workspace owner or admin can do that.")


def retry(*, generation: Generation, membership: Membership) -> Generation:
    """A new generation with the same parameters (parent set), on the same key if usable."""
    _check_own_workspace(generation, membership)
    _check_member(membership, ActionRefused)
    if generation.status in {Status.QUEUED, Status.SUBMITTING, Status.WAITING, Status.GENERATING}:
        raise ActionRefused("This video is still on its way; wait for it to finish first.")
    key = generation.api_key
    if key.revoked_at is not None or key.status == ApiKey.Status.INVALID:
        key = (
            ApiKey.objects.filter(
                workspace_id=membership.workspace_id, revoked_at__isnull=True, is_default=True
            )
            .exclude(status=ApiKey.Status.INVALID)
            .first()
        ) or key
    try:
        return submit(
            membership=membership,
            api_key=key,
            model=generation.model,
            prompt=generation.prompt,
            duration=generation.duration,
            aspect_ratio=generation.aspect_ratio,
            mode=generation.mode,
            upscale_4k=generation.upscale_4k,
            parent=generation,
        )
    except SubmissionRefused as exc:
        raise ActionRefused(exc.message) from None


def cancel(*, generation: Generation, membership: Membership) -> Generation:
    """Cancel a generation that has not been sent to Kinovi yet."""
    _check_creator_or_manager(generation, membership)
    outcome = apply_status(
        generation_id=generation.pk,
        status=Status.CANCELED,
        expect=Status.QUEUED,
        source=StatusEvent.Source.USER,
        detail=f"canceled by {membership.user}",
    )
    if not outcome.changed:
        raise ActionRefused(
            "It was already sent to Kinovi, so it can no longer be canceled."
            if outcome.from_status != Status.CANCELED
            else "It is already canceled."
        )
    return outcome.generation


def recheck(*, generation: Generation, source: str = StatusEvent.Source.OPERATOR) -> Generation:
    """Ask Kinovi about the task now (stalled, unknown or any in-flight generation)."""
    if source not in StatusEvent.Source.values:
        raise ValueError(f"unknown source {source!r}")
    if generation.is_terminal:
        raise ActionRefused("This video is finished; there is nothing to re-check.")
    if generation.status == Status.QUEUED:
        raise ActionRefused("This video has not been sent to Kinovi yet; it is waiting its turn.")
    if not generation.task_id:
        if generation.status == Status.UNKNOWN:
            raise ActionRefused(
                "Kinovi never answered the request that creates this video, so we do not know "
                "its task id and Kinovi has no way to look it up by anything else. Only a "
                "callback from Kinovi or an operator (with the task id from Kinovi's dashboard) "
                "can resolve it. It is never resubmitted automatically, to avoid paying twice."
            )
        raise ActionRefused("This video is being sent to Kinovi right now; try again shortly.")
    from generations import tasks

    Generation.objects.filter(pk=generation.pk, status__in=POLLABLE_STATUSES).update(
        next_poll_at=timezone.now()
    )
    transaction.on_commit(lambda: tasks.enqueue_poll(generation.pk, source=source))
    return generation


def hide(*, generation: Generation, membership: Membership) -> Generation:
    """Hide a finished generation from the gallery (its ledger rows stay)."""
    _check_creator_or_manager(generation, membership)
    if generation.status == Status.QUEUED:
        raise ActionRefused("This video is waiting to be sent; cancel it instead.")
    if generation.status in IN_FLIGHT_STATUSES - {Status.UNKNOWN, Status.STALLED}:
        raise ActionRefused("This video is still on its way; it can be hidden once it finishes.")
    Generation.objects.filter(pk=generation.pk).update(hidden=True)
    generation.hidden = True
    return generation


def resolve_unknown(*, generation: Generation, task_id: str | None) -> Generation:
    """An operator's answer for a generation whose createTask outcome is unknown.

    With the task id (from Kinovi's dashboard), recordInfo confirms it belongs to this key and
    its state is applied. Without one, the operator states Kinovi never created the task: it
    ends rejected and the reserve is refunded.
    """
    from generations import kinovi, tasks
    from generations.lifecycle import apply_info

    if generation.status != Status.UNKNOWN:
        raise ActionRefused("Only a video whose outcome is unknown can be resolved this way.")
    if not task_id or not task_id.strip():
        outcome = apply_status(
            generation_id=generation.pk,
            status=Status.REJECTED,
            expect=Status.UNKNOWN,
            source=StatusEvent.Source.OPERATOR,
            detail="An operator found no such task at Kinovi: nothing was charged.",
            error_code="unknown",
            error_message="Kinovi never created this video; nothing was charged.",
        )
        if not outcome.changed:
            raise ActionRefused("It was resolved meanwhile; nothing was changed.")
        return outcome.generation
    task_id = task_id.strip()
    if Generation.objects.filter(task_id=task_id).exclude(pk=generation.pk).exists():
        raise ActionRefused("That task id already belongs to another video.")
    try:
        info = tasks.ask_kinovi(generation, task_id)
    except (kinovi.NotFound, kinovi.AccessNotEnabled, kinovi.InvalidRequest):
        raise ActionRefused(f"Kinovi knows no task {task_id} for this video's key.") from None
    except kinovi.KinoviError as exc:
        raise ActionRefused(f"Kinovi could not be asked right now: {exc.message}") from None
    outcome = apply_info(
        generation_id=generation.pk,
        info=info,
        source=StatusEvent.Source.OPERATOR,
        detail=f"An operator gave the task id {task_id}; Kinovi says {info.status}.",
        task_id=task_id,
    )
    if not outcome.changed:
        raise ActionRefused(f"Nothing was changed: {outcome.refused}.")
    return outcome.generation


# --- callbacks --------------------------------------------------------------------------------


# The stored form of a callback token: its sha256, like every other token the project keeps.
hash_callback_token = hash_token


def callback_url_for(generation: Generation, token: str) -> str | None:
    """The URL Kinovi should call when the task ends, or None when Kinovi cannot reach us."""
    if not settings.KINOVI_CALLBACKS:
        return None
    path = reverse("kinovi-webhook", args=[generation.public_id, token])
    return f"{settings.SITE_URL}{path}"


def reprocess_delivery(delivery: WebhookDelivery) -> WebhookDelivery:
    """Judge a stored webhook delivery again (the admin's "process again"): same path as new."""
    from generations import webhooks

    return webhooks.judge(delivery)
