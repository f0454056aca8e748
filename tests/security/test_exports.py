"""Exports opened in a spreadsheet: a cell made from user input never runs as a formula."""

import csv
import io

from django.utils import timezone

from accounts.models import Membership, Role
from generations.models import CreditEntry


def test_the_usage_csv_neutralises_formulas_in_member_addresses(world, make_user, login_as):
    # A valid e-mail address can start with "=", "+" or "-": a spreadsheet would evaluate it.
    team = world["team"]
    for address in ("=1+2@example.com", "+3-4@example.com", "-5+6@example.com"):
        user = make_user(address)
        Membership.objects.create(user=user, workspace=team, role=Role.MEMBER)
        generation = world["generation"].__class__.objects.create(
            workspace=team,
            creator=user,
            api_key=world["key"],
            prompt="x",
            estimated_credits=200,
            status="success",
        )
        CreditEntry.objects.create(
            generation=generation,
            workspace=team,
            user=user,
            api_key=world["key"],
            model=generation.model,
            kind=CreditEntry.Kind.RESERVE,
            credits=-200,
            dollars_per_credit=generation.dollars_per_credit,
            created_at=timezone.now(),
        )
    client = login_as(world["cast"]["alice"], team)

    response = client.get("/usage/csv/")

    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    members = [row[1] for row in rows[1:]]
    assert sorted(members) == ["'+3-4@example.com", "'-5+6@example.com", "'=1+2@example.com"]
    assert all(row[3].lstrip("-").isdigit() for row in rows[1:])  # numbers stay numbers
