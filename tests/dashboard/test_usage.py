"""Usage: credits and dollars per day, member and model for a month, budget, CSV; owners/admins."""

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.urls import reverse

from generations.models import CreditEntry

USAGE_QUERIES = 14  # one more since the split by resolution

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)


def _spend(generation, *, kind="reserve", credits=-200, at):
    return CreditEntry.objects.create(
        generation=generation,
        workspace=generation.workspace,
        user=generation.creator,
        api_key=generation.api_key,
        model=generation.model,
        kind=kind,
        credits=credits,
        dollars_per_credit=Decimal("0.005"),
        created_at=at,
    )


@pytest.fixture
def march(cast, team, make_generation):
    """Bob: two standard videos (one refunded); Alice: one fast; one in February."""
    with time_machine.travel(NOW, tick=False):
        b1 = make_generation(creator=cast["bob"], status="success", created_at=NOW)
        b2 = make_generation(creator=cast["bob"], status="fail", created_at=NOW)
        a1 = make_generation(
            creator=cast["alice"],
            status="success",
            model="seedance2-fast",
            estimated_credits=140,
            created_at=NOW,
        )
        old = make_generation(
            creator=cast["bob"], status="success", created_at=NOW - timedelta(days=30)
        )
    _spend(b1, at=datetime(2026, 3, 2, 9, tzinfo=UTC))
    _spend(b2, at=datetime(2026, 3, 2, 10, tzinfo=UTC))
    _spend(b2, kind="refund", credits=200, at=datetime(2026, 3, 2, 11, tzinfo=UTC))
    _spend(a1, credits=-140, at=datetime(2026, 3, 15, 9, tzinfo=UTC))
    _spend(old, credits=-400, at=datetime(2026, 2, 18, 9, tzinfo=UTC))


def test_it_works(login_as, cast, team, march):
    team.monthly_budget_credits = 1000
    team.save()
    with time_machine.travel(NOW, tick=False):
        response = login_as(cast["alice"], team).get(reverse("usage"))
    assert response.status_code == 200
    ctx = response.context
    assert ctx["total_credits"] == 340 and ctx["total_dollars"] == Decimal("1.7")
    assert {r["user__email"]: r["credits"] for r in ctx["per_member"]} == {
        "bob@example.com": 200,
        "alice@example.com": 140,
    }
    assert {r["model"]: r["credits"] for r in ctx["per_model"]} == {
        "seedance-20": 200,
        "seedance2-fast": 140,
    }
    bars = {b["day"].day: b["credits"] for b in ctx["chart"]["bars"]}
    assert len(bars) == 31 and bars[2] == 200 and bars[15] == 140 and bars[3] == 0
    html = response.content.decode()
    assert "<svg" in html and "<rect" in html and "Mar 2: 200 credits ($1.00)" in html
    assert "340 credits" in html and "$1.70" in html
    assert "34% used" in html  # the budget: 340 of 1000 (this month's generations)
    assert reverse("workspace_budget") in html  # owners can go and change it


def test_it_splits_by_resolution(login_as, cast, team, march):
    from generations.models import Generation

    Generation.objects.filter(model="seedance2-fast").update(output_resolution="480p")
    with time_machine.travel(NOW, tick=False):
        response = login_as(cast["alice"], team).get(reverse("usage"))
    rows = response.context["per_resolution"]
    assert {r["generation__output_resolution"]: r["credits"] for r in rows} == {
        "720p": 200,
        "480p": 140,
    }
    assert 'id="per-resolution"' in response.content.decode()


def test_another_month(login_as, cast, team, march):
    with time_machine.travel(NOW, tick=False):
        response = login_as(cast["alice"], team).get(reverse("usage"), {"month": "2026-02"})
    assert response.context["total_credits"] == 400
    assert "February 2026" in response.content.decode()


@pytest.mark.parametrize("month", ["2026-13", "march", "1800-01", "2026-3-1"])
def test_bad_month_is_explained(login_as, cast, team, march, month):
    response = login_as(cast["alice"], team).get(reverse("usage"), {"month": month})
    assert response.status_code == 200
    assert "Showing this month instead" in response.content.decode()
    assert (
        login_as(cast["alice"], team).get(reverse("usage_csv"), {"month": month}).status_code == 404
    )


def test_it_checks_access(client, login_as, cast, team, march):
    for name in ("usage", "usage_csv"):
        assert client.get(reverse(name)).status_code == 302
    for name in ("usage", "usage_csv"):
        url = reverse(name)
        for who in ("bob", "vera"):
            response = login_as(cast[who], team).get(url)
            assert response.status_code == 403
            assert "Only owners and admins" in response.content.decode()
        assert login_as(cast["adam"], team).get(url).status_code == 200
    # A stranger's usage page shows their own (empty) workspace, never the team's.
    with time_machine.travel(NOW, tick=False):
        response = login_as(cast["charlie"], team).get(reverse("usage"))
    assert response.context["total_credits"] == 0


def test_csv(login_as, cast, team, march):
    response = login_as(cast["alice"], team).get(reverse("usage_csv"), {"month": "2026-03"})
    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="usage-2026-03.csv"' in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows == [
        ["date", "member", "model", "credits", "dollars"],
        ["2026-03-02", "bob@example.com", "seedance-20", "200", "1.00"],
        ["2026-03-15", "alice@example.com", "seedance2-fast", "140", "0.70"],
    ]


def test_query_count_is_constant(
    login_as, cast, team, make_generation, django_assert_max_num_queries
):
    client = login_as(cast["alice"], team)
    with time_machine.travel(NOW, tick=False):
        with django_assert_max_num_queries(USAGE_QUERIES):
            assert client.get(reverse("usage")).status_code == 200
        for day in range(1, 29):
            g = make_generation(status="success", created_at=NOW)
            _spend(g, at=datetime(2026, 3, day, 9, tzinfo=UTC))
        with django_assert_max_num_queries(USAGE_QUERIES):
            response = client.get(reverse("usage"))
    assert response.context["total_credits"] == 28 * 200
