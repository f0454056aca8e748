"""Requests per token and minute, counted where every web process sees the same number.

With REDIS_URL set the count lives in the "api" cache (Redis: INCR is atomic across
processes); otherwise in the database, one row per token and window, raised by a single
INSERT … ON CONFLICT DO UPDATE, atomic under concurrent requests too.
"""

import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import caches
from django.db import connection

from api.models import RateWindow

WINDOW_SECONDS = 60


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    limit: int
    count: int
    retry_after: int  # seconds until the window ends


def _count_in_cache(token_id: int, window: int) -> int:
    cache = caches["api"]
    key = f"rate:{token_id}:{window}"
    # add() is a no-op when the key exists; incr() is then atomic in Redis.
    cache.add(key, 0, timeout=WINDOW_SECONDS * 2)
    return cache.incr(key)


def _count_in_database(token_id: int, window: int) -> int:
    table = connection.ops.quote_name(RateWindow._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (token_id, window_start, count) VALUES (%s, %s, 1) "  # noqa: S608 - the table name is ours
            f"ON CONFLICT (token_id, window_start) DO UPDATE SET count = {table}.count + 1 "
            "RETURNING count",
            [token_id, window],
        )
        count = cursor.fetchone()[0]
    if count == 1:
        # The first request of a window clears this token's older windows.
        RateWindow.objects.filter(token_id=token_id, window_start__lt=window).delete()
    return count


def hit(token_id: int, *, now: float | None = None) -> Verdict:
    """Counts one request of the token and says whether it is within the limit."""
    limit = settings.API_RATE_LIMIT_PER_MINUTE
    now = time.time() if now is None else now
    window = int(now // WINDOW_SECONDS) * WINDOW_SECONDS
    if "api" in settings.CACHES:
        count = _count_in_cache(token_id, window)
    else:
        count = _count_in_database(token_id, window)
    retry_after = max(1, math.ceil(window + WINDOW_SECONDS - now))
    return Verdict(allowed=count <= limit, limit=limit, count=count, retry_after=retry_after)
