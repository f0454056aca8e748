"""The reads that pages share: a workspace's gallery (filters, keyset pages, news) and a month's
usage (totals, per member, per model, per day, the CSV rows). Views only render what these give.
"""

import datetime
from decimal import Decimal

from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from generations import budget
from generations.models import LEDGER_DOLLARS, UNFINISHED_STATUSES, Generation, Model

PAGE_SIZE = 24


# --- the gallery --------------------------------------------------------------------------------


def encode_cursor(generation) -> str:
    stamp = int(generation.created_at.timestamp() * 1_000_000)
    return f"{stamp}-{generation.pk}"


def decode_cursor(raw: str | None):
    if not raw:
        return None
    try:
        stamp, pk = raw.split("-", 1)
        moment = datetime.datetime.fromtimestamp(int(stamp) / 1_000_000, tz=datetime.UTC)
        return moment, int(pk)
    except (ValueError, OverflowError, OSError):
        return None


def gallery(workspace, filters: dict):
    """The workspace's visible generations, filtered as the gallery's form says."""
    status = filters.get("status")
    # Hidden videos show only under their own filter ("hidden"), never among the others.
    qs = Generation.objects.filter(workspace=workspace, hidden=status == "hidden")
    if status == "in_flight":
        qs = qs.filter(status__in=UNFINISHED_STATUSES)
    elif status and status != "hidden":
        qs = qs.filter(status=status)
    if filters.get("model"):
        qs = qs.filter(model=filters["model"])
    if filters.get("member"):
        qs = qs.filter(creator_id=filters["member"])
    zone = timezone.get_current_timezone()
    if filters.get("date_from"):
        start = datetime.datetime.combine(filters["date_from"], datetime.time.min, tzinfo=zone)
        qs = qs.filter(created_at__gte=start)
    if filters.get("date_to"):
        end = datetime.datetime.combine(
            filters["date_to"] + datetime.timedelta(days=1), datetime.time.min, tzinfo=zone
        )
        qs = qs.filter(created_at__lt=end)
    if filters.get("q"):
        qs = qs.filter(prompt__icontains=filters["q"])
    return qs


def _newer_than(qs, cursor):
    moment, pk = cursor
    return qs.filter(Q(created_at__gte=moment) & (Q(created_at__gt=moment) | Q(pk__gt=pk)))


def page(qs, *, before=None, after=None):
    """Keyset pagination on (created_at, id): each page costs one indexed LIMIT query,
    however many generations the workspace has, and no COUNT over the table.
    Returns (rows, has_newer, has_older)."""
    if after is not None:
        rows = list(_newer_than(qs, after).order_by("created_at", "id")[: PAGE_SIZE + 1])
        has_newer = len(rows) > PAGE_SIZE
        return list(reversed(rows[:PAGE_SIZE])), has_newer, True
    if before is not None:
        moment, pk = before
        qs = qs.filter(Q(created_at__lte=moment) & (Q(created_at__lt=moment) | Q(pk__lt=pk)))
    rows = list(qs.order_by("-created_at", "-id")[: PAGE_SIZE + 1])
    return rows[:PAGE_SIZE], before is not None, len(rows) > PAGE_SIZE


def count_newer(qs, cursor) -> int:
    """How many of `qs` are newer than the cursor, counted up to one more than a page."""
    return len(_newer_than(qs, cursor).values_list("pk", flat=True)[: PAGE_SIZE + 1])


# --- usage ----------------------------------------------------------------------------------


def _spent(rows):
    """Ledger sums are signed (spending negative); pages show spending as positive."""
    for row in rows:
        row["credits"] = -(row.pop("total") or 0)
        row["dollars"] = -(row.pop("money") or Decimal(0))
    return rows


def _grouped(ledger, *fields):
    return _spent(
        list(
            ledger.values(*fields)
            .annotate(
                total=Sum("credits"),
                money=Sum(LEDGER_DOLLARS),
                videos=Count("generation", distinct=True),
            )
            .order_by("total", *fields)
        )
    )


def _by_ledger_day(ledger):
    return ledger.annotate(day=TruncDate("created_at", tzinfo=timezone.get_default_timezone()))


def usage(workspace, month: datetime.date) -> dict:
    """A month's spending (budget.py's definition of a month): totals, per member, per model
    and per day (the day each ledger row was written)."""
    ledger = budget.month_ledger(workspace, month)
    totals = ledger.aggregate(total=Sum("credits"), money=Sum(LEDGER_DOLLARS))
    per_day = _spent(
        list(
            _by_ledger_day(ledger)
            .values("day")
            .annotate(total=Sum("credits"), money=Sum(LEDGER_DOLLARS))
            .order_by("day")
        )
    )
    per_model = _grouped(ledger, "model")
    labels = dict(Model.choices)
    for row in per_model:
        row["label"] = labels.get(row["model"], row["model"])
    return {
        "total_credits": -(totals["total"] or 0),
        "total_dollars": -(totals["money"] or Decimal(0)),
        "per_member": _grouped(ledger, "user_id", "user__email", "user__name"),
        "per_model": per_model,
        # The tier each video rendered at (a seed-era video is 720p, the seed's rate).
        "per_resolution": _grouped(ledger, "generation__output_resolution"),
        "chart": bar_chart({row["day"]: row for row in per_day}, month),
    }


def usage_rows(workspace, month: datetime.date):
    """The CSV's rows: per day, member and model."""
    return (
        _by_ledger_day(budget.month_ledger(workspace, month))
        .values("day", "user__email", "model")
        .annotate(total=Sum("credits"), money=Sum(LEDGER_DOLLARS))
        .order_by("day", "user__email", "model")
    )


def bar_chart(per_day: dict, month: datetime.date) -> dict:
    """Coordinates for a server-rendered SVG bar chart, one bar per day of the month."""
    _, _, days = budget.month_bounds(month)
    width, height, gap = 22, 160, 4
    top = max([v["credits"] for v in per_day.values()] + [0])
    bars = []
    for number in range(1, days + 1):
        day = month.replace(day=number)
        value = per_day.get(day, {"credits": 0, "dollars": Decimal(0)})
        h = round(height * max(value["credits"], 0) / top) if top else 0
        x = (number - 1) * (width + gap)
        bars.append(
            {
                "day": day,
                "credits": value["credits"],
                "dollars": value["dollars"],
                "x": x,
                "y": height - h,
                "h": h,
                "w": width,
                "label_x": x + width / 2,
            }
        )
    return {
        "bars": bars,
        "width": days * (width + gap),
        "height": height,
        "top": top,
        "axis_y": height + 14,
    }
