"""The Procfile's web line serves requests side by side: gthread workers, WEB_THREADS each.

A slow client holds what serves it until it finishes its request. A sync worker is held
whole; a gthread worker loses one thread. So with one worker, a request still answering while
slow clients hold all but one thread shows threads are on; one stuck while they hold them all
shows their number is WEB_THREADS.
"""

import contextlib
import socket
from collections.abc import Iterator

import pytest
import requests
from django.utils import timezone

from generations.models import Heartbeat
from tests.ops.procs import (
    free_port,
    procfile_command,
    production_env,
    running,
    wait_for_http,
)

# Not the Procfile's default, so a line that ignored the variable would be seen.
THREADS = 3


@pytest.fixture
def web(transactional_db, tmp_path):
    """The Procfile's web line, one worker of THREADS threads, on the test database."""
    # A live cluster, as far as /healthz can tell: it answers 200, not 503.
    Heartbeat.objects.create(name=Heartbeat.TICKER, beat_at=timezone.now())
    port = free_port()
    env = production_env(
        PORT=str(port),
        WEB_CONCURRENCY="1",
        WEB_THREADS=str(THREADS),
        STATIC_ROOT=str(tmp_path / "static"),
    )
    log = tmp_path / "gunicorn.log"
    with running(procfile_command("web"), env=env, log=log) as proc:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", proc=proc, log=log)
        yield port, log


@contextlib.contextmanager
def slow_clients(port: int, count: int) -> Iterator[list[socket.socket]]:
    """`count` connections that sent a request line and a header, but never the end of the
    headers: the server reads on, so each holds whatever serves it until it is closed."""
    held: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            held.append(sock)
        yield held
    finally:
        for sock in held:
            sock.close()


def _healthz(port: int, timeout: float) -> requests.Response:
    # A fresh connection each time: a kept-alive one would skip the queue for threads.
    return requests.get(
        f"http://127.0.0.1:{port}/healthz", timeout=timeout, headers={"Connection": "close"}
    )


def test_it_answers_while_slow_clients_hold_all_threads_but_one(web):
    port, log = web

    with slow_clients(port, THREADS - 1):
        response = _healthz(port, timeout=15)

    assert response.status_code == 200, log.read_text()[-2000:]
    assert response.json()["checks"]["database"]["ok"] is True


def test_it_has_as_many_threads_as_web_threads(web):
    port, _log = web

    with slow_clients(port, THREADS) as held:
        # Every thread is held: the request waits for one.
        with pytest.raises(requests.Timeout):
            _healthz(port, timeout=2)

        held.pop().close()

        assert _healthz(port, timeout=15).status_code == 200
