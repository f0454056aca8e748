"""/healthz for load balancers and monitors: database, django-q2 broker, cluster heartbeat age.

Cheap (a handful of tiny queries), anonymous, and free of secrets: failures are reported by
exception class only, because driver messages can carry connection strings.
"""

import json
import time
from datetime import datetime
from typing import Any

import redis
from django.conf import settings
from django.db import connections
from django.db.models import Max
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django_q.models import OrmQ, Task
from django_q.signing import BadSignature, SignedPackage

from generations.models import Heartbeat

HEALTH_PATH = "/healthz"

_redis_clients: dict[str, redis.Redis] = {}


def _redis(url: str) -> redis.Redis:
    # One pooled client per URL: a probe every few seconds must not open a connection each time.
    client = _redis_clients.get(url)
    if client is None:
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        _redis_clients[url] = client
    return client


def _timed(check) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        result = check()
    except Exception as exc:  # any failure is a finding, reported without its message
        result = {"ok": False, "error": type(exc).__name__}
    result["ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result


def _orm_alias() -> str:
    return settings.Q_CLUSTER.get("orm") or "default"


def check_database() -> dict[str, Any]:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"ok": True}


def check_broker() -> dict[str, Any]:
    conf = settings.Q_CLUSTER
    name = conf.get("name", "default")
    if conf.get("redis"):
        client = _redis(conf["redis"])
        client.ping()
        return {"ok": True, "kind": "redis", "queued": client.llen(f"django_q:{name}:q")}
    # Capped: a backlog's exact size is not worth a slow count on every probe.
    queued = OrmQ.objects.using(_orm_alias()).filter(key=name)[:1000].count()
    return {"ok": True, "kind": "orm", "queued": queued}


def _last_stat_from_redis() -> datetime | None:
    """The newest django-q2 cluster status a running cluster keeps in Redis (expires in 3 s)."""
    conf = settings.Q_CLUSTER
    if not conf.get("redis"):
        # With the ORM broker the stats live in each process's local cache: invisible here.
        return None
    client = _redis(conf["redis"])
    pattern = f"django_q:{conf.get('name', 'default')}:cluster:*"
    newest = None
    for key in client.scan_iter(match=pattern, count=100):
        pack = client.get(key)
        if not pack:
            continue
        try:
            stat = SignedPackage.loads(pack)
        except BadSignature:  # another deployment's entry (other SECRET_KEY): not ours
            continue
        stamp = getattr(stat, "timestamp", None)
        if stamp is not None and (newest is None or stamp > newest):
            newest = stamp
    return newest


def _last_task_finished() -> datetime | None:
    """The newest finished django-q2 task: recurring schedules make this a heartbeat."""
    return Task.objects.order_by("-stopped").values_list("stopped", flat=True).first()


def _last_heartbeat_row() -> datetime | None:
    """The newest beat of the cluster's own loops (ticker, sweeper) in generations.Heartbeat."""
    # Only the cluster's loops: other rows (the bad-token counter) are touched by web processes.
    loops = Heartbeat.objects.filter(name__in=[Heartbeat.TICKER, Heartbeat.SWEEPER])
    return loops.aggregate(newest=Max("beat_at"))["newest"]


HEARTBEAT_SOURCES = {
    "heartbeat": _last_heartbeat_row,
    "broker": _last_stat_from_redis,
    "task": _last_task_finished,
}


def check_cluster() -> dict[str, Any]:
    max_age = settings.HEALTHZ_MAX_HEARTBEAT_AGE
    newest, source = None, None
    for name, read in HEARTBEAT_SOURCES.items():
        try:
            stamp = read()
        except Exception:  # a source that is down (Redis) is reported by its own check
            stamp = None
        if stamp is not None and (newest is None or stamp > newest):
            newest, source = stamp, name
        # A fresh beat from the first sources is enough: the job table is not indexed by time.
        if newest is not None and (timezone.now() - newest).total_seconds() <= max_age:
            break
    if newest is None:
        return {"ok": False, "heartbeat_age_s": None, "max_age_s": max_age, "source": None}
    age = max(0.0, (timezone.now() - newest).total_seconds())
    return {
        "ok": age <= max_age,
        "heartbeat_age_s": round(age, 1),
        "max_age_s": max_age,
        "source": source,
    }


@never_cache
def healthz(request: HttpRequest) -> HttpResponse:
    checks = {
        "database": _timed(check_database),
        "broker": _timed(check_broker),
        "cluster": _timed(check_cluster),
    }
    healthy = all(check["ok"] for check in checks.values())
    body = {"status": "ok" if healthy else "fail", "checks": checks}
    return HttpResponse(
        json.dumps(body) if request.method != "HEAD" else b"",
        status=200 if healthy else 503,
        content_type="application/json",
    )
