"""Helpers for tests that run the project as real processes (manage.py, gunicorn, qcluster)."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
from cryptography.fernet import Fernet
from django.conf import settings
from django.db import connection

BASE_DIR = Path(settings.BASE_DIR)
PYTHON = sys.executable
# Long and random-looking enough for `check --deploy` (50+ characters, many unique).
PROD_SECRET_KEY = "prod-test-" + "k7Qw9Zr2Lx5Vb8Nm3Hp6Tj4Fd1Gs0Ya" * 2

# Our own variables are dropped from the parent environment so a developer's shell or .env
# cannot change what a subprocess test sees.
_OURS = {
    "DEBUG",
    "SECRET_KEY",
    "FIELD_ENCRYPTION_KEYS",
    "ALLOWED_HOSTS",
    "SITE_URL",
    "DATABASE_URL",
    "REDIS_URL",
    "LOG_FORMAT",
    "KINOVI_SANDBOX",
    "KINOVI_BASE_URL",
    "STATIC_ROOT",
    "Q_CLUSTER_NAME",
    # The browser tests set it for Playwright in this process; a deployment never has it.
    "DJANGO_ALLOW_ASYNC_UNSAFE",
}


def shared_database_url() -> str:
    """The URL of the database this pytest run uses, for subprocesses to share it."""
    s = connection.settings_dict
    user = s.get("USER") or "postgres"
    host = s.get("HOST") or "127.0.0.1"
    port = s.get("PORT") or 5432
    return f"postgres://{user}@{host}:{port}/{s['NAME']}"


def base_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _OURS}
    env["DJANGO_SETTINGS_MODULE"] = "kinovi_site.settings"
    env["PYTHONUNBUFFERED"] = "1"
    # The Procfile names bare commands (gunicorn, python): find ours first.
    env["PATH"] = f"{Path(PYTHON).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(overrides)
    return env


def production_env(**overrides: str) -> dict[str, str]:
    """What a production deployment sets, as in .ci/run."""
    values = {
        "DEBUG": "false",
        "SECRET_KEY": PROD_SECRET_KEY,
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "ALLOWED_HOSTS": "studio.example.com",
        "SITE_URL": "https://studio.example.com",
        "DATABASE_URL": shared_database_url(),
    }
    values.update(overrides)
    return base_env(**values)


def manage(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PYTHON, "manage.py", *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def procfile_command(kind: str) -> str:
    for line in (BASE_DIR / "Procfile").read_text().splitlines():
        name, sep, command = line.partition(":")
        if sep and name.strip() == kind:
            return command.strip()
    raise AssertionError(f"Procfile has no {kind} process")


@contextmanager
def running(
    command: list[str] | str, *, env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen]:
    """Start a process (a shell line when given a string), stop it and its children after."""
    with log.open("w") as out:
        proc = subprocess.Popen(
            command,
            cwd=BASE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            shell=isinstance(command, str),
            start_new_session=True,
        )
        try:
            yield proc
        finally:
            stop_group(proc)


def stop_group(proc: subprocess.Popen, *, grace: float = 10) -> None:
    """Stop a process started in its own session and everything it started.

    Waiting for the leader alone is not enough: the Procfile's worker runs under `sh -c`, and
    a qcluster left behind by a dead shell kept polling the test database for hours.
    """
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        proc.poll()  # reap the leader, so only live members keep the group alive
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


def wait_for_http(url: str, *, proc: subprocess.Popen, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"process exited early:\n{log.read_text()[-3000:]}")
        try:
            requests.get(url, timeout=2, allow_redirects=False)
            return
        except (requests.ConnectionError, requests.Timeout):  # not up yet, or a busy machine
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout}s:\n{log.read_text()[-3000:]}")
