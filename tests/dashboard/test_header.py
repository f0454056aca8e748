"""The header's credits-used-this-month figure and its budget chip at 80% and 100%."""

import pytest
from django.urls import reverse

from generations.models import CreditEntry

pytestmark = pytest.mark.django_db


def _spent(make_generation, credits):
    g = make_generation(status="success", estimated_credits=credits)
    CreditEntry.objects.create(
        generation=g,
        workspace=g.workspace,
        user=g.creator,
        api_key=g.api_key,
        model=g.model,
        kind="reserve",
        credits=-credits,
        dollars_per_credit=g.dollars_per_credit,
    )


@pytest.mark.parametrize(
    ("spent", "chip"),
    [(100, None), (800, "80% of budget"), (1000, "Budget used up")],
)
def test_figure_and_chip(login_as, cast, team, make_generation, spent, chip):
    team.monthly_budget_credits = 1000
    team.save()
    _spent(make_generation, spent)
    html = login_as(cast["bob"], team).get(reverse("home")).content.decode()
    assert f'<span class="usage-number">{spent:,}</span> credits this month' in html
    assert "of 1,000" in html
    if chip:
        assert chip in html
    else:
        assert 'id="budget-chip"' not in html


def test_without_budget(login_as, cast, team, make_generation):
    _spent(make_generation, 340)
    html = login_as(cast["bob"], team).get(reverse("home")).content.decode()
    assert '<span class="usage-number">340</span> credits this month' in html
    assert 'id="budget-chip"' not in html


def test_not_for_anonymous(client):
    assert "credits this month" not in client.get(reverse("login")).content.decode()
