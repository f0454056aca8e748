"""Idempotency-Key on createTask: the same key and body answer the same task, charged once."""

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import requests
from django_q.models import Schedule

from api import sweep
from api.models import IdempotencyRecord
from generations.models import Generation
from tests.api.conftest import SEED_BODY

pytestmark = pytest.mark.django_db


@pytest.fixture
def bob_token(cast, make_token, team_key):
    return make_token(cast["bob"])


def _other_body():
    body = json.loads(json.dumps(SEED_BODY))
    body["inputs"]["duration"] = "8"
    return body


def test_same_key_and_body_answer_the_same_task(api, bob_token):
    first = api.create(bob_token, headers={"Idempotency-Key": "run-1"})
    again = api.create(bob_token, headers={"Idempotency-Key": "run-1"})

    assert first.status_code == again.status_code == 200
    assert first.json()["taskId"] == again.json()["taskId"]
    assert again["Idempotent-Replayed"] == "true" and not first.has_header("Idempotent-Replayed")
    assert Generation.objects.count() == 1
    assert api.create(bob_token, headers={"Idempotency-Key": "run-2"}).status_code == 200
    assert Generation.objects.count() == 2


def test_same_key_with_another_body_is_409(api, bob_token):
    assert api.create(bob_token, headers={"Idempotency-Key": "run-1"}).status_code == 200
    response = api.create(bob_token, _other_body(), headers={"Idempotency-Key": "run-1"})
    assert response.status_code == 409 and response.json()["code"] == 409
    assert Generation.objects.count() == 1


def test_keys_are_per_token(api, bob_token, cast, make_token):
    other = make_token(cast["adam"])
    a = api.create(bob_token, headers={"Idempotency-Key": "k"}).json()["taskId"]
    b = api.create(other, headers={"Idempotency-Key": "k"}).json()["taskId"]
    assert a != b and Generation.objects.count() == 2


def test_after_the_window_the_key_makes_a_new_task(api, bob_token, time_machine):
    first = api.create(bob_token, headers={"Idempotency-Key": "daily"}).json()["taskId"]
    time_machine.move_to(
        IdempotencyRecord.objects.get().created_at + timedelta(hours=24, seconds=1)
    )
    later = api.create(bob_token, headers={"Idempotency-Key": "daily"}).json()["taskId"]
    assert first != later and Generation.objects.count() == 2


def test_a_refused_create_keeps_nothing_so_a_retry_may_succeed(api, bob_token, team):
    team.monthly_budget_credits = 100
    team.save()
    refused = api.create(bob_token, headers={"Idempotency-Key": "again"})
    assert refused.status_code == 402 and not Generation.objects.exists()
    team.monthly_budget_credits = 1000
    team.save()
    # Even with a corrected body: nothing was made under the key yet.
    retried = api.create(bob_token, _other_body(), headers={"Idempotency-Key": "again"})
    assert retried.status_code == 200 and Generation.objects.get().duration == 8


@pytest.mark.parametrize("key", ["", "x" * 256, "line\nbreak"])
def test_a_bad_key_is_400(api, bob_token, key):
    response = api.client.post(
        "/api/v1/jobs/createTask",
        json.dumps(SEED_BODY),
        content_type="application/json",
        headers={"Authorization": f"Bearer {bob_token}", "Idempotency-Key": key},
    )
    assert response.status_code == 400 and not Generation.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_ten_concurrent_creates_with_one_key_make_one_generation(live_server, bob_token):
    def create(_):
        return requests.post(
            f"{live_server.url}/api/v1/jobs/createTask",
            json=SEED_BODY,
            headers={"Authorization": f"Bearer {bob_token}", "Idempotency-Key": "burst"},
            timeout=30,
        )

    with ThreadPoolExecutor(max_workers=10) as pool:
        responses = list(pool.map(create, range(10)))

    assert [r.status_code for r in responses] == [200] * 10, [r.text for r in responses]
    assert len({r.json()["taskId"] for r in responses}) == 1
    assert Generation.objects.count() == 1
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in responses) == 9


def test_the_minute_job_prunes_old_records_and_is_scheduled(api, bob_token, time_machine):
    api.create(bob_token, headers={"Idempotency-Key": "old"})
    time_machine.move_to(IdempotencyRecord.objects.get().created_at + timedelta(hours=23))
    api.create(bob_token, headers={"Idempotency-Key": "recent"})
    time_machine.move_to(IdempotencyRecord.objects.get(key="old").created_at + timedelta(hours=25))

    assert sweep.run()["idempotency_pruned"] == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["recent"]
    assert Schedule.objects.get(name="api sweep").func == "api.sweep.run"
