"""Following tasks at Kinovi: claim the due polls, ask recordInfo in batches, apply each answer.

One poll job asks about up to `queue.POLL_BATCH` generations, POLL_THREADS recordInfo calls at
a time over kept-alive connections: django-q2's enqueue, fetch, acknowledgement and result row
are paid once per batch, and the worker applies one answer while the next calls are on the
wire (bench/tracking.py). The poll threads touch no database; only the job's thread does.
"""

import functools
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

import kinovi
from generations import lifecycle, notifications, polling, retry, vendor
from generations.models import POLLABLE_STATUSES, Generation, StatusEvent, refused_keys
from kinovi_site.logging import log_job

logger = logging.getLogger(__name__)

# A claimed poll is not claimed again for this long, even if its job is lost.
CLAIM_LEASE = timedelta(seconds=120)
POLL_THREADS = 4
# A batch starts no call after this long (django-q2 kills a job at its timeout, 90 s): the
# generations it did not ask about are handed back to the next claim at once.
POLL_BATCH_BUDGET = 30.0


@retry.retried
def claim_due_polls(limit: int = 200) -> list[int]:
    """Due in-flight generations, claimed (their next poll pushed out) so no other ticker or
    cluster polls them at the same moment; the poll job sets the real next time."""
    now = timezone.now()
    with transaction.atomic():
        ids = list(
            Generation.objects.select_for_update(no_key=True, skip_locked=True)
            .filter(status__in=POLLABLE_STATUSES, next_poll_at__lte=now, task_id__isnull=False)
            # Paused: every call with a refused key is refused too. They stay due, so the
            # first claim after the key is verified again asks about them.
            .exclude(api_key_id__in=refused_keys())
            .order_by("next_poll_at")
            .values_list("pk", flat=True)[:limit]
        )
        if ids:
            Generation.objects.filter(pk__in=ids).update(next_poll_at=now + CLAIM_LEASE)
    return ids


def hold_paused(now) -> int:
    """The sweeper's net for generations paused by a key refused elsewhere (a createTask or a
    key check): due now, so polling resumes with them at once when the key works again."""
    return Generation.objects.filter(
        status__in=POLLABLE_STATUSES,
        api_key_id__in=refused_keys(),
        next_poll_at__gt=now,
        task_id__isnull=False,
    ).update(next_poll_at=now)


class _NotAsked(Exception):
    """The batch ran out of time before this generation's turn."""


_pool: tuple[int, ThreadPoolExecutor] | None = None
_pool_sessions: set = set()


def _poll_pool() -> ThreadPoolExecutor:
    """This process's poll threads, made after django-q2 forked the worker; they live as long
    as it does, and with them their kept-alive connections to Kinovi (kinovi.shared_session)."""
    global _pool
    if _pool is None or _pool[0] != os.getpid():
        _pool = (os.getpid(), ThreadPoolExecutor(POLL_THREADS, thread_name_prefix="kinovi-poll"))
        _pool_sessions.clear()
    return _pool[1]


def stop_poll_pool() -> None:
    """End the poll threads and close their connections (tests: a kept-alive connection to the
    live-server sandbox pins a server thread and its database connection)."""
    global _pool
    if _pool is not None and _pool[0] == os.getpid():
        _pool[1].shutdown(wait=True)
    _pool = None
    while _pool_sessions:
        _pool_sessions.pop().close()


def _ask(generation: Generation, secret: str, deadline: float) -> kinovi.TaskInfo:
    """One recordInfo, on a poll thread: no database here, only the HTTP call."""
    if time.monotonic() > deadline:
        raise _NotAsked
    _pool_sessions.add(kinovi.shared_session())
    with vendor.client_for(secret) as client:
        return client.record_info(generation.task_id)


def poll_many(generation_ids: list[int], source: str = StatusEvent.Source.POLL) -> dict:
    """recordInfo for each in-flight generation of `generation_ids`; each answer goes through
    the state machine as soon as it arrives, while the other calls are still out."""
    outcomes = {pk: "nothing to poll" for pk in generation_ids}
    asking = _secrets_of(_pollable(generation_ids), outcomes)
    if not asking:
        return outcomes
    Generation.objects.filter(pk__in=[g.pk for g, _ in asking]).update(
        poll_count=F("poll_count") + 1
    )
    started = time.monotonic()
    with notifications.one_job_for_many():
        for generation, answer in _answers(asking, started + POLL_BATCH_BUDGET):
            try:
                outcome = _record_poll(generation, answer, source)
            except Exception:
                # A bug, or a database that stays down: this one stays claimed and is asked
                # about again when its claim runs out; the answers still coming are applied.
                logger.exception("generation %s: recording the poll failed", generation.public_id)
                outcome = "recording failed"
            outcomes[generation.pk] = outcome
            log_job(
                "generation.poll",
                generation_id=generation.pk,
                outcome=outcome,
                duration_ms=round((time.monotonic() - started) * 1000),
            )
    return outcomes


def _pollable(generation_ids: list[int]) -> list[Generation]:
    return list(
        Generation.objects.select_related("api_key")
        .filter(pk__in=generation_ids, status__in=POLLABLE_STATUSES, task_id__isnull=False)
        .exclude(api_key_id__in=refused_keys())
    )


def _secrets_of(generations: list[Generation], outcomes: dict) -> list[tuple[Generation, str]]:
    asking = []
    for generation in generations:
        try:
            asking.append((generation, generation.api_key.secret))
        except Exception:  # a ciphertext no key decrypts: the others are still asked
            logger.exception("generation %s: the API key does not decrypt", generation.public_id)
            _reschedule(generation)
            outcomes[generation.pk] = "key unreadable"
    return asking


def _answers(asking: list[tuple[Generation, str]], deadline: float):
    """(generation, answer) pairs in the order the answers arrive; `answer()` returns
    recordInfo's TaskInfo or raises what the call raised."""
    if len(asking) == 1:
        generation, secret = asking[0]
        return [(generation, functools.partial(_ask, generation, secret, deadline))]
    pool = _poll_pool()
    futures = {
        pool.submit(_ask, generation, secret, deadline): generation for generation, secret in asking
    }
    return ((futures[f], f.result) for f in as_completed(futures))


def _reschedule(generation: Generation, at=lifecycle.UNSET) -> None:
    when = polling.next_poll_at(generation) if at is lifecycle.UNSET else at
    lifecycle.reschedule(generation_id=generation.pk, at=when)


def _record_poll(generation: Generation, answer, source: str) -> str:
    """What one recordInfo call (`answer()` returns it or raises) means for its generation."""
    try:
        info = answer()
    except _NotAsked:
        _reschedule(generation, at=timezone.now())
        return "not asked: the batch ran out of time"
    except kinovi.KinoviError as exc:
        return _poll_failed(generation, exc)
    except Exception:  # a bug or an unexpected transport error: the rest of the batch goes on
        logger.exception("generation %s: recordInfo crashed", generation.public_id)
        _reschedule(generation)
        return "poll crashed"
    if info.task_id != generation.task_id:
        _reschedule(generation)
        return "answer about another task"
    outcome = vendor.record_answer(_apply_poll, generation, info, source)
    return f"{outcome.from_status} -> {outcome.generation.status}"


def _poll_failed(generation: Generation, exc: kinovi.KinoviError) -> str:
    # recordInfo already retried inside the client; carry on at the usual cadence.
    logger.warning("generation %s: recordInfo failed: %s", generation.public_id, exc)
    if isinstance(exc, kinovi.AuthenticationFailed):
        # Paused, with all the key's in-flight generations, until the key works again.
        vendor.refuse_key(generation.api_key_id, exc)
        return "poll failed: AuthenticationFailed"
    at = polling.next_poll_at(generation)
    if isinstance(exc, kinovi.ConcurrencyLimited) and exc.retry_after and at is not None:
        # Kinovi said when to come back (longer than a worker waits inside the call):
        # asking sooner only earns another 429.
        at = max(at, timezone.now() + timedelta(seconds=exc.retry_after))
    _reschedule(generation, at=at)
    return f"poll failed: {type(exc).__name__}"


def _apply_poll(generation: Generation, info: kinovi.TaskInfo, source: str) -> lifecycle.Outcome:
    return lifecycle.apply_info(
        generation_id=generation.pk, info=info, source=source, seen=generation
    )
