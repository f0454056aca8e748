"""Ctrl-C stops a cluster within seconds even while the ticker loop runs (it used to wait for
the loop to run out its minute: django-q2 waits for every running job)."""

import os
import signal
import time

import pytest

from generations.models import Heartbeat
from tests.lifecycle.conftest import wait_for


@pytest.mark.cluster
def test_ctrl_c_stops_the_cluster_while_the_ticker_loops(start_q_cluster):
    cluster = start_q_cluster(KINOVI_TICKER_SECONDS="60")
    wait_for(
        lambda: Heartbeat.objects.filter(name=Heartbeat.TICKER).exclude(lease_owner="").exists(),
        timeout=20,
        what="the ticker loop",
    )
    time.sleep(1)  # well inside its 60 s

    started = time.monotonic()
    # A terminal's Ctrl-C: SIGINT to the whole foreground process group.
    os.killpg(cluster.pid, signal.SIGINT)
    cluster.wait(timeout=30)
    stopped_in = time.monotonic() - started

    assert stopped_in < 8, cluster.log_path.read_text()[-3000:]
    log = cluster.log_path.read_text()
    assert "has stopped" in log
    beat = Heartbeat.objects.get(name=Heartbeat.TICKER)
    assert beat.lease_owner == "" and beat.lease_until is None  # free for the next start
