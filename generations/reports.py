"""The operators' credit usage report: ledger totals and reconciliation in SQL aggregates, and CSV.

Figures come from the append-only ledger (`CreditEntry`), never from generations' own fields,
so the report shows what was recorded as spent. Spending is negative in the ledger; the report
shows it as positive "spent" figures. Every table is built with a constant number of queries
whatever the number of rows: one aggregate per grouping (one single GROUPING SETS scan on
PostgreSQL), one name lookup per kind of owner, one query per reconciliation list.
"""

import csv
import io
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import (
    Count,
    DecimalField,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from accounts.models import ApiKey, User, Workspace
from generations.models import LEDGER_DOLLARS, CreditEntry, Generation, Status

MAX_DAYS = 366
# Reconciliation lists are for reading; the CSV carries them in full.
LIST_LIMIT = 200

GROUPINGS = ("workspace", "user", "model", "key", "day")
TABLE_TITLES = {
    "workspace": "By workspace",
    "user": "By user",
    "model": "By model",
    "key": "By key",
    "day": "By day",
}
RECONCILIATION_TITLES = {
    "charged_differs": "Charged credits differ from the estimate",
    "failed_without_refund": "Failed generations without a refund row",
    "unknown_or_stalled": "Unknown and stalled generations",
    "reserve_without_task": "Reserve rows without a task id",
}
ALL_TABLES = (*GROUPINGS, *RECONCILIATION_TITLES)

_DOLLARS = DecimalField(max_digits=20, decimal_places=6)


def format_dollars(value: Decimal) -> str:
    """Exact dollars, at least to the cent: $1.5 → "$1.50", $0.0125 → "$0.0125"."""
    value = Decimal(value)
    if value == value.quantize(Decimal("0.01")):
        value = value.quantize(Decimal("0.01"))
    else:
        value = value.normalize()
    sign = "-" if value < 0 else ""
    return f"{sign}${abs(value):,f}"


class ReportError(Exception):
    """Bad report parameters, with a message fit to show the operator."""


@dataclass(frozen=True)
class Period:
    """Calendar days `start` to `end`, both included, in the site's time zone."""

    start: date
    end: date

    @property
    def since(self) -> datetime:
        return datetime.combine(self.start, time.min, tzinfo=timezone.get_default_timezone())

    @property
    def until(self) -> datetime:
        return datetime.combine(
            self.end + timedelta(days=1), time.min, tzinfo=timezone.get_default_timezone()
        )

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]


def this_month(today: date | None = None) -> Period:
    today = today or timezone.localdate()
    start = today.replace(day=1)
    next_month = (start + timedelta(days=32)).replace(day=1)
    return Period(start, next_month - timedelta(days=1))


def parse_period(params) -> Period:
    """A period from `start`/`end` query parameters (YYYY-MM-DD); the current month without."""
    default = this_month()
    raw_start = (params.get("start") or "").strip()
    raw_end = (params.get("end") or "").strip()
    try:
        start = date.fromisoformat(raw_start) if raw_start else default.start
        end = date.fromisoformat(raw_end) if raw_end else default.end
    except ValueError:
        raise ReportError("Dates must be written as YYYY-MM-DD, e.g. 2026-01-31.") from None
    if end < start:
        raise ReportError("The end date is before the start date.")
    if (end - start).days + 1 > MAX_DAYS:
        raise ReportError(f"Choose a period of at most {MAX_DAYS} days.")
    return Period(start, end)


@dataclass
class Row:
    """One line of a totals table. Credits spent are positive; refunds reduce `net_credits`."""

    key: object
    label: str
    generations: int = 0
    reserved: int = 0
    captured: int = 0
    refunded: int = 0
    net_credits: int = 0
    net_dollars: Decimal = Decimal("0")

    @property
    def dollars_text(self) -> str:
        return format_dollars(self.net_dollars)

    def add(self, other: "Row") -> None:
        self.generations += other.generations
        self.reserved += other.reserved
        self.captured += other.captured
        self.refunded += other.refunded
        self.net_credits += other.net_credits
        self.net_dollars += other.net_dollars


@dataclass
class Report:
    period: Period
    tables: dict[str, list[Row]]
    total: Row
    reconciliation: dict[str, list[dict]] = field(default_factory=dict)
    truncated: dict[str, bool] = field(default_factory=dict)

    @property
    def chart(self) -> dict:
        return day_chart(self.tables["day"])


# --- totals ---------------------------------------------------------------------------------


def _sums() -> dict:
    """Aggregates of one group, signed so that spending reads positive."""
    reserve, capture, refund = (
        Q(kind=CreditEntry.Kind.RESERVE),
        Q(kind=CreditEntry.Kind.CAPTURE),
        Q(kind=CreditEntry.Kind.REFUND),
    )
    zero = Value(0)
    return {
        "generations": Count("id", filter=reserve),
        "reserved": Coalesce(Sum("credits", filter=reserve), zero),
        "captured": Coalesce(Sum("credits", filter=capture), zero),
        "refunded": Coalesce(Sum("credits", filter=refund), zero),
        "net": Coalesce(Sum("credits"), zero),
        "dollars": Coalesce(
            Sum(LEDGER_DOLLARS),
            Value(Decimal("0")),
            output_field=_DOLLARS,
        ),
    }


def _row(key, generations, reserved, captured, refunded, net, dollars) -> Row:
    return Row(
        key=key,
        label="",
        generations=int(generations),
        reserved=-int(reserved),
        captured=-int(captured),
        refunded=int(refunded),
        net_credits=-int(net),
        net_dollars=-Decimal(dollars),
    )


_SUMS_SQL = """
       COUNT(*) FILTER (WHERE kind = 'reserve'),
       COALESCE(SUM(credits) FILTER (WHERE kind = 'reserve'), 0),
       COALESCE(SUM(credits) FILTER (WHERE kind = 'capture'), 0),
       COALESCE(SUM(credits) FILTER (WHERE kind = 'refund'), 0),
       COALESCE(SUM(credits), 0),
       COALESCE(SUM(credits * dollars_per_credit), 0)
"""
_ROLLUP_SUMS_SQL = """
       SUM(generations), SUM(reserved), SUM(captured), SUM(refunded), SUM(net), SUM(dollars)
"""
_GROUPING_SQL = """
SELECT GROUPING(workspace_id), GROUPING(user_id), GROUPING(model), GROUPING(api_key_id),
       workspace_id, user_id, model, api_key_id, day, {sums}
FROM ({rows}) AS ledger
GROUP BY GROUPING SETS ((workspace_id), (user_id), (model), (api_key_id), (day))
"""
_LEDGER_ROWS_SQL = """
    SELECT workspace_id, user_id, model, api_key_id, kind, credits, dollars_per_credit,
           (created_at AT TIME ZONE %s)::date AS day
    FROM generations_creditentry
    WHERE created_at >= %s AND created_at < %s
"""
_ROLLUP_ROWS_SQL = """
    SELECT * FROM generations_ledgerday WHERE day >= %s AND day <= %s
"""

SOURCES = ("rollup", "ledger", "orm")


def default_source() -> str:
    """The daily rollup (kept by a PostgreSQL trigger) holds UTC days; with another site time
    zone the ledger itself is grouped. Other databases get plain GROUP BY queries."""
    if connection.vendor != "postgresql":
        return "orm"
    return "rollup" if settings.TIME_ZONE == "UTC" else "ledger"


def _grouped_postgresql(period: Period, *, rollup: bool) -> dict[str, list[Row]]:
    """All five groupings in one statement (GROUPING SETS), from the rollup or the ledger."""
    if rollup:
        sql = _GROUPING_SQL.format(sums=_ROLLUP_SUMS_SQL, rows=_ROLLUP_ROWS_SQL)
        params = [period.start, period.end]
    else:
        sql = _GROUPING_SQL.format(sums=_SUMS_SQL, rows=_LEDGER_ROWS_SQL)
        params = [settings.TIME_ZONE, period.since, period.until]
    tables: dict[str, list[Row]] = {name: [] for name in GROUPINGS}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for gw, gu, gm, gk, workspace_id, user_id, model, key_id, day, *sums in cursor:
            if not gw:
                tables["workspace"].append(_row(workspace_id, *sums))
            elif not gu:
                tables["user"].append(_row(user_id, *sums))
            elif not gm:
                tables["model"].append(_row(model, *sums))
            elif not gk:
                tables["key"].append(_row(key_id, *sums))
            else:
                tables["day"].append(_row(day, *sums))
    return tables


def _grouped_orm(period: Period) -> dict[str, list[Row]]:
    """The same five groupings as five GROUP BY queries, for databases without GROUPING SETS."""
    ledger = CreditEntry.objects.filter(created_at__gte=period.since, created_at__lt=period.until)
    columns = {
        "workspace": "workspace_id",
        "user": "user_id",
        "model": "model",
        "key": "api_key_id",
        "day": TruncDate("created_at"),
    }
    tables = {}
    for name, column in columns.items():
        grouped = (
            ledger.values(group=F(column) if isinstance(column, str) else column)
            .order_by()
            .annotate(**_sums())
            .values_list("group", *_sums())
        )
        tables[name] = [_row(*values) for values in grouped]
    return tables


def grouped_totals(period: Period, *, source: str | None = None) -> dict[str, list[Row]]:
    source = source or default_source()
    if source == "orm":
        return _grouped_orm(period)
    return _grouped_postgresql(period, rollup=source == "rollup")


def _label_rows(tables: dict[str, list[Row]]) -> None:
    """Names for the ids, one query per kind of owner, and a stable order for every table."""
    workspace_names = dict(
        Workspace.objects.filter(pk__in=[r.key for r in tables["workspace"]]).values_list(
            "pk", "name"
        )
    )
    user_emails = dict(
        User.objects.filter(pk__in=[r.key for r in tables["user"]]).values_list("pk", "email")
    )
    key_labels = {
        pk: f"{label} (••••{last_four}) · {workspace}"
        for pk, label, last_four, workspace in ApiKey.objects.filter(
            pk__in=[r.key for r in tables["key"]]
        ).values_list("pk", "label", "last_four", "workspace__name")
    }
    model_names = dict(Generation._meta.get_field("model").choices)
    for row in tables["workspace"]:
        row.label = workspace_names.get(row.key, f"workspace {row.key}")
    for row in tables["user"]:
        row.label = user_emails.get(row.key, f"user {row.key}")
    for row in tables["key"]:
        row.label = key_labels.get(row.key, f"key {row.key}")
    for row in tables["model"]:
        row.label = str(model_names.get(row.key, row.key))
    for row in tables["day"]:
        row.label = row.key.isoformat()
    for name in ("workspace", "user", "model", "key"):
        tables[name].sort(key=lambda r: (-r.net_credits, r.label))
    tables["day"].sort(key=lambda r: r.key)


def day_chart(days: list[Row], *, height: int = 160, bar: int = 14, gap: int = 4) -> dict:
    """Geometry of a server-side SVG bar chart of net credits spent per day (no JavaScript)."""
    peak = max((r.net_credits for r in days), default=0)
    bars = []
    for position, row in enumerate(days):
        value = max(row.net_credits, 0)
        bar_height = round(value * height / peak) if peak else 0
        bars.append(
            {
                "x": position * (bar + gap),
                "y": height - bar_height,
                "width": bar,
                "height": bar_height,
                "label": row.label,
                "credits": row.net_credits,
                "dollars": row.net_dollars,
            }
        )
    return {"bars": bars, "width": max(len(days) * (bar + gap), 1), "height": height, "peak": peak}


def _fill_days(period: Period, rows: list[Row]) -> list[Row]:
    """Every day of the period, zeros included, so the chart's x axis is the calendar."""
    by_day = {r.key: r for r in rows}
    return [by_day.get(day) or Row(key=day, label=day.isoformat()) for day in period.days]


# --- reconciliation -------------------------------------------------------------------------


def _generations_in(period: Period):
    return Generation.objects.filter(
        created_at__gte=period.since, created_at__lt=period.until
    ).select_related("workspace", "creator")


def _generation_line(g: Generation, **extra) -> dict:
    return {
        "id": g.pk,
        "public_id": str(g.public_id),
        "workspace": g.workspace.name,
        "creator": g.creator.email,
        "model": g.model,
        "status": g.status,
        "task_id": g.task_id or "",
        "estimated_credits": g.estimated_credits,
        "credits_used": g.credits_used,
        "created_at": g.created_at,
        **extra,
    }


def reconciliation_querysets(period: Period, *, limit: int | None = None) -> dict:
    # A correlated subquery rather than a join + GROUP BY: PostgreSQL evaluates it after the
    # LIMIT, for the lines shown only.
    ledger_net = Coalesce(
        Subquery(
            CreditEntry.objects.filter(generation=OuterRef("pk"))
            .order_by()
            .values("generation")
            .annotate(net=Sum("credits"))
            .values("net")
        ),
        Value(0),
        output_field=IntegerField(),
    )
    refund = CreditEntry.objects.filter(generation=OuterRef("pk"), kind=CreditEntry.Kind.REFUND)
    failed_ids = (
        Generation.objects.filter(
            created_at__gte=period.since, created_at__lt=period.until, status=Status.FAIL
        )
        .filter(~Exists(refund))
        .order_by("created_at", "id")
        .values("pk")
    )
    return {
        "charged_differs": _generations_in(period)
        .filter(status=Status.SUCCESS, credits_used__isnull=False)
        .exclude(credits_used=F("estimated_credits"))
        .annotate(ledger_net=ledger_net)
        .order_by("created_at", "id"),
        # The ids first, alone: an index-only scan of the failed rows (gen_failed_ids) and one
        # index probe each for the refund; only the lines shown are then read in full.
        "failed_without_refund": _generations_in(period)
        .filter(pk__in=failed_ids[:limit] if limit is not None else failed_ids)
        .annotate(ledger_net=ledger_net)
        .order_by("created_at", "id"),
        "unknown_or_stalled": _generations_in(period)
        .filter(status__in=[Status.UNKNOWN, Status.STALLED])
        .annotate(ledger_net=ledger_net)
        .order_by("created_at", "id"),
        "reserve_without_task": CreditEntry.objects.filter(
            created_at__gte=period.since,
            created_at__lt=period.until,
            kind=CreditEntry.Kind.RESERVE,
        )
        .filter(Q(generation__task_id__isnull=True) | Q(generation__task_id=""))
        .select_related("generation", "workspace", "user")
        .order_by("created_at", "id"),
    }


def _reconciliation_line(name: str, obj) -> dict:
    if name == "reserve_without_task":
        return {
            "entry_id": obj.pk,
            "generation_id": obj.generation_id,
            "public_id": str(obj.generation.public_id),
            "workspace": obj.workspace.name,
            "user": obj.user.email,
            "model": obj.model,
            "status": obj.generation.status,
            "credits": obj.credits,
            "created_at": obj.created_at,
        }
    return _generation_line(obj, ledger_net=obj.ledger_net)


def reconciliation(period: Period, *, limit: int | None = LIST_LIMIT):
    """Each anomaly list (at most `limit` lines each) and whether it was cut short."""
    lists, truncated = {}, {}
    fetch = limit + 1 if limit is not None else None
    for name, queryset in reconciliation_querysets(period, limit=fetch).items():
        objs = list(queryset[: limit + 1] if limit is not None else queryset)
        truncated[name] = limit is not None and len(objs) > limit
        lists[name] = [_reconciliation_line(name, o) for o in objs[:limit]]
    return lists, truncated


# --- the report -----------------------------------------------------------------------------


def totals(period: Period, *, source: str | None = None) -> tuple[dict, Row]:
    tables = grouped_totals(period, source=source)
    _label_rows(tables)
    tables["day"] = _fill_days(period, tables["day"])
    # Every ledger row has exactly one workspace, so the workspace table sums to the total.
    total = Row(key=None, label="Total")
    for row in tables["workspace"]:
        total.add(row)
    return tables, total


@contextmanager
def without_jit():
    """PostgreSQL's JIT compiles these mid-sized aggregates for longer than they then run
    (measured in bench/report_bench.py); switch it off for the report's own transaction."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL jit = off")
        yield


def build_report(period: Period, *, source: str | None = None) -> Report:
    with without_jit():
        tables, total = totals(period, source=source)
        lists, truncated = reconciliation(period)
    return Report(
        period=period, tables=tables, total=total, reconciliation=lists, truncated=truncated
    )


# --- CSV ------------------------------------------------------------------------------------

TOTAL_COLUMNS = [
    "generations",
    "reserved",
    "captured",
    "refunded",
    "net_credits",
    "net_dollars",
]
RECONCILIATION_COLUMNS = {
    "reserve_without_task": [
        "entry_id",
        "generation_id",
        "public_id",
        "workspace",
        "user",
        "model",
        "status",
        "credits",
        "created_at",
    ],
}
_GENERATION_COLUMNS = [
    "id",
    "public_id",
    "workspace",
    "creator",
    "model",
    "status",
    "task_id",
    "estimated_credits",
    "credits_used",
    "ledger_net",
    "created_at",
]


def csv_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    text = str(value)
    # A cell starting with = + - @ is a formula to a spreadsheet; prompts and names are user input.
    if text[:1] in {"=", "+", "@", "\t", "\r"} or (text[:1] == "-" and not _is_number(text)):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        Decimal(text)
    except ArithmeticError:
        return False
    return True


def table_csv(period: Period, table: str) -> str:
    """One table of the report as CSV text (reconciliation lists in full, not cut short)."""
    if table not in ALL_TABLES:
        raise ReportError("There is no such table in the report.")
    out = io.StringIO()
    writer = csv.writer(out)
    with without_jit():
        _write_table(writer, period, table)
    return out.getvalue()


def _write_table(writer, period: Period, table: str) -> None:
    if table in GROUPINGS:
        tables, _total = totals(period)
        writer.writerow([table, *TOTAL_COLUMNS])
        for row in tables[table]:
            writer.writerow(
                [csv_cell(row.label)] + [csv_cell(getattr(row, c)) for c in TOTAL_COLUMNS]
            )
    else:
        columns = RECONCILIATION_COLUMNS.get(table, _GENERATION_COLUMNS)
        writer.writerow(columns)
        queryset = reconciliation_querysets(period)[table]
        for obj in queryset.iterator(chunk_size=2000):
            line = _reconciliation_line(table, obj)
            writer.writerow([csv_cell(line[c]) for c in columns])


def generations_csv(queryset) -> str:
    """Selected generations for the admin's export action."""
    columns = [
        "public_id",
        "workspace",
        "creator",
        "api_key",
        "model",
        "duration",
        "upscale_4k",
        "status",
        "task_id",
        "estimated_credits",
        "credits_used",
        "dollars_per_credit",
        "created_at",
        "completed_at",
        "prompt",
    ]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for g in queryset.select_related("workspace", "creator", "api_key").iterator(chunk_size=2000):
        writer.writerow(
            [
                csv_cell(v)
                for v in [
                    g.public_id,
                    g.workspace.name,
                    g.creator.email,
                    g.api_key.label,
                    g.model,
                    g.duration,
                    g.upscale_4k,
                    g.status,
                    g.task_id,
                    g.estimated_credits,
                    g.credits_used,
                    g.dollars_per_credit,
                    g.created_at,
                    g.completed_at,
                    g.prompt,
                ]
            ]
        )
    return out.getvalue()
