"""Dashboard fixtures: the team's key and a quick way to make generations in any state."""

import itertools
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import ApiKey
from generations.models import Generation, StatusEvent

_counter = itertools.count(1)


@pytest.fixture
def team_key(cast, team):
    key = ApiKey(workspace=team, label="Team key", is_default=True, created_by=cast["alice"])
    key.secret = "sk_test_dashboard_key_7788"
    key.status = ApiKey.Status.VERIFIED
    key.save()
    return key


@pytest.fixture
def make_generation(team, cast, team_key):
    def make(*, workspace=None, creator=None, api_key=None, events=(), **fields):
        number = next(_counter)
        values = {
            "workspace": workspace or team,
            "creator": creator or cast["bob"],
            "api_key": api_key or team_key,
            "prompt": f"A lighthouse in a storm, take {number}",
            "estimated_credits": 200,
            "status": "queued",
        }
        values.update(fields)
        generation = Generation.objects.create(**values)
        for from_status, to_status, source in events:
            StatusEvent.objects.create(
                generation=generation, from_status=from_status, to_status=to_status, source=source
            )
        return generation

    return make


def bulk_generations(*, workspace, creators, api_key, count: int, start=None) -> None:
    """`count` generations in one statement, one a minute back from `start`, mixed states."""
    start = start or timezone.now()
    statuses = ["success", "success", "fail", "generating", "queued"]
    models = ["seedance-20", "seedance2-fast"]
    rows = [
        Generation(
            workspace=workspace,
            creator=creators[i % len(creators)],
            api_key=api_key,
            prompt=f"Bulk video number {i} of a quiet harbour",
            estimated_credits=200,
            status=statuses[i % len(statuses)],
            model=models[i % len(models)],
            created_at=start - timedelta(minutes=i),
        )
        for i in range(count)
    ]
    Generation.objects.bulk_create(rows, batch_size=2000)
