"""What people and operators do with generations: submit, batch, retry, cancel, re-check, hide,
and resolve an unknown outcome.

Each operation is a keyword-only function that refuses a bad request with `SubmissionRefused`
or `ActionRefused` carrying a message fit to show the user, and changes nothing when it does.
Who may do what is decided by the Generation's predicates (models.py), which the pages read
too; the budget by budget.py.
"""

import uuid

from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone

import kinovi
from accounts.models import ApiKey, Membership, Workspace
from generations import budget, deliveries, inputs, lifecycle, locks, pricing, queue, vendor
from generations.models import (
    DEFAULT_RESOLUTION,
    MAX_DURATION,
    MAX_PROMPT_LENGTH,
    MIN_DURATION,
    POLLABLE_STATUSES,
    RESOLUTIONS_BY_MODEL,
    VIEWER_REFUSAL,
    AspectRatio,
    Generation,
    Mode,
    Model,
    Status,
    StatusEvent,
    WebhookDelivery,
)

# `retry` is also this module's action (retry a video): the helper is imported by name.
from generations.retry import is_contention, retried

# The most videos one batch may queue (the batch form and the API read it too).
MAX_BATCH = 20


class SubmissionRefused(Exception):
    """A submission that was not accepted; `message` says why, for the user. A refusal by the
    budget also carries what the submission needed and what was left (`over_budget`)."""

    def __init__(self, message: str, *, over_budget: budget.OverBudget | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.over_budget = over_budget


class ActionRefused(Exception):
    """An action on a generation that is not possible now; `message` says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- submitting -------------------------------------------------------------------------------


def _check_key(api_key: ApiKey | None, workspace_id: int) -> ApiKey:
    if api_key is None:
        raise SubmissionRefused("Add a Kinovi API key to this workspace first (Keys page).")
    if api_key.workspace_id != workspace_id:
        raise SubmissionRefused("That API key belongs to another workspace.")
    if not api_key.is_usable:
        raise SubmissionRefused(api_key.unusable_reason)
    return api_key


def _clean_params(*, model, duration, aspect_ratio, mode, upscale_4k, output_resolution) -> dict:
    if model not in Model.values:
        raise SubmissionRefused("Choose a model: Seedance 2.0 standard or fast.")
    if output_resolution not in RESOLUTIONS_BY_MODEL[model]:
        raise SubmissionRefused(
            f"{Model(model).label} renders at {' or '.join(RESOLUTIONS_BY_MODEL[model])}; "
            f"choose one of those."
        )
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
    if upscale_4k and settings.KINOVI_DIALECT == "models" and output_resolution != "1080p":
        # That form's "4k" is a native 4K output, priced as 1080p plus the 4K add-on.
        raise SubmissionRefused("This Kinovi account renders 4K natively: choose 1080p with 4K.")
    return {
        "model": model,
        "duration": duration,
        "aspect_ratio": aspect_ratio,
        "mode": mode,
        "upscale_4k": upscale_4k,
        "output_resolution": output_resolution,
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


def submit(*, prompt: str, **kwargs) -> Generation:
    """Save one generation as queued (budget checked and held) and enqueue its submission.

    Takes the keyword arguments of `submit_batch`, with one `prompt` instead of `prompts`.
    """
    return submit_batch(prompts=[prompt], **kwargs)[0]


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
    output_resolution: str = DEFAULT_RESOLUTION,
    parent: Generation | None = None,
    batch_id: uuid.UUID | None = None,
    materials: inputs.Selection | None = None,
) -> list[Generation]:
    """Queue one generation per prompt, all or nothing: the budget must cover the total.

    `materials` is what an input provider (inputs.py) made of the form's attachments; it is
    checked against the mode and attached to every generation in the same transaction."""
    if not membership.can_generate:
        raise SubmissionRefused(VIEWER_REFUSAL)
    _check_key(api_key, membership.workspace_id)
    params = _clean_params(
        model=model,
        duration=duration,
        aspect_ratio=aspect_ratio,
        mode=mode,
        upscale_4k=upscale_4k,
        output_resolution=output_resolution,
    )
    prompts = _clean_prompts(prompts)
    if parent is not None and parent.workspace_id != membership.workspace_id:
        raise SubmissionRefused("That video belongs to another workspace.")
    materials = materials or inputs.Selection()
    try:
        inputs.check(materials, mode=params["mode"], workspace_id=membership.workspace_id)
        estimate = pricing.estimate(
            model=params["model"],
            duration=params["duration"],
            upscale_4k=params["upscale_4k"],
            output_resolution=params["output_resolution"],
            reference_video=materials.has_video,
        )
    except (pricing.NoPrice, inputs.MaterialsRefused) as exc:
        raise SubmissionRefused(f"{exc} Nothing was sent.") from None
    if len(prompts) > 1 and batch_id is None:
        batch_id = uuid.uuid4()
    rows = {"api_key": api_key, "parent": parent, "batch_id": batch_id, **params}
    try:
        return _queue(membership, estimate, prompts, rows, materials)
    except DatabaseError as exc:
        if not is_contention(exc):
            raise
        raise SubmissionRefused(BUSY) from None


# What a person hears when even the retries met a deadlock (retry.py): nothing was saved.
BUSY = "The studio is very busy right now and nothing was saved: try again in a moment."


@retried
def _queue(
    membership: Membership, estimate, prompts: list[str], rows: dict, materials
) -> list[Generation]:
    with transaction.atomic():
        # The workspace row lock serializes every submission of the workspace (and so of each
        # member), so "check the budget, then add the rows" cannot interleave. Then the key's
        # share lock, which the new rows' foreign-key check would otherwise take late, at
        # COMMIT (docs/LOCKS.md).
        workspace = Workspace.objects.select_for_update(no_key=True).get(pk=membership.workspace_id)
        if not locks.share_key(rows["api_key"].pk):
            raise SubmissionRefused("That API key no longer exists.")
        try:
            budget.check(
                workspace=workspace, membership=membership, cost=estimate.credits * len(prompts)
            )
        except budget.OverBudget as refused:
            raise SubmissionRefused(refused.message, over_budget=refused) from None
        now = timezone.now()
        generations = Generation.objects.bulk_create(
            [
                Generation(
                    workspace=workspace,
                    creator_id=membership.user_id,
                    prompt=prompt,
                    status=Status.QUEUED,
                    estimated_credits=estimate.credits,
                    dollars_per_credit=estimate.dollars_per_credit,
                    created_at=now,
                    next_poll_at=now,
                    **rows,
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
        if materials:
            inputs.attach(generations, materials)
        for generation in generations:
            queue.after_commit(queue.SUBMIT, generation.pk)
    return generations


# --- actions on one generation ----------------------------------------------------------------


def _refuse(refusal: str | None) -> None:
    if refusal is not None:
        raise ActionRefused(refusal)


def retry(*, generation: Generation, membership: Membership) -> Generation:
    """A new generation with the same parameters (parent set), on the same key if usable."""
    _refuse(generation.retry_refusal(membership))
    key = generation.api_key
    if not key.is_usable:
        key = (
            ApiKey.objects.usable()
            .filter(workspace_id=membership.workspace_id, is_default=True)
            .first()
        ) or key
    try:
        return submit(
            membership=membership,
            api_key=key,
            prompt=generation.prompt,
            **generation.video_settings(),
            parent=generation,
            materials=inputs.attached(generation),
        )
    except SubmissionRefused as exc:
        raise ActionRefused(exc.message) from None


def cancel(*, generation: Generation, membership: Membership) -> Generation:
    """Cancel a generation that has not been sent to Kinovi yet."""
    _refuse(generation.cancel_refusal(membership))
    outcome = lifecycle.apply_status(
        generation_id=generation.pk,
        status=Status.CANCELED,
        expect=Status.QUEUED,
        source=StatusEvent.Source.USER,
        detail=f"canceled by {membership.user}",
    )
    if not outcome.changed:
        # Sent meanwhile: the predicate now says so.
        outcome.generation.refresh_from_db()
        _refuse(outcome.generation.cancel_refusal(membership))
    return outcome.generation


def recheck(*, generation: Generation, source: str = StatusEvent.Source.OPERATOR) -> Generation:
    """Ask Kinovi about the task now (stalled, or any in-flight generation with a task id)."""
    if source not in StatusEvent.Source.values:
        raise ValueError(f"unknown source {source!r}")
    _refuse(generation.recheck_refusal())
    Generation.objects.filter(pk=generation.pk, status__in=POLLABLE_STATUSES).update(
        next_poll_at=timezone.now()
    )
    transaction.on_commit(lambda: queue.poll(generation.pk, source))
    return generation


def hide(*, generation: Generation, membership: Membership) -> Generation:
    """Hide a finished generation from the gallery (its ledger rows stay)."""
    _refuse(generation.hide_refusal(membership))
    Generation.objects.filter(pk=generation.pk).update(hidden=True)
    generation.hidden = True
    return generation


def unhide(*, generation: Generation, membership: Membership) -> Generation:
    """Show a hidden generation in the gallery again."""
    _refuse(generation.unhide_refusal(membership))
    Generation.objects.filter(pk=generation.pk).update(hidden=False)
    generation.hidden = False
    return generation


def resolve_unknown(*, generation: Generation, task_id: str | None) -> Generation:
    """An operator's answer for a generation whose createTask outcome is unknown.

    With the task id (from Kinovi's dashboard), recordInfo confirms it belongs to this key and
    its state is applied. Without one, the operator states Kinovi never created the task: it
    ends rejected and the reserve is refunded.
    """
    if generation.status != Status.UNKNOWN:
        raise ActionRefused("Only a video whose outcome is unknown can be resolved this way.")
    if not task_id or not task_id.strip():
        return _resolve_as_never_created(generation)
    task_id = task_id.strip()
    if Generation.objects.filter(task_id=task_id).exclude(pk=generation.pk).exists():
        raise ActionRefused("That task id already belongs to another video.")
    try:
        info = vendor.ask(generation, task_id)
    except (kinovi.NotFound, kinovi.AccessNotEnabled, kinovi.InvalidRequest):
        raise ActionRefused(f"Kinovi knows no task {task_id} for this video's key.") from None
    except kinovi.KinoviError as exc:
        raise ActionRefused(f"Kinovi could not be asked right now: {exc.message}") from None
    outcome = lifecycle.apply_info(
        generation_id=generation.pk,
        info=info,
        source=StatusEvent.Source.OPERATOR,
        detail=f"An operator gave the task id {task_id}; Kinovi says {info.status}.",
        task_id=task_id,
    )
    if not outcome.changed:
        raise ActionRefused(f"Nothing was changed: {outcome.refused}.")
    return outcome.generation


def _resolve_as_never_created(generation: Generation) -> Generation:
    outcome = lifecycle.apply_status(
        generation_id=generation.pk,
        status=Status.REJECTED,
        expect=Status.UNKNOWN,
        source=StatusEvent.Source.OPERATOR,
        detail="An operator found no such task at Kinovi: nothing was charged.",
        error_code=vendor.UNKNOWN,
        error_message="Kinovi never created this video; nothing was charged.",
    )
    if not outcome.changed:
        raise ActionRefused("It was resolved meanwhile; nothing was changed.")
    return outcome.generation


def reprocess_delivery(delivery: WebhookDelivery) -> WebhookDelivery:
    """Judge a stored webhook delivery again (the admin's "process again"): same path as new."""
    return deliveries.judge(delivery)
