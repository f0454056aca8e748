"""Fixtures for the multi-cluster tests: the lifecycle area's cast and call counter, and a
Redis broker of this run's own (a database number and a cluster name nobody else uses)."""

import uuid

import pytest

from tests.lifecycle.conftest import (  # noqa: F401 - re-exported for this folder
    bob_membership,
    kinovi_calls,
    make_key,
)

# Other runs use Redis database 0 with names of their own; this one keeps to database 13.
REDIS_URL = "redis://127.0.0.1:6379/13"


@pytest.fixture
def redis_broker(settings, monkeypatch):
    """django-q2 on Redis for this test process and for the clusters it starts.

    The clusters read REDIS_URL and Q_CLUSTER_NAME from their environment (see
    `start_q_cluster`); this process's django-q2 configuration was read at import, so the same
    values are set on it directly, or its jobs would go to the ORM queue nobody reads.
    """
    import redis
    from django_q.conf import Conf

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.skip("no Redis on 127.0.0.1:6379")
    name = f"h8-{uuid.uuid4().hex[:10]}"
    settings.REDIS_URL = REDIS_URL
    settings.Q_CLUSTER = {
        **{k: v for k, v in settings.Q_CLUSTER.items() if k != "orm"},
        "name": name,
        "redis": REDIS_URL,
    }
    for attribute, value in [
        ("ORM", None),
        ("REDIS", REDIS_URL),
        ("PREFIX", name),
        ("CLUSTER_NAME", name),
    ]:
        monkeypatch.setattr(Conf, attribute, value)
    yield name
    keys = client.keys(f"django_q:{name}:*")
    if keys:
        client.delete(*keys)
    client.close()
