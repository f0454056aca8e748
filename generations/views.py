"""Pages for making and watching generations: new video, batch, gallery, detail, usage."""

import calendar
import csv
import datetime
import json
import uuid
from decimal import Decimal

from django.conf import settings
from django.contrib import messages
from django.db.models import Count, DecimalField, ExpressionWrapper, F, Q, Sum
from django.db.models.functions import TruncDate
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from accounts.access import SESSION_KEY, get_for_member, switch_workspace, workspace_required
from generations import kinovi, pricing, services
from generations.explain import explain_problem
from generations.forms import (
    MODE_NOTES,
    MODEL_NOTES,
    BatchForm,
    GalleryFilterForm,
    GenerationForm,
    MonthForm,
    members_for_filter,
)
from generations.models import (
    IN_FLIGHT_STATUSES,
    MAX_PROMPT_LENGTH,
    CreditEntry,
    Generation,
    Model,
    Price,
    Status,
    StatusEvent,
)
from generations.reports import _csv_value as csv_cell

PAGE_SIZE = 24


def card_refresh() -> int:
    """Seconds between two looks of an in-flight card (3 by default; tests make it shorter)."""
    return getattr(settings, "DASHBOARD_CARD_REFRESH_SECONDS", 3)


# --- new video and batch ---------------------------------------------------------------------


def _model_rates() -> list[dict]:
    rates = []
    for value, label in Model.choices:
        price = Price.objects.current(value)
        rates.append(
            {
                "value": value,
                "label": label,
                "note": MODEL_NOTES.get(value, ""),
                "per_second": price.credits_per_second if price else None,
            }
        )
    return rates


def _callback_placeholder() -> str | None:
    # The real link carries a fresh secret per video, made at submission; never shown here.
    if not settings.KINOVI_CALLBACKS:
        return None
    return f"{settings.SITE_URL}/hooks/kinovi/<video id>/<secret token>/"


def _preview_context(request, form, *, count: int = 1) -> dict:
    """Price, budget left and the createTask body for whatever the form holds right now."""
    form.is_valid()  # fills cleaned_data for the fields that are valid
    chosen = form.settings_or_defaults()
    context: dict = {"form": form, "count": count, "chosen": chosen}
    try:
        estimate = pricing.estimate(
            model=chosen["model"], duration=chosen["duration"], upscale_4k=chosen["upscale_4k"]
        )
    except pricing.NoPrice as error:
        context["price_error"] = str(error)
        estimate = None
    if estimate is not None:
        total = estimate.credits * count
        context.update(
            estimate=estimate,
            total_credits=total,
            total_dollars=(total * estimate.dollars_per_credit).quantize(Decimal("0.01")),
        )
    budget = services.budget_status(workspace=request.workspace, membership=request.membership)
    context["budget"] = budget
    # "available" is the tighter of the workspace budget and the member's own cap.
    if estimate is not None and budget.get("available") is not None:
        context["remaining_after"] = budget["available"] - context["total_credits"]
        context["over_by"] = -context["remaining_after"]
    prompt = (form.cleaned_data.get("prompt") or "") if hasattr(form, "cleaned_data") else ""
    prompt_list = form.cleaned_data.get("prompt_list") if hasattr(form, "cleaned_data") else None
    if prompt_list:
        prompt = prompt_list[0]
    try:
        body = kinovi.build_create_body(
            prompt=prompt, callback_url=_callback_placeholder(), **chosen
        )
        context["body_json"] = json.dumps(body, indent=2, ensure_ascii=False)
    except (ValueError, kinovi.KinoviError):
        # An empty or too long prompt: the body cannot be built until it is fixed.
        context["body_json"] = None
    return context


def _page_context(request, form) -> dict:
    return {
        "form": form,
        "model_rates": _model_rates(),
        "mode_notes": MODE_NOTES,
        "max_prompt": MAX_PROMPT_LENGTH,
    }


@workspace_required("can_generate")
def new_video(request):
    remix_of = None
    if request.method == "POST":
        form = GenerationForm(request.POST, workspace=request.workspace)
        if form.is_valid():
            data = form.cleaned_data
            try:
                generation = services.submit(
                    membership=request.membership,
                    api_key=data["api_key"],
                    model=data["model"],
                    prompt=data["prompt"],
                    duration=data["duration"],
                    aspect_ratio=data["aspect_ratio"],
                    mode=data["mode"],
                    upscale_4k=data["upscale_4k"],
                    parent=_parent_from(request),
                )
            except services.SubmissionRefused as error:
                form.add_error(None, str(error))
            else:
                messages.success(request, "Queued. Your video will appear below as it is made.")
                return redirect(f"{reverse('home')}#g-{generation.public_id}")
    else:
        initial = {}
        source = request.GET.get("remix")
        if source:
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
            initial = GenerationForm.initial_from(remix_of)
            if remix_of.workspace_id != request.session.get(SESSION_KEY):
                # A teammate's video from another workspace: remix it there, with its keys.
                switch_workspace(request, remix_of.workspace_id)
                messages.info(request, f"Now working in {remix_of.workspace.name}.")
        form = GenerationForm(initial=initial, workspace=request.workspace)
    context = _page_context(request, form)
    context["remix_of"] = remix_of
    context["sandbox"] = settings.KINOVI_SANDBOX
    context.update(_preview_context(request, _bound_for_preview(form)))
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


def _bound_for_preview(form):
    """The live preview needs a bound form; on first load bind the initial values."""
    if form.is_bound:
        return form
    data = {}
    for name, field in form.fields.items():
        value = form.initial.get(name, field.initial)
        if value is None or value is False:
            continue
        data[name] = value.pk if hasattr(value, "pk") else value
    preview = type(form)(data, workspace=form.workspace)
    return preview


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
                    model=data["model"],
                    duration=data["duration"],
                    aspect_ratio=data["aspect_ratio"],
                    mode=data["mode"],
                    upscale_4k=data["upscale_4k"],
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
    preview_form = _bound_for_preview(form) if not form.is_bound else form
    context.update(_batch_preview(request, preview_form))
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


# --- gallery -------------------------------------------------------------------------------


def _encode_cursor(generation) -> str:
    stamp = int(generation.created_at.timestamp() * 1_000_000)
    return f"{stamp}-{generation.pk}"


def _decode_cursor(raw: str | None):
    if not raw:
        return None
    try:
        stamp, pk = raw.split("-", 1)
        moment = datetime.datetime.fromtimestamp(int(stamp) / 1_000_000, tz=datetime.UTC)
        return moment, int(pk)
    except (ValueError, OverflowError, OSError):
        return None


def _filtered_generations(workspace, filters: dict):
    qs = Generation.objects.filter(workspace=workspace, hidden=False)
    status = filters.get("status")
    if status == "in_flight":
        qs = qs.filter(status__in=[Status.QUEUED, *IN_FLIGHT_STATUSES])
    elif status:
        qs = qs.filter(status=status)
    if filters.get("model"):
        qs = qs.filter(model=filters["model"])
    if filters.get("member"):
        qs = qs.filter(creator_id=filters["member"])
    tz = timezone.get_current_timezone()
    if filters.get("date_from"):
        start = datetime.datetime.combine(filters["date_from"], datetime.time.min, tzinfo=tz)
        qs = qs.filter(created_at__gte=start)
    if filters.get("date_to"):
        end = datetime.datetime.combine(
            filters["date_to"] + datetime.timedelta(days=1), datetime.time.min, tzinfo=tz
        )
        qs = qs.filter(created_at__lt=end)
    if filters.get("q"):
        qs = qs.filter(prompt__icontains=filters["q"])
    return qs


def _page(qs, *, before=None, after=None):
    """Keyset pagination on (created_at, id): each page costs one indexed LIMIT query,
    however many generations the workspace has, and no COUNT over the table."""
    if after is not None:
        moment, pk = after
        rows = list(
            qs.filter(
                Q(created_at__gte=moment) & (Q(created_at__gt=moment) | Q(pk__gt=pk))
            ).order_by("created_at", "id")[: PAGE_SIZE + 1]
        )
        has_newer = len(rows) > PAGE_SIZE
        rows = list(reversed(rows[:PAGE_SIZE]))
        return rows, has_newer, True
    if before is not None:
        moment, pk = before
        qs = qs.filter(Q(created_at__lte=moment) & (Q(created_at__lt=moment) | Q(pk__lt=pk)))
    rows = list(qs.order_by("-created_at", "-id")[: PAGE_SIZE + 1])
    has_older = len(rows) > PAGE_SIZE
    return rows[:PAGE_SIZE], before is not None, has_older


@workspace_required()
def home(request):
    workspace = request.workspace
    memberships = list(members_for_filter(workspace))
    filter_form = GalleryFilterForm(request.GET or None, memberships=memberships)
    filters = {}
    if filter_form.is_bound:
        filter_form.is_valid()
        filters = {k: v for k, v in filter_form.cleaned_data.items() if v not in (None, "")}
    qs = _filtered_generations(workspace, filters).select_related("creator")
    before = _decode_cursor(request.GET.get("before"))
    after = None if before else _decode_cursor(request.GET.get("after"))
    rows, has_newer, has_older = _page(qs, before=before, after=after)

    base_query = request.GET.copy()
    for key in ("before", "after"):
        base_query.pop(key, None)
    newer_url = older_url = None
    if rows and has_newer:
        query = base_query.copy()
        query["after"] = _encode_cursor(rows[0])
        newer_url = f"?{query.urlencode()}"
    if rows and has_older:
        query = base_query.copy()
        query["before"] = _encode_cursor(rows[-1])
        older_url = f"?{query.urlencode()}"

    news_url = None
    if rows and before is None and after is None:
        # The first page asks now and then whether teammates made anything newer.
        query = base_query.copy()
        query["since"] = _encode_cursor(rows[0])
        news_url = f"{reverse('gallery_news')}?{query.urlencode()}"

    has_keys = None
    if not rows and not filters and before is None and after is None:
        has_keys = workspace.api_keys.filter(revoked_at__isnull=True).exists()
    context = {
        "generations": rows,
        "filter_form": filter_form,
        "filtered": bool(filters),
        "newer_url": newer_url,
        "older_url": older_url,
        "first_url": f"?{base_query.urlencode()}" if (before or after) else None,
        "has_keys": has_keys,
        "news_url": news_url,
        "news_refresh": NEWS_REFRESH_SECONDS,
        "now": timezone.now(),
        "sandbox": settings.KINOVI_SANDBOX,
        "card_refresh": card_refresh(),
    }
    return render(request, "generations/gallery.html", context)


NEWS_REFRESH_SECONDS = 15


@require_GET
@workspace_required()
def gallery_news(request):
    """How many videos newer than the first card exist (same filters): a "show them" link."""
    since = _decode_cursor(request.GET.get("since"))
    if since is None:
        raise Http404("No such page.")
    filter_form = GalleryFilterForm(
        request.GET, memberships=list(members_for_filter(request.workspace))
    )
    filter_form.is_valid()
    filters = {k: v for k, v in filter_form.cleaned_data.items() if v not in (None, "")}
    moment, pk = since
    newer = _filtered_generations(request.workspace, filters).filter(
        Q(created_at__gte=moment) & (Q(created_at__gt=moment) | Q(pk__gt=pk))
    )
    count = len(newer.values_list("pk", flat=True)[: PAGE_SIZE + 1])
    show = request.GET.copy()
    show.pop("since", None)
    context = {
        "count": min(count, PAGE_SIZE),
        "more": count > PAGE_SIZE,
        "poll_url": request.get_full_path(),
        "show_url": f"{reverse('home')}?{show.urlencode()}",
        "news_refresh": NEWS_REFRESH_SECONDS,
    }
    return render(request, "generations/_news.html", context)


def _load(request, public_id, permission=None):
    return get_for_member(
        request,
        Generation.objects.select_related("creator", "api_key", "parent"),
        permission,
        public_id=public_id,
    )


@require_GET
@workspace_required()
def card(request, public_id):
    generation = _load(request, public_id)
    return render(
        request,
        "includes/video_card.html",
        {
            "g": generation,
            "now": timezone.now(),
            "membership": request.membership,
            "card_refresh": card_refresh(),
        },
    )


# --- detail and actions --------------------------------------------------------------------


def _detail_refresh(generation) -> int | None:
    """Seconds between refreshes of an unfinished detail page; None once nothing will change."""
    if generation.status in {Status.QUEUED, Status.SUBMITTING, Status.WAITING, Status.GENERATING}:
        return card_refresh()
    if generation.status in {Status.UNKNOWN, Status.STALLED}:
        return 30
    return None


@require_GET
@workspace_required()
def detail(request, public_id):
    generation = _load(request, public_id)
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
    # Cancel and hide belong to the video's creator and the workspace's owners and admins.
    may_manage = generation.creator_id == request.user.pk or request.membership.can_manage_members
    context = {
        "g": generation,
        "events": events,
        "entries": entries,
        "ledger_total": ledger_total,
        "ledger_dollars": ledger_total * generation.dollars_per_credit,
        "problem": explain_problem(generation, events[-1] if events else None),
        "field_errors": field_errors,
        "membership": request.membership,
        "now": timezone.now(),
        "refresh": _detail_refresh(generation),
        "may_manage": may_manage,
        "may_hide": may_manage
        and not generation.hidden
        and generation.status not in {Status.SUBMITTING, Status.WAITING, Status.GENERATING},
    }
    return render(request, "generations/detail.html", context)


def _act(request, public_id, action, done_message):
    generation = _load(request, public_id, "can_generate")
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


# --- usage ---------------------------------------------------------------------------------

DOLLARS = ExpressionWrapper(
    F("credits") * F("dollars_per_credit"),
    output_field=DecimalField(max_digits=20, decimal_places=6),
)


def _month_bounds(month: datetime.date):
    tz = timezone.get_current_timezone()
    start = datetime.datetime.combine(month, datetime.time.min, tzinfo=tz)
    days = calendar.monthrange(month.year, month.month)[1]
    end = start + datetime.timedelta(days=days)
    return start, end, days


def _spent(rows):
    """Ledger sums are signed (spending negative); pages show spending as positive."""
    for row in rows:
        row["credits"] = -(row.pop("total") or 0)
        row["dollars"] = -(row.pop("money") or Decimal(0))
    return rows


def _usage_month(request):
    form = MonthForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        return form, timezone.localdate().replace(day=1)
    month = form.cleaned_data["month"] if form.is_bound else timezone.localdate().replace(day=1)
    return form, month


def _bar_chart(per_day: dict, month: datetime.date, days: int) -> dict:
    """Coordinates for a server-rendered SVG bar chart, one bar per day of the month."""
    width, height, gap = 22, 160, 4
    top = max([v["credits"] for v in per_day.values()] + [0])
    bars = []
    for number in range(1, days + 1):
        day = month.replace(day=number)
        value = per_day.get(day, {"credits": 0, "dollars": Decimal(0)})
        credits = max(value["credits"], 0)
        h = round(height * credits / top) if top else 0
        bars.append(
            {
                "day": day,
                "credits": value["credits"],
                "dollars": value["dollars"],
                "x": (number - 1) * (width + gap),
                "y": height - h,
                "h": h,
                "w": width,
                "label_x": (number - 1) * (width + gap) + width / 2,
            }
        )
    return {
        "bars": bars,
        "width": days * (width + gap),
        "height": height,
        "top": top,
        "axis_y": height + 14,
    }


@require_GET
@workspace_required("can_see_usage")
def usage(request):
    form, month = _usage_month(request)
    start, end, days = _month_bounds(month)
    ledger = CreditEntry.objects.filter(
        workspace=request.workspace, created_at__gte=start, created_at__lt=end
    )
    totals = ledger.aggregate(total=Sum("credits"), money=Sum(DOLLARS))
    total_credits = -(totals["total"] or 0)
    total_dollars = -(totals["money"] or Decimal(0))
    per_day_rows = _spent(
        list(
            ledger.annotate(day=TruncDate("created_at"))
            .values("day")
            .annotate(total=Sum("credits"), money=Sum(DOLLARS))
            .order_by("day")
        )
    )
    per_member = _spent(
        list(
            ledger.values("user_id", "user__email", "user__name")
            .annotate(
                total=Sum("credits"),
                money=Sum(DOLLARS),
                videos=Count("generation", distinct=True),
            )
            .order_by("total", "user__email")
        )
    )
    per_model = _spent(
        list(
            ledger.values("model")
            .annotate(
                total=Sum("credits"),
                money=Sum(DOLLARS),
                videos=Count("generation", distinct=True),
            )
            .order_by("total", "model")
        )
    )
    model_labels = dict(Model.choices)
    for row in per_model:
        row["label"] = model_labels.get(row["model"], row["model"])
    chart = _bar_chart({row["day"]: row for row in per_day_rows}, month, days)
    previous = (month - datetime.timedelta(days=1)).replace(day=1)
    following = end.date() if end.date() <= timezone.localdate() else None
    budget = services.budget_status(workspace=request.workspace, membership=request.membership)
    context = {
        "form": form,
        "month": month,
        "previous": previous,
        "following": following,
        "total_credits": total_credits,
        "total_dollars": total_dollars,
        "per_member": per_member,
        "per_model": per_model,
        "chart": chart,
        "budget": budget,
        "is_current_month": month == timezone.localdate().replace(day=1),
    }
    return render(request, "generations/usage.html", context)


class _Echo:
    def write(self, value):
        return value


@require_GET
@workspace_required("can_see_usage")
def usage_csv(request):
    form, month = _usage_month(request)
    if form.is_bound and form.errors:
        raise Http404("No such month.")
    start, end, _ = _month_bounds(month)
    rows = (
        CreditEntry.objects.filter(
            workspace=request.workspace, created_at__gte=start, created_at__lt=end
        )
        .annotate(day=TruncDate("created_at"))
        .values("day", "user__email", "model")
        .annotate(total=Sum("credits"), money=Sum(DOLLARS))
        .order_by("day", "user__email", "model")
    )
    writer = csv.writer(_Echo())

    def lines():
        yield writer.writerow(["date", "member", "model", "credits", "dollars"])
        for row in rows.iterator():
            yield writer.writerow(
                [
                    row["day"].isoformat(),
                    # An address may start with = + -: a spreadsheet would run it as a formula.
                    csv_cell(row["user__email"]),
                    row["model"],
                    -(row["total"] or 0),
                    f"{-(row['money'] or Decimal(0)):.2f}",
                ]
            )

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="usage-{month:%Y-%m}.csv"'
    return response
