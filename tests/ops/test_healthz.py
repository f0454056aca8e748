"""/healthz: database, broker and cluster heartbeat; 200 when healthy, 503 otherwise."""

import json
import subprocess
from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.models import Task

from generations.models import Heartbeat
from tests.ops.procs import BASE_DIR, PYTHON, base_env, shared_database_url

# Runs /healthz in a fresh process whose settings point at a broken dependency.
PROBE = (
    "import django, json; django.setup();"
    "from django.test import Client;"
    "r = Client().get('/healthz');"
    "print(json.dumps({'status': r.status_code, 'body': r.json()}))"
)


def _finished_task(stopped):
    return Task.objects.create(
        id="t" * 32,
        name="tick",
        func="math.floor",
        started=stopped - timedelta(seconds=1),
        stopped=stopped,
        success=True,
    )


def test_it_is_healthy_with_a_recent_heartbeat(client, db, django_assert_max_num_queries):
    Heartbeat.objects.create(name=Heartbeat.TICKER, beat_at=timezone.now() - timedelta(seconds=5))

    # SELECT 1, the queue length, the heartbeat rows: the job table is not read.
    with django_assert_max_num_queries(3):
        response = client.get("/healthz")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert "no-cache" in response["Cache-Control"]
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["broker"] == {
        "ok": True,
        "kind": "orm",
        "queued": 0,
        "ms": body["checks"]["broker"]["ms"],
    }
    cluster = body["checks"]["cluster"]
    assert cluster["ok"] is True and cluster["source"] == "heartbeat"
    assert 4 <= cluster["heartbeat_age_s"] < 60


def test_a_finished_task_counts_as_a_heartbeat(client, db):
    _finished_task(timezone.now() - timedelta(seconds=30))

    body = client.get("/healthz").json()

    assert body["checks"]["cluster"]["ok"] is True
    assert body["checks"]["cluster"]["source"] == "task"


def test_a_stale_heartbeat_is_503(client, db, settings):
    settings.HEALTHZ_MAX_HEARTBEAT_AGE = 120
    Heartbeat.objects.create(name=Heartbeat.SWEEPER, beat_at=timezone.now() - timedelta(minutes=5))

    response = client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "fail"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["cluster"]["ok"] is False
    assert body["checks"]["cluster"]["heartbeat_age_s"] >= 300


def test_no_heartbeat_at_all_is_503(client, db):
    # A web process touching the bad-token counter is no sign that the cluster lives.
    Heartbeat.objects.create(name=Heartbeat.BAD_WEBHOOK_TOKEN, beat_at=timezone.now(), count=3)

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["checks"]["cluster"] == {
        "ok": False,
        "heartbeat_age_s": None,
        "max_age_s": 180,
        "source": None,
        "ms": response.json()["checks"]["cluster"]["ms"],
    }


def test_it_needs_no_login_and_answers_any_host(client, db):
    Heartbeat.objects.create(name=Heartbeat.TICKER, beat_at=timezone.now())

    response = client.get("/healthz", HTTP_HOST="10.20.30.40")

    assert response.status_code == 200


def test_queued_jobs_are_counted(client, db, settings):
    from django_q.tasks import async_task

    async_task("math.floor", 1.5)
    async_task("math.floor", 2.5)

    body = client.get("/healthz").json()

    assert body["checks"]["broker"]["queued"] == 2


def _probe(**env) -> dict:
    result = subprocess.run(
        [PYTHON, "-c", PROBE],
        cwd=BASE_DIR,
        env=base_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.django_db
def test_a_database_that_does_not_answer_is_503_without_its_address():
    # Nothing listens on port 1: a real connection failure, not a mock.
    url = "postgres://kinovi:s3cret-db-password@127.0.0.1:1/kinovi"

    seen = _probe(DATABASE_URL=url)

    assert seen["status"] == 503
    database = seen["body"]["checks"]["database"]
    assert database["ok"] is False and database["error"] == "OperationalError"
    text = json.dumps(seen["body"])
    assert "s3cret-db-password" not in text and "127.0.0.1" not in text


@pytest.mark.django_db
def test_a_redis_broker_that_does_not_answer_is_503_without_its_address():
    url = "redis://:s3cret-redis-password@127.0.0.1:1/0"

    seen = _probe(DATABASE_URL=shared_database_url(), REDIS_URL=url)

    assert seen["status"] == 503
    assert seen["body"]["checks"]["database"]["ok"] is True
    broker = seen["body"]["checks"]["broker"]
    assert broker["ok"] is False and broker["error"] == "ConnectionError"
    assert "s3cret-redis-password" not in json.dumps(seen["body"])
