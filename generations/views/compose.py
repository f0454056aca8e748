"""Making videos: the new-video page, the batch page, and their live price previews."""

import json
import uuid
from decimal import Decimal

from django.conf import settings
from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET

import kinovi
from accounts.access import SESSION_KEY, get_for_member, switch_workspace, workspace_required
from generations import budget, inputs, pricing, services
from generations.forms import MODE_NOTES, MODEL_NOTES, BatchForm, GenerationForm
from generations.models import (
    DEFAULT_RESOLUTION,
    MAX_PROMPT_LENGTH,
    RESOLUTIONS_BY_MODEL,
    VIDEO_SETTINGS,
    Generation,
    Model,
)


def _model_rates() -> list[dict]:
    rates = []
    for value, label in Model.choices:
        tiers = pricing.tier_rates(value)
        default = tiers.get(DEFAULT_RESOLUTION)
        rates.append(
            {
                "value": value,
                "label": label,
                "note": MODEL_NOTES.get(value, ""),
                "per_second": default.credits_per_second if default else None,
                "tiers": [
                    {"resolution": r, "per_second": tiers[r].credits_per_second}
                    for r in RESOLUTIONS_BY_MODEL[value]
                    if r in tiers
                ],
            }
        )
    return rates


def _callback_placeholder() -> str | None:
    # The real link carries a fresh secret per video, made at submission; never shown here.
    if not settings.KINOVI_CALLBACKS:
        return None
    return f"{settings.SITE_URL}/hooks/kinovi/<video id>/<secret token>/"


def _price(chosen: dict, count: int, materials: inputs.Selection) -> dict:
    try:
        estimate = pricing.estimate(
            model=chosen["model"],
            duration=chosen["duration"],
            upscale_4k=chosen["upscale_4k"],
            output_resolution=chosen["output_resolution"],
            reference_video=materials.has_video,
        )
    except pricing.NoPrice as error:
        return {"price_error": str(error)}
    total = estimate.credits * count
    return {
        "estimate": estimate,
        "total_credits": total,
        "total_dollars": (total * estimate.dollars_per_credit).quantize(Decimal("0.01")),
    }


def _body_json(form, chosen: dict, materials: inputs.Selection) -> str | None:
    data = getattr(form, "cleaned_data", {})
    prompt = data.get("prompt") or ""
    if data.get("prompt_list"):
        prompt = data["prompt_list"][0]
    try:
        body = kinovi.build_create_body(
            prompt=prompt,
            callback_url=_callback_placeholder(),
            # The links are signed again when the video is sent; these are valid as shown.
            materials=inputs.urls(materials),
            dialect=settings.KINOVI_DIALECT,
            **chosen,
        )
    except (ValueError, kinovi.KinoviError):
        # An empty or too long prompt: the body cannot be built until it is fixed.
        return None
    return json.dumps(body, indent=2, ensure_ascii=False)


def _materials(request, form) -> tuple[inputs.Selection, str | None]:
    """The files the form attaches, and why they cannot go (None when they can)."""
    try:
        selection = inputs.parse(form.data, workspace_id=request.workspace.pk)
        mode = form.settings_or_defaults()["mode"]
        inputs.check(selection, mode=mode, workspace_id=request.workspace.pk)
    except inputs.MaterialsRefused as refused:
        return inputs.Selection(), str(refused)
    return selection, None


def _preview_context(request, form, *, count: int = 1) -> dict:
    """Price, budget left and the createTask body for whatever the form holds right now."""
    form.is_valid()  # fills cleaned_data for the fields that are valid
    chosen = form.settings_or_defaults()
    materials, materials_error = _materials(request, form)
    context: dict = {
        "form": form,
        "count": count,
        "chosen": chosen,
        "materials_error": materials_error,
        **_price(chosen, count, materials),
    }
    figures = budget.status(workspace=request.workspace, membership=request.membership)
    context["budget"] = figures
    # "available" is the tighter of the workspace budget and the member's own cap.
    if "total_credits" in context and figures.get("available") is not None:
        context["remaining_after"] = figures["available"] - context["total_credits"]
        context["over_by"] = -context["remaining_after"]
        if context["over_by"] > 0:
            # The very words the submission would be refused with: same limit, same numbers.
            context["refusal"] = budget.refusal_message(figures, context["total_credits"])
    context["body_json"] = _body_json(form, chosen, materials)
    context["unattached"] = inputs.unattached_names(
        form.data.get("prompt") or "", materials, mode=chosen["mode"]
    )
    return context


def _page_context(form) -> dict:
    return {
        "form": form,
        "model_rates": _model_rates(),
        "mode_notes": MODE_NOTES,
        "max_prompt": MAX_PROMPT_LENGTH,
    }


def _submit_form(request, form):
    data = form.cleaned_data
    try:
        materials = inputs.parse(request.POST, workspace_id=request.workspace.pk)
    except inputs.MaterialsRefused as refused:
        raise services.SubmissionRefused(str(refused)) from None
    return services.submit(
        membership=request.membership,
        api_key=data["api_key"],
        prompt=data["prompt"],
        **{name: data[name] for name in VIDEO_SETTINGS},
        parent=_parent_from(request),
        materials=materials,
    )


def _remix_form(request):
    """The form for a new video, pre-filled from ?remix=<video> when asked."""
    source = request.GET.get("remix")
    if not source:
        return GenerationForm(workspace=request.workspace), None
    try:
        source = uuid.UUID(source)
    except ValueError:
        raise Http404("No such video.") from None
    remix_of = get_for_member(
        request,
        Generation.objects.select_related("api_key", "workspace"),
        "can_generate",
        public_id=source,
    )
    if remix_of.workspace_id != request.session.get(SESSION_KEY):
        # A teammate's video from another workspace: remix it there, with its keys.
        switch_workspace(request, remix_of.workspace_id)
        messages.info(request, f"Now working in {remix_of.workspace.name}.")
    initial = GenerationForm.initial_from(remix_of)
    if request.GET.get("first_frame"):
        # "Continue this shot": the new video starts from the named frame.
        initial["mode"] = "keyframe"
    return GenerationForm(initial=initial, workspace=request.workspace), remix_of


@workspace_required("can_generate")
def new_video(request):
    remix_of = None
    if request.method == "POST":
        form = GenerationForm(request.POST, workspace=request.workspace)
        if form.is_valid():
            try:
                generation = _submit_form(request, form)
            except services.SubmissionRefused as error:
                form.add_error(None, str(error))
            else:
                messages.success(request, "Queued. Your video will appear below as it is made.")
                return redirect(f"{reverse('home')}#g-{generation.public_id}")
    else:
        form, remix_of = _remix_form(request)
    context = _page_context(form)
    context["remix_of"] = remix_of
    context["sandbox"] = settings.KINOVI_SANDBOX
    context.update(_preview_context(request, _bound_for_preview(form, request.GET)))
    context["form"] = form
    return render(request, "generations/new.html", context)


def _parent_from(request):
    """A remix records where it came from (only a generation the user can see)."""
    source = request.POST.get("remix_of")
    if not source:
        return None
    try:
        return Generation.objects.get(public_id=uuid.UUID(source), workspace=request.workspace)
    except (Generation.DoesNotExist, ValueError, TypeError):
        return None


def _bound_for_preview(form, query=None):
    """The live preview needs a bound form; on first load bind the initial values (and the
    materials a link names, e.g. "Continue this shot"'s first frame)."""
    if form.is_bound:
        return form
    data = {name: query[name] for name in ("first_frame", "last_frame") if query and name in query}

    for name, field in form.fields.items():
        value = form.initial.get(name, field.initial)
        if value is None or value is False:
            continue
        data[name] = value.pk if hasattr(value, "pk") else value
    return type(form)(data, workspace=form.workspace)


def _live_errors(form) -> dict:
    """Every field's errors (empty lists clear old ones), except "required" on an untouched
    prompt: nobody wants to be told off before typing."""
    errors = {}
    for name in form.fields:
        found = list(form.errors.get(name, []))
        if name in ("prompt", "prompts") and not (form.data.get(name) or "").strip():
            found = []
        errors[name] = found
    return errors


@require_GET
@workspace_required("can_generate")
def new_video_preview(request):
    form = GenerationForm(request.GET, workspace=request.workspace)
    context = _preview_context(request, form)
    context["live_errors"] = _live_errors(form)
    return render(request, "generations/_preview.html", context)


@workspace_required("can_generate")
def batch(request):
    if request.method == "POST":
        form = BatchForm(request.POST, workspace=request.workspace)
        if form.is_valid():
            data = form.cleaned_data
            try:
                created = services.submit_batch(
                    membership=request.membership,
                    api_key=data["api_key"],
                    prompts=data["prompt_list"],
                    **{name: data[name] for name in VIDEO_SETTINGS},
                )
            except services.SubmissionRefused as error:
                form.add_error(None, str(error))
            else:
                messages.success(
                    request,
                    f"Queued {len(created)} videos. They go to Kinovi as the key's "
                    "concurrency limit allows.",
                )
                return redirect("home")
    else:
        form = BatchForm(workspace=request.workspace)
    context = {"form": form, "model_rates": _model_rates(), "mode_notes": MODE_NOTES}
    context.update(_batch_preview(request, _bound_for_preview(form)))
    context["form"] = form
    context["batch"] = True
    return render(request, "generations/batch.html", context)


def _batch_preview(request, form) -> dict:
    form.is_valid()
    count = len(form.cleaned_data.get("prompt_list") or []) if hasattr(form, "cleaned_data") else 0
    context = _preview_context(request, form, count=max(count, 1))
    context["count"] = count
    if not count:
        context["total_credits"] = 0
        context["total_dollars"] = Decimal("0.00")
        context.pop("remaining_after", None)
    return context


@require_GET
@workspace_required("can_generate")
def batch_preview(request):
    form = BatchForm(request.GET, workspace=request.workspace)
    context = _batch_preview(request, form)
    context["live_errors"] = _live_errors(form)
    context["batch"] = True
    return render(request, "generations/_preview.html", context)
