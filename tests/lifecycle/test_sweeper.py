"""A worker killed mid-submit: the sweeper resolves the row without resubmitting it blindly."""

import os
import signal
import socket
import threading
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from generations import slots, tasks, ticker
from generations.models import Generation, Heartbeat, Status
from tests.lifecycle.conftest import history, ledger, submit, wait_for

pytestmark = [pytest.mark.cluster]


class BlackHole:
    """A server that accepts connections and never answers: createTask hangs on it."""

    def __init__(self) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(8)
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}/api/v1"
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            self.connections.append(connection)

    def close(self) -> None:
        for connection in self.connections:
            connection.close()
        self.socket.close()


@pytest.fixture
def black_hole():
    hole = BlackHole()
    yield hole
    hole.close()


def test_a_worker_killed_mid_submit_leaves_unknown_not_a_second_task(
    sandbox_server, start_q_cluster, settings, black_hole, team, bob_membership, make_key
):
    settings.KINOVI_BASE_URL = black_hole.url
    settings.KINOVI_READ_TIMEOUT = 60.0
    cluster = start_q_cluster()
    generation = submit(bob_membership, make_key(team))

    wait_for(
        lambda: (
            Generation.objects.get(pk=generation.pk).status == Status.SUBMITTING
            and black_hole.connections
        ),
        timeout=30,
        what="the cluster to be inside createTask",
    )
    os.killpg(cluster.pid, signal.SIGKILL)  # the worker dies with the request in the air
    cluster.wait(timeout=10)

    # A live worker might still be waiting for the answer: too early to decide anything.
    assert tasks.sweep()["unknown"] == []
    later = timezone.now() + ticker.submitting_timeout() + timedelta(seconds=1)
    with time_machine.travel(later, tick=False):
        assert tasks.sweep()["unknown"] == [generation.pk]
        beat = Heartbeat.objects.get(name=Heartbeat.SWEEPER)
        assert beat.beat_at == later

    generation.refresh_from_db()
    assert history(generation) == [
        ("", "queued", "submit"),
        ("queued", "submitting", "submit"),
        ("submitting", "unknown", "sweeper"),
    ]
    assert ledger(generation) == {"reserve": -200}  # it may have been charged
    assert slots.dispatch() == []
    assert len(black_hole.connections) == 1
