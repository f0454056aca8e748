"""The shared cast (an owner, an admin, a member, a viewer of one team, and a stranger)."""

import pytest

from accounts.models import Membership, Role, Workspace
from accounts.services import create_user

PASSWORD = "correct horse battery staple 42"


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def _no_callbacks_unless_asked(settings):
    # The built-in sandbox turns callbacks on by default (it is the site itself); tests ask for
    # them explicitly (the `callbacks` fixture), so what a test's Kinovi sees never depends on it.
    settings.KINOVI_CALLBACKS = False


@pytest.fixture(autouse=True)
def _close_kinovi_session():
    # A kept-alive connection to the live-server sandbox pins a server thread and its database
    # connection, which then blocks dropping the test database at the end of the run.
    yield
    from generations.tracking import stop_poll_pool
    from kinovi import close_shared_session

    close_shared_session()
    stop_poll_pool()


@pytest.fixture
def make_user(db):
    def make(email: str, *, password: str = PASSWORD, **extra):
        return create_user(email=email, password=password, **extra)

    return make


@pytest.fixture
def team(db):
    return Workspace.objects.create(name="Acme Films")


@pytest.fixture
def cast(make_user, team):
    """Alice owns the team, Adam is its admin, Bob a member, Vera a viewer, Charlie a stranger."""
    people = {}
    for name, role in [
        ("alice", Role.OWNER),
        ("adam", Role.ADMIN),
        ("bob", Role.MEMBER),
        ("vera", Role.VIEWER),
    ]:
        user = make_user(f"{name}@example.com")
        Membership.objects.create(user=user, workspace=team, role=role)
        people[name] = user
    people["charlie"] = make_user("charlie@example.com")
    return people


@pytest.fixture
def login_as(client):
    def login(user, workspace=None):
        client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
        if workspace is not None:
            session = client.session
            session["workspace_id"] = workspace.pk
            session.save()
        return client

    return login


# The sandbox over real HTTP and a real django-q2 cluster (owned by the lifecycle area) ---------

# Tiny sandbox timings: a task waits WAIT then generates GENERATE seconds. The poll cadence is
# scaled so that a 5 s standard video (expected ~90 s for real) is polled on the same schedule,
# compressed into these seconds.
SANDBOX_WAIT_SECONDS = 0.5
SANDBOX_GENERATE_SECONDS = 1.5
POLL_TIME_SCALE = (SANDBOX_WAIT_SECONDS + SANDBOX_GENERATE_SECONDS) / 90


class SandboxServer:
    """The built-in sandbox served by pytest-django's live server (a real HTTP server)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.api_url = f"{url}/sandbox/api/v1"

    def create_secret(self, *, label: str = "tests", credits: int = 100_000, concurrency_limit=2):
        from sandbox.services import create_account

        return create_account(label=label, credits=credits, concurrency_limit=concurrency_limit)

    def api_key(self, workspace, *, label: str = "Sandbox", created_by=None, **account):
        """A verified default ApiKey of `workspace` holding a new sandbox account's key."""
        from accounts.models import ApiKey

        key = ApiKey(workspace=workspace, label=label, created_by=created_by, is_default=True)
        key.secret = self.create_secret(label=label, **account)
        key.status = ApiKey.Status.VERIFIED
        key.save()
        return key


@pytest.fixture
def sandbox_server(live_server, settings):
    """Points the project at the sandbox on the live server, with tiny timings, no callbacks.

    Set `settings.KINOVI_CALLBACKS = True` (before starting a cluster) to have callback URLs
    sent; the sandbox then posts webhooks to the live server.
    """
    settings.KINOVI_SANDBOX = True
    settings.SITE_URL = live_server.url
    settings.KINOVI_BASE_URL = f"{live_server.url}/sandbox/api/v1"
    settings.KINOVI_CALLBACKS = False
    settings.KINOVI_SANDBOX_WAIT_SECONDS = SANDBOX_WAIT_SECONDS
    settings.KINOVI_SANDBOX_GENERATE_SECONDS = SANDBOX_GENERATE_SECONDS
    settings.KINOVI_POLL_TIME_SCALE = POLL_TIME_SCALE
    settings.KINOVI_CONNECT_TIMEOUT = 2.0
    settings.KINOVI_READ_TIMEOUT = 5.0
    return SandboxServer(live_server.url)


def _cluster_env(settings, **overrides) -> dict:
    """The environment a `manage.py qcluster` subprocess needs to share this test's world."""
    import os

    from django.db import connection

    db = connection.settings_dict
    auth = db["USER"] or "postgres"
    if db.get("PASSWORD"):
        auth += f":{db['PASSWORD']}"
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": (
                f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
            ),
            "DEBUG": "true",
            "SECRET_KEY": settings.SECRET_KEY,
            "FIELD_ENCRYPTION_KEYS": ",".join(settings.FIELD_ENCRYPTION_KEYS),
            "SITE_URL": settings.SITE_URL,
            "KINOVI_SANDBOX": "true" if settings.KINOVI_SANDBOX else "false",
            "KINOVI_BASE_URL": settings.KINOVI_BASE_URL,
            "KINOVI_CALLBACKS": "on" if settings.KINOVI_CALLBACKS else "off",
            "KINOVI_SANDBOX_WAIT_SECONDS": str(settings.KINOVI_SANDBOX_WAIT_SECONDS),
            "KINOVI_SANDBOX_GENERATE_SECONDS": str(settings.KINOVI_SANDBOX_GENERATE_SECONDS),
            "KINOVI_POLL_TIME_SCALE": str(getattr(settings, "KINOVI_POLL_TIME_SCALE", 1.0)),
            "KINOVI_CONNECT_TIMEOUT": str(settings.KINOVI_CONNECT_TIMEOUT),
            "KINOVI_READ_TIMEOUT": str(settings.KINOVI_READ_TIMEOUT),
            # A short ticker loop, so stopping the cluster never waits long for it.
            "KINOVI_TICKER_SECONDS": "4",
            "Q_WORKERS": "3",
            # The broker must be the one this process enqueues to: same Redis and queue name,
            # or (by default) the ORM broker in the test database itself.
            "REDIS_URL": settings.REDIS_URL,
            "Q_CLUSTER_NAME": settings.Q_CLUSTER["name"],
            "LOG_LEVEL": "INFO",
        }
    )
    env.update({k: str(v) for k, v in overrides.items()})
    return env


@pytest.fixture
def start_q_cluster(sandbox_server, settings, tmp_path):
    """Starts a real `manage.py qcluster` on the test database; stopped at teardown.

    Call it after adjusting settings (e.g. KINOVI_CALLBACKS): the cluster gets them through its
    environment. Extra environment variables may be passed as keyword arguments. The ticker
    loop is kicked at once (in production the watchdog schedule starts it within a minute).
    """
    import contextlib
    import os
    import signal
    import subprocess
    import sys
    import time

    from django.conf import settings as django_settings

    started = []

    def start(**env_overrides):
        log_path = tmp_path / f"qcluster-{len(started)}.log"
        log = open(log_path, "wb")  # noqa: SIM115 - closed at teardown
        process = subprocess.Popen(
            [sys.executable, str(django_settings.BASE_DIR / "manage.py"), "qcluster"],
            env=_cluster_env(settings, **env_overrides),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        started.append((process, log, log_path))
        deadline = time.monotonic() + 30
        while b"running." not in log_path.read_bytes():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"qcluster did not start:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.1)
        from generations.queue import start_ticker

        start_ticker()
        process.log_path = log_path
        return process

    yield start

    for process, log, _ in started:
        if process.poll() is None:
            process.terminate()  # the cluster stops its workers on SIGTERM
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=20)
        # Whatever of this cluster's process group is left (a stuck worker) is killed.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        log.close()


@pytest.fixture
def q_cluster(start_q_cluster):
    """A running django-q2 cluster (with the ticker) against the sandbox, polling only."""
    return start_q_cluster()
