"""Transactions PostgreSQL rolled back because of a deadlock or a serialization failure, tried
again: the one helper every service and job uses (docs/LOCKS.md).

The lock order should leave no deadlock, but PostgreSQL may still pick a victim (an index page,
a future path that strays): the whole transaction was rolled back, so running it again from
the start is safe, and is what PostgreSQL asks for. Only the outermost transaction retries:
inside an enclosing atomic block the whole enclosing transaction is aborted, so the error goes
up to whoever opened it.
"""

import functools
import logging
import random
import time

import psycopg.errors
from django.db import DatabaseError, connection

logger = logging.getLogger(__name__)

# Tries in all (the first and the retries), and the backoff before the n-th retry: a random
# time up to BASE_DELAY * 2**(n-1), so the transactions that collided do not collide again.
ATTEMPTS = 5
BASE_DELAY = 0.05
CONTENDED = (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure)
# Tests replace it to count the waits without waiting.
sleep = time.sleep


def _caused_by(exc: BaseException | None, kinds) -> bool:
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, kinds):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def is_contention(exc: BaseException) -> bool:
    """A deadlock or a serialization failure, as psycopg raised it or as Django wrapped it."""
    return _caused_by(exc, CONTENDED)


def _kind(exc: BaseException) -> str:
    serialization = _caused_by(exc, psycopg.errors.SerializationFailure)
    return "serialization failure" if serialization else "deadlock"


def retried(func):
    """`func` run again (up to ATTEMPTS in all, with jittered backoff) when PostgreSQL rolled
    it back for a deadlock or a serialization failure. One log line says what happened: that
    it succeeded after retries, or that it gave up (then the last error is raised)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        if connection.in_atomic_block:
            return func(*args, **kwargs)  # the enclosing transaction's opener retries
        attempt, last = 1, None
        while True:
            try:
                result = func(*args, **kwargs)
            except DatabaseError as exc:
                if not is_contention(exc):
                    raise
                if attempt == ATTEMPTS:
                    logger.error(
                        "%s: %s; gave up after %d tries", func.__qualname__, _kind(exc), attempt
                    )
                    raise
                sleep(random.uniform(0, BASE_DELAY * 2 ** (attempt - 1)))  # noqa: S311
                attempt, last = attempt + 1, exc
                continue
            if last is not None:
                logger.warning(
                    "%s: %s; succeeded on try %d", func.__qualname__, _kind(last), attempt
                )
            return result

    return wrapper
