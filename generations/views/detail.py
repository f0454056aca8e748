"""One video: its page (player, problem in plain words, timeline, ledger) and what a member can
do with it (retry, re-check, cancel, hide), each offered and enforced by the same predicate."""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from accounts.access import switch_workspace, workspace_required
from generations import services
from generations.explain import explain_problem
from generations.models import CreditEntry, Status, StatusEvent
from generations.views.gallery import card_refresh, load

# Seconds between refreshes of a page whose video may change without anyone acting.
DOUBTFUL_REFRESH = 30


def _refresh(generation) -> int | None:
    """Seconds between refreshes of an unfinished detail page; None once nothing will change."""
    if generation.is_on_its_way:
        return card_refresh()
    if generation.is_doubtful:
        return DOUBTFUL_REFRESH
    return None


@require_GET
@workspace_required()
def detail(request, public_id):
    generation = load(request, public_id)
    events = list(StatusEvent.objects.filter(generation=generation).order_by("created_at", "id"))
    entries = list(
        CreditEntry.objects.filter(generation=generation)
        .select_related("user")
        .order_by("created_at", "id")
    )
    ledger_total = sum(e.credits for e in entries)
    field_errors = []
    if isinstance(generation.error_detail, dict):
        field_errors = [
            e for e in generation.error_detail.get("errors", []) or [] if isinstance(e, dict)
        ]
    # While Kinovi's answer is missing (unknown, stalled, a refused key) the reserve stays
    # held against the budget: the page says how much, since that is what waiting costs.
    held = -ledger_total if (generation.is_doubtful or generation.is_paused) else 0
    context = {
        "held_credits": max(held, 0),
        "held_dollars": max(held, 0) * generation.dollars_per_credit,
        "operator_url": _operator_url(request, generation),
        "g": generation,
        "events": events,
        "entries": entries,
        "ledger_total": ledger_total,
        "ledger_dollars": ledger_total * generation.dollars_per_credit,
        "problem": explain_problem(generation),
        "field_errors": field_errors,
        "membership": request.membership,
        "now": timezone.now(),
        "refresh": _refresh(generation),
        "actions": generation.actions_for(request.membership),
        "chain": generation.shot_chain(),
        "continued_by": list(generation.children.order_by("created_at")),
    }
    return render(request, "generations/detail.html", context)


def _operator_url(request, generation) -> str | None:
    """The admin's "resolve an unknown outcome" page, for an operator looking at one."""
    if generation.status != Status.UNKNOWN or not request.user.is_staff:
        return None
    return reverse("admin:generations_generation_resolve", args=[generation.pk])


def _act(request, public_id, action, done_message):
    generation = load(request, public_id, "can_generate")
    try:
        result = action(generation)
    except (services.ActionRefused, services.SubmissionRefused) as error:
        messages.error(request, str(error))
        return redirect("generation_detail", public_id=generation.public_id)
    messages.success(request, done_message)
    return result or redirect("generation_detail", public_id=generation.public_id)


@require_POST
@workspace_required()
def retry(request, public_id):
    def run(generation):
        new = services.retry(generation=generation, membership=request.membership)
        # The gallery shows the current workspace: make it the one the new video is in.
        switch_workspace(request, generation.workspace_id)
        return redirect(f"{reverse('home')}#g-{new.public_id}")

    return _act(request, public_id, run, "Queued again with the same parameters.")


@require_POST
@workspace_required()
def recheck(request, public_id):
    def run(generation):
        services.recheck(generation=generation, source=StatusEvent.Source.USER)

    return _act(request, public_id, run, "Asking Kinovi for this video's status now.")


@require_POST
@workspace_required()
def cancel(request, public_id):
    def run(generation):
        services.cancel(generation=generation, membership=request.membership)

    return _act(request, public_id, run, "Canceled before it was sent. Nothing was charged.")


@require_POST
@workspace_required()
def hide(request, public_id):
    def run(generation):
        services.hide(generation=generation, membership=request.membership)
        return redirect("home")

    return _act(request, public_id, run, "Hidden from the gallery.")


@require_POST
@workspace_required()
def unhide(request, public_id):
    def run(generation):
        services.unhide(generation=generation, membership=request.membership)

    return _act(request, public_id, run, "Shown in the gallery again.")
