"""A generation's whole life against the sandbox over HTTP, run by a real django-q2 cluster."""

import pytest
import requests

from generations.models import Status
from tests.lifecycle.conftest import history, ledger, statuses, submit, wait_for_status

pytestmark = [pytest.mark.cluster]


def test_polling_path_reaches_success(sandbox_server, q_cluster, team, bob_membership):
    key = sandbox_server.api_key(team)

    generation = submit(bob_membership, key)

    done = wait_for_status(generation, {Status.SUCCESS, Status.FAIL}, timeout=40)
    assert done.status == Status.SUCCESS, history(done)
    seen = statuses(done)
    assert seen[:4] == ["queued", "submitting", "waiting", seen[3]]
    assert seen[-1] == "success"
    assert set(seen[3:-1]) <= {"generating"}
    assert history(done)[-1][2] == "poll"
    assert done.task_id.startswith("task_")
    assert (done.width, done.height, done.credits_used) == (640, 360, 200)
    assert ledger(done) == {"reserve": -200}
    assert done.confirmed_at is not None and done.next_poll_at is None
    video = requests.get(done.video_url, timeout=10)
    assert video.status_code == 200
    assert video.headers["Content-Type"] == "video/mp4"
