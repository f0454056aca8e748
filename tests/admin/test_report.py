"""The credit usage report: figures against a hand computation, reconciliation, CSV, queries."""

import csv
import io
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db.models import F
from django.urls import reverse

from generations import reports

from .conftest import CANARY_SECRET, MARCH, build_ledger

D = Decimal
# Hand computation from the table in conftest.py:
# (generations, reserved, capture corrections, refunded, net credits, net dollars)
BY_WORKSPACE = {
    "Acme Films": (4, 1544, -60, 544, 940, D("4.46")),
    "Zeta Studio": (3, 912, 0, 0, 912, D("4.56")),
}
BY_USER = {
    "alice@example.com": (2, 440, 0, 0, 440, D("1.96")),
    "bob@example.com": (2, 1104, -60, 544, 500, D("2.50")),
    "zoe@example.com": (3, 912, 0, 0, 912, D("4.56")),
}
BY_MODEL = {
    "seedance-20": (5, 1784, 0, 544, 1240, D("5.96")),
    "seedance2-fast": (2, 672, -60, 0, 612, D("3.06")),
}
BY_KEY_LABEL = {
    "Main": (2, 760, -60, 0, 700, D("3.50")),
    "Second": (2, 784, 0, 544, 240, D("0.96")),
    "Zeta key": (3, 912, 0, 0, 912, D("4.56")),
}
BY_DAY = {
    date(2026, 3, 2): (1, 200, 0, 0, 200, D("1.00")),
    date(2026, 3, 3): (1, 560, -60, 0, 500, D("2.50")),
    date(2026, 3, 5): (1, 544, 0, 0, 544, D("2.72")),
    date(2026, 3, 6): (0, 0, 0, 544, -544, D("-2.72")),
    date(2026, 3, 10): (1, 600, 0, 0, 600, D("3.00")),
    date(2026, 3, 12): (1, 112, 0, 0, 112, D("0.56")),
    date(2026, 3, 20): (1, 200, 0, 0, 200, D("1.00")),
    date(2026, 3, 31): (1, 240, 0, 0, 240, D("0.96")),
}
TOTAL = (7, 2456, -60, 544, 1852, D("9.02"))


def figures(row):
    return (
        row.generations,
        row.reserved,
        row.captured,
        row.refunded,
        row.net_credits,
        row.net_dollars,
    )


def model_label(model):
    from generations.models import Model

    return str(Model(model).label)


@pytest.mark.parametrize("source", reports.SOURCES)
def test_figures_equal_the_hand_computation(ledger, source):
    tables, total = reports.totals(MARCH, source=source)

    assert {r.label: figures(r) for r in tables["workspace"]} == BY_WORKSPACE
    assert {r.label: figures(r) for r in tables["user"]} == BY_USER
    assert {r.key: figures(r) for r in tables["model"]} == BY_MODEL
    assert {r.label.split(" (")[0]: figures(r) for r in tables["key"]} == BY_KEY_LABEL
    assert len(tables["day"]) == 31
    days = {r.key: figures(r) for r in tables["day"] if r.key in BY_DAY}
    assert days == BY_DAY
    assert all(figures(r) == (0, 0, 0, 0, 0, 0) for r in tables["day"] if r.key not in BY_DAY)
    assert figures(total) == TOTAL
    # Each grouping partitions the same rows: every table sums to the total.
    for name in reports.GROUPINGS:
        assert sum(r.net_credits for r in tables[name]) == 1852
        assert sum(r.net_dollars for r in tables[name]) == D("9.02")


@pytest.mark.parametrize("source", reports.SOURCES)
def test_the_period_boundaries_are_inclusive_days(ledger, source):
    one_day = reports.Period(date(2026, 3, 31), date(2026, 3, 31))
    _tables, total = reports.totals(one_day, source=source)
    assert figures(total) == (1, 240, 0, 0, 240, D("0.96"))  # not the April 1 capture

    april = reports.Period(date(2026, 4, 1), date(2026, 4, 30))
    _tables, total = reports.totals(april, source=source)
    assert figures(total) == (0, 0, 60, 0, 60, D("0.24"))


def test_the_default_source_on_postgresql_is_the_rollup(settings):
    assert reports.default_source() == "rollup"
    settings.TIME_ZONE = "Europe/Paris"
    assert reports.default_source() == "ledger"


def test_the_rollup_follows_updates_and_deletes_of_the_ledger(ledger):
    """The ledger is append-only, but the trigger keeps the rollup exact whatever happens."""
    from generations.models import CreditEntry, LedgerDay

    def rollup_net():
        return sum(LedgerDay.objects.values_list("net", flat=True))

    ledger_net = sum(CreditEntry.objects.values_list("credits", flat=True))
    assert rollup_net() == ledger_net == -1852 - 60 - 200
    CreditEntry.objects.filter(pk=ledger.r["r3"].pk).update(
        credits=100, created_at=F("created_at") + timedelta(days=1)
    )
    CreditEntry.objects.filter(pk=ledger.r["r8"].pk).delete()
    assert rollup_net() == ledger_net + 40 + 200
    for source in ("ledger", "orm"):
        assert figures(reports.totals(MARCH, source=source)[1]) == figures(
            reports.totals(MARCH, source="rollup")[1]
        )


def test_reconciliation_finds_each_planted_anomaly_and_nothing_else(ledger):
    lists, truncated = reports.reconciliation(MARCH)
    g, r = ledger.g, ledger.r

    def ids(name):
        return [line["id"] for line in lists[name]]

    assert ids("charged_differs") == [g["g2"].pk, g["g7"].pk]
    assert ids("failed_without_refund") == [g["g4"].pk]
    assert ids("unknown_or_stalled") == [g["g5"].pk, g["g6"].pk]
    assert [line["entry_id"] for line in lists["reserve_without_task"]] == [r["r7"].pk]
    assert truncated == dict.fromkeys(lists, False)
    # The ledger's own view of each: g2 reserve+capture = -500, g7's capture is in April
    # but the line shows the generation's whole ledger.
    assert [line["ledger_net"] for line in lists["charged_differs"]] == [-500, -300]


def test_reconciliation_is_empty_when_everything_adds_up(ledger):
    from generations.models import CreditEntry, Generation, Status

    g = ledger.g
    CreditEntry.objects.create(
        generation=g["g4"],
        workspace=g["g4"].workspace,
        user=g["g4"].creator,
        api_key=g["g4"].api_key,
        model=g["g4"].model,
        kind="refund",
        credits=600,
        dollars_per_credit=D("0.005"),
        created_at=g["g4"].created_at,
    )
    Generation.objects.filter(pk__in=[g["g2"].pk, g["g7"].pk]).update(
        estimated_credits=F("credits_used")
    )
    Generation.objects.filter(pk=g["g5"].pk).update(status=Status.SUCCESS, task_id="task_g5")
    Generation.objects.filter(pk=g["g6"].pk).update(status=Status.SUCCESS)

    lists, _ = reports.reconciliation(MARCH)
    assert lists == dict.fromkeys(reports.RECONCILIATION_TITLES, [])


def test_report_page_renders_the_figures(ledger, superuser, login_as):
    client = login_as(superuser)
    response = client.get(reverse("admin:generations_credit_report"), MARCH_QUERY)
    assert response.status_code == 200
    html = response.content.decode()
    assert "1852 credits" in html and "$9.02" in html
    for name in reports.ALL_TABLES:
        assert reverse("admin:generations_credit_report_csv", args=[name]) in html
    # The chart: one bar per day, the tallest (Mar 10, 600 credits) at full height.
    assert html.count('<rect class="bar"') == 31
    assert 'height="160"><title>2026-03-10: 600 credits' in html
    assert "Zeta Studio" in html and "zoe@example.com" in html
    assert CANARY_SECRET not in html


MARCH_QUERY = {"start": "2026-03-01", "end": "2026-03-31"}


def test_the_admin_index_links_to_the_report(superuser, login_as):
    response = login_as(superuser).get(reverse("admin:index"))
    assert reverse("admin:generations_credit_report") in response.content.decode()


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"start": "2026-13-01"}, "YYYY-MM-DD"),
        ({"start": "2026-03-10", "end": "2026-03-01"}, "before the start"),
        ({"start": "2024-01-01", "end": "2026-03-01"}, "at most 366 days"),
    ],
)
def test_bad_dates_are_explained(ledger, superuser, login_as, query, message):
    client = login_as(superuser)
    response = client.get(reverse("admin:generations_credit_report"), query)
    assert response.status_code == 400
    assert message in response.content.decode()
    csv_response = client.get(
        reverse("admin:generations_credit_report_csv", args=["workspace"]), query
    )
    assert csv_response.status_code == 400
    assert message in csv_response.content.decode()


def test_an_unknown_csv_table_is_a_clear_400(superuser, login_as):
    response = login_as(superuser).get(
        reverse("admin:generations_credit_report_csv", args=["secrets"])
    )
    assert response.status_code == 400
    assert "no such table" in response.content.decode()


def read_csv(client, table, query=MARCH_QUERY):
    response = client.get(reverse("admin:generations_credit_report_csv", args=[table]), query)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    return list(csv.DictReader(io.StringIO(response.content.decode())))


def csv_figures(line):
    return (
        int(line["generations"]),
        int(line["reserved"]),
        int(line["captured"]),
        int(line["refunded"]),
        int(line["net_credits"]),
        D(line["net_dollars"]),
    )


def test_csv_of_each_totals_table_parses_back_to_the_same_figures(ledger, superuser, login_as):
    client = login_as(superuser)
    assert {x["workspace"]: csv_figures(x) for x in read_csv(client, "workspace")} == BY_WORKSPACE
    assert {x["user"]: csv_figures(x) for x in read_csv(client, "user")} == BY_USER
    by_model = {x["model"]: csv_figures(x) for x in read_csv(client, "model")}
    assert by_model == {model_label(m): v for m, v in BY_MODEL.items()}
    by_key = {x["key"].split(" (")[0]: csv_figures(x) for x in read_csv(client, "key")}
    assert by_key == BY_KEY_LABEL
    days = read_csv(client, "day")
    assert len(days) == 31
    assert {
        date.fromisoformat(x["day"]): csv_figures(x)
        for x in days
        if date.fromisoformat(x["day"]) in BY_DAY
    } == BY_DAY


def test_csv_of_each_reconciliation_list_parses_back(ledger, superuser, login_as):
    client = login_as(superuser)
    g, r = ledger.g, ledger.r
    differs = read_csv(client, "charged_differs")
    assert [
        (int(x["id"]), int(x["estimated_credits"]), int(x["credits_used"])) for x in differs
    ] == [
        (g["g2"].pk, 560, 500),
        (g["g7"].pk, 240, 300),
    ]
    assert [int(x["id"]) for x in read_csv(client, "failed_without_refund")] == [g["g4"].pk]
    stuck = read_csv(client, "unknown_or_stalled")
    assert [(int(x["id"]), x["status"]) for x in stuck] == [
        (g["g5"].pk, "unknown"),
        (g["g6"].pk, "stalled"),
    ]
    reserves = read_csv(client, "reserve_without_task")
    assert [(int(x["entry_id"]), int(x["credits"])) for x in reserves] == [(r["r7"].pk, -112)]


def test_csv_cells_cannot_become_spreadsheet_formulas(ledger, superuser, login_as):
    ledger.zeta.name = '=HYPERLINK("http://evil")'
    ledger.zeta.save()
    lines = read_csv(login_as(superuser), "workspace")
    assert '\'=HYPERLINK("http://evil")' in [x["workspace"] for x in lines]


def test_the_report_runs_a_constant_number_of_queries(
    cast, team, make_user, django_assert_num_queries
):
    build_ledger(cast, team, make_user)
    # SAVEPOINT, SET LOCAL jit, one GROUPING SETS statement, three name lookups, four
    # reconciliation lists, RELEASE SAVEPOINT (the test runs inside a transaction).
    with django_assert_num_queries(11):
        reports.build_report(MARCH)
    # Twice the data (another set of workspaces, keys, generations): the same count.
    build_ledger(cast, team, make_user, suffix="-2")
    with django_assert_num_queries(11):
        report = reports.build_report(MARCH)
    assert report.total.net_credits == 2 * 1852


def test_the_report_page_query_count_does_not_grow_with_data(
    cast, team, make_user, superuser, client, django_assert_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(superuser, backend="django.contrib.auth.backends.ModelBackend")
    url = reverse("admin:generations_credit_report")
    build_ledger(cast, team, make_user)
    client.get(url, MARCH_QUERY)  # the first request of a session writes it
    with CaptureQueriesContext(connection) as small:
        assert client.get(url, MARCH_QUERY).status_code == 200
    build_ledger(cast, team, make_user, suffix="-2")
    with django_assert_num_queries(len(small.captured_queries)):
        assert client.get(url, MARCH_QUERY).status_code == 200


def test_long_reconciliation_lists_are_cut_on_the_page_but_not_in_the_csv(
    ledger, superuser, login_as
):
    client = login_as(superuser)
    lists, truncated = reports.reconciliation(MARCH, limit=1)
    assert len(lists["charged_differs"]) == 1 and truncated["charged_differs"]
    assert len(read_csv(client, "charged_differs")) == 2
