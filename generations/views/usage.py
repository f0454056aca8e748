"""The usage page: a month's credits and dollars per day, member and model, and its CSV."""

import csv
import datetime
from decimal import Decimal

from django.http import Http404, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts.access import workspace_required
from generations import budget, selectors
from generations.forms import MonthForm
from generations.reports import csv_cell


def _month(request):
    form = MonthForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        return form, budget.month_of()
    month = form.cleaned_data["month"] if form.is_bound else budget.month_of()
    return form, month


@require_GET
@workspace_required("can_see_usage")
def usage(request):
    form, month = _month(request)
    _, end, _ = budget.month_bounds(month)
    this_month = budget.month_of()
    context = {
        "form": form,
        "month": month,
        "previous": (month - datetime.timedelta(days=1)).replace(day=1),
        "following": end.date() if end.date() <= this_month else None,
        "budget": budget.status(workspace=request.workspace, membership=request.membership),
        "is_current_month": month == this_month,
        **selectors.usage(request.workspace, month),
    }
    return render(request, "generations/usage.html", context)


class _Echo:
    def write(self, value):
        return value


@require_GET
@workspace_required("can_see_usage")
def usage_csv(request):
    form, month = _month(request)
    if form.is_bound and form.errors:
        raise Http404("No such month.")
    rows = selectors.usage_rows(request.workspace, month)
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
