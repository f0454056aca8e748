"""Requests per token and minute, shared by every process: in the database, or in Redis."""

import os
import subprocess
import sys
import uuid
from datetime import timedelta

import pytest
import redis
from django.conf import settings as django_settings
from django.db import connection
from django.utils import timezone

from api.models import ApiToken, RateWindow

pytestmark = pytest.mark.django_db
REDIS = "redis://127.0.0.1:6379/0"


@pytest.fixture
def limit_3(settings):
    settings.API_RATE_LIMIT_PER_MINUTE = 3


@pytest.fixture
def redis_cache(settings):
    """The "api" cache on the local Redis, under a prefix of its own for this test."""
    prefix = f"test-{uuid.uuid4().hex}"
    settings.CACHES = {
        **settings.CACHES,
        "api": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS,
            "KEY_PREFIX": prefix,
        },
    }
    return prefix


def _exhaust(api, token, n=3):
    return [api.jobs(token).status_code for _ in range(n)]


def _assert_limited(response):
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    body = response.json()
    assert body["code"] == 429 and body["limit"] == 3 and body["current"] == 4


def test_the_database_counts_when_there_is_no_redis(api, cast, make_token, limit_3, team_key):
    bob, adam = make_token(cast["bob"]), make_token(cast["adam"])
    assert _exhaust(api, bob) == [200, 200, 200]

    _assert_limited(api.jobs(bob))
    assert api.jobs(adam).status_code == 200  # per token
    assert RateWindow.objects.get(token__user=cast["bob"]).count == 4


def test_a_new_window_starts_afresh_and_clears_the_old(
    api, cast, make_token, limit_3, team_key, time_machine
):
    token = make_token(cast["bob"])
    _exhaust(api, token, 4)
    time_machine.move_to(timezone.now() + timedelta(seconds=61))
    assert api.jobs(token).status_code == 200
    assert list(RateWindow.objects.values_list("count", flat=True)) == [1]


def test_redis_counts_when_configured(api, cast, make_token, limit_3, redis_cache, team_key):
    token = make_token(cast["bob"])
    assert _exhaust(api, token) == [200, 200, 200]
    _assert_limited(api.jobs(token))
    assert not RateWindow.objects.exists()
    keys = redis.Redis.from_url(REDIS).keys(f"{redis_cache}:*")
    assert len(keys) == 1


def _hit_from_another_process(token_id: int, env: dict, prefix: str | None = None) -> int:
    """ratelimit.hit() in a fresh Python process configured from its environment."""
    keep_prefix = (
        f"from django.conf import settings; settings.CACHES['api']['KEY_PREFIX'] = {prefix!r}; "
        if prefix
        else ""
    )
    script = (
        f"import django; django.setup(); {keep_prefix}from api import ratelimit; "
        f"print(ratelimit.hit({token_id}).count)"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "kinovi_site.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=django_settings.BASE_DIR,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return int(result.stdout.strip().splitlines()[-1])


def test_another_process_shares_the_redis_count(
    api, cast, make_token, limit_3, redis_cache, team_key
):
    token = make_token(cast["bob"])
    token_id = ApiToken.objects.get().pk
    env = {"REDIS_URL": REDIS, "DATABASE_URL": "sqlite:///:memory:"}
    assert _exhaust(api, token, 2) == [200, 200]
    assert _hit_from_another_process(token_id, env, prefix=redis_cache) == 3
    _assert_limited(api.jobs(token))


@pytest.mark.django_db(transaction=True)
def test_another_process_shares_the_database_count(api, cast, make_token, limit_3, team_key):
    token = make_token(cast["bob"])
    token_id = ApiToken.objects.get().pk
    db = connection.settings_dict
    env = {
        "REDIS_URL": "",
        "DATABASE_URL": (
            f"postgres://{db['USER'] or 'postgres'}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
        ),
    }
    if connection.vendor != "postgresql":
        pytest.skip("needs a database another process can open")
    assert _exhaust(api, token, 2) == [200, 200]
    assert _hit_from_another_process(token_id, env) == 3
    _assert_limited(api.jobs(token))
