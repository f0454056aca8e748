"""django-q2 on Redis: a real `qcluster` with REDIS_URL runs a task enqueued by another process,
and /healthz reads that cluster's own status from Redis."""

import json
import subprocess
import time
import uuid

import pytest
import redis
from django_q.models import Success

from tests.ops.procs import (
    BASE_DIR,
    PYTHON,
    base_env,
    manage,
    procfile_command,
    running,
    shared_database_url,
)

REDIS_URL = "redis://127.0.0.1:6379/0"

PROBE = """
import django, json; django.setup()
from django.test import Client
from django.utils import timezone
from kinovi_site.health import _last_stat_from_redis
stamp = _last_stat_from_redis()
r = Client().get('/healthz')
print(json.dumps({
    "status": r.status_code,
    "body": r.json(),
    "stat_age": (timezone.now() - stamp).total_seconds() if stamp else None,
}))
"""


@pytest.fixture
def redis_env():
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.ConnectionError:
        pytest.skip("no Redis on 127.0.0.1:6379")
    # A cluster name of its own: other test runs may share this Redis.
    return base_env(
        DATABASE_URL=shared_database_url(),
        REDIS_URL=REDIS_URL,
        Q_CLUSTER_NAME=f"h6-{uuid.uuid4().hex[:10]}",
    )


@pytest.mark.cluster
def test_a_cluster_on_redis_runs_tasks_and_reports_to_healthz(
    transactional_db, redis_env, tmp_path
):
    log = tmp_path / "qcluster.log"
    # The Procfile's worker line, as a deployment runs it.
    with running(procfile_command("worker"), env=redis_env, log=log) as cluster:
        enqueued = manage(
            "shell",
            "-c",
            "from django_q.tasks import async_task; print(async_task('math.sqrt', 16))",
            env=redis_env,
        )
        assert enqueued.returncode == 0, enqueued.stderr
        task_id = enqueued.stdout.strip().splitlines()[-1]

        deadline = time.monotonic() + 30
        while not Success.objects.filter(id=task_id).exists():
            assert cluster.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, (
                f"no Success row in 30 s:\n{log.read_text()[-3000:]}"
            )
            time.sleep(0.2)

        assert Success.objects.get(id=task_id).result == 4.0

        probe = subprocess.run(
            [PYTHON, "-c", PROBE],
            cwd=BASE_DIR,
            env=redis_env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert probe.returncode == 0, probe.stderr[-2000:]
        seen = json.loads(probe.stdout.strip().splitlines()[-1])

    assert seen["status"] == 200, seen
    assert seen["body"]["checks"]["broker"]["kind"] == "redis"
    assert seen["body"]["checks"]["broker"]["queued"] == 0
    assert seen["body"]["checks"]["cluster"]["ok"] is True
    # The running cluster keeps its status in Redis (so it took its work from Redis too).
    assert seen["stat_age"] is not None and seen["stat_age"] < 10
