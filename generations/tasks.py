"""django-q2 jobs: submit, poll, confirm a webhook, the ticker that dispatches them, the sweeper.

Jobs take primary keys (never a key's secret: it is loaded and decrypted inside the job),
record outcomes in our own tables and return normally, so a generation's fate never depends
on django-q2's retry bookkeeping. Work is claimed with row locks or compare-and-set updates:
several clusters may run, and django-q2 delivers at least once.

The ticker: a recurring schedule fires at most once a minute, too slow for a 4-second poll
cadence. So one ticker job loops for KINOVI_TICKER_SECONDS, every half second claiming due
polls and queued submissions and enqueuing their jobs, then hands over to a fresh job. A
lease on the Heartbeat row keeps it to one loop across all clusters; the minute schedule is
only a watchdog that starts a loop when none holds the lease.
"""

import functools
import logging
import math
import os
import secrets
import signal
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import timedelta

from django.conf import settings
from django.db import (
    IntegrityError,
    InterfaceError,
    OperationalError,
    close_old_connections,
    transaction,
)
from django.db.models import F, Q
from django.utils import timezone
from django_q.tasks import async_task

from accounts.models import ApiKey, hash_token
from generations import kinovi, lifecycle, notifications, polling
from generations.models import Generation, Heartbeat, Status, StatusEvent
from kinovi_site.logging import log_job

logger = logging.getLogger(__name__)

Source = StatusEvent.Source
TICK_INTERVAL = 0.5
# A claimed poll or submission is not claimed again for this long, even if its job is lost.
CLAIM_LEASE = timedelta(seconds=120)
TICKER_LEASE = timedelta(seconds=10)
# Per key and tick, at most this many submissions are started when the key's limit is unknown.
UNKNOWN_LIMIT_BATCH = 10
# The ticker stops claiming polls while the job queue holds this many jobs per worker.
QUEUED_POLL_JOBS_PER_WORKER = 5
# At most this many polls are claimed per tick (every half second).
MAX_CLAIMED_POLLS = 500
# A connect error (nothing sent) is retried this many times before the generation is rejected.
MAX_CONNECT_ATTEMPTS = 8
# One poll job asks about up to POLL_BATCH generations, POLL_THREADS recordInfo calls at a
# time over kept-alive connections: django-q2's enqueue, fetch, acknowledgement and result row
# are paid once per batch, not once per call, and the worker applies one answer while the
# next calls are on the wire (bench/tracking.py).
POLL_BATCH = 25
POLL_THREADS = 4
# A batch starts no call after this long (django-q2 kills a job at its timeout, 90 s): the
# generations it did not ask about are handed back to the next claim at once.
POLL_BATCH_BUDGET = 30.0
SCHEDULES = {
    "kinovi ticker": ("generations.tasks.ticker", 1),
    "kinovi sweeper": ("generations.tasks.sweep", 1),
}


def _client(secret: str) -> kinovi.KinoviClient:
    """The one way jobs reach Kinovi (tests swap it for a client that does not really sleep)."""
    return kinovi.KinoviClient(secret)


def _logged(event: str, id_field: str):
    """One structured log line per job run: which row, what came of it, how long it took."""

    def decorator(job):
        @functools.wraps(job)
        def wrapper(pk, *args, **kwargs):
            started = time.monotonic()
            outcome = job(pk, *args, **kwargs)
            log_job(
                event,
                **{id_field: pk},
                outcome=outcome,
                duration_ms=round((time.monotonic() - started) * 1000),
            )
            return outcome

        return wrapper

    return decorator


# --- enqueuing --------------------------------------------------------------------------------


def _enqueue(func: str, *args, **kwargs) -> None:
    async_task(func, *args, **kwargs)


def enqueue_submit(generation_id: int) -> None:
    _enqueue("generations.tasks.submit_generation", generation_id)


def enqueue_poll(generation_id: int, *, source: str = Source.POLL) -> None:
    _enqueue("generations.tasks.poll_generation", generation_id, source)


def enqueue_polls(generation_ids: list[int]) -> None:
    """Claimed polls as batch jobs, spread over the workers when there are few of them."""
    if not generation_ids:
        return
    workers = settings.Q_CLUSTER["workers"]
    size = max(1, min(POLL_BATCH, math.ceil(len(generation_ids) / workers)))
    for start in range(0, len(generation_ids), size):
        _enqueue("generations.tasks.poll_batch", generation_ids[start : start + size])


def enqueue_confirm(delivery_id: int) -> None:
    _enqueue("generations.tasks.confirm_delivery", delivery_id)


def start_ticker() -> None:
    _enqueue("generations.tasks.ticker")


# --- the key's slots and the fair order -------------------------------------------------------


def slot_holders(api_key_id: int, now=None):
    """Generations holding one of the key's concurrency slots at Kinovi.

    An unknown or stalled task may still be running at Kinovi for a while, then surely is not:
    they count for the vendor's window only, so one lost answer cannot block a key forever.
    """
    now = now or timezone.now()
    recent = now - timedelta(seconds=polling.VENDOR_STUCK_WINDOW * polling.scale())
    return Generation.objects.filter(api_key_id=api_key_id).filter(
        Q(status__in=[Status.SUBMITTING, Status.WAITING, Status.GENERATING])
        | Q(status__in=[Status.UNKNOWN, Status.STALLED], submitted_at__gte=recent)
    )


def fair_order(api_key_id: int, now=None) -> list[int]:
    """Queued generations of a key in the order they should get slots: round-robin by member.

    A member's n-th waiting video ranks behind every teammate's first ones, counting what each
    member already has in flight, so one member's batch of 50 cannot starve a teammate's single
    video; within a member, oldest first.
    """
    queued = list(
        Generation.objects.filter(api_key_id=api_key_id, status=Status.QUEUED)
        .order_by("created_at", "id")
        .values_list("pk", "creator_id")[:1000]
    )
    if not queued:
        return []
    busy = Counter(slot_holders(api_key_id, now).values_list("creator_id", flat=True))
    seen: Counter = Counter()
    ranked = []
    for position, (pk, creator_id) in enumerate(queued):
        ranked.append((busy[creator_id] + seen[creator_id], position, pk))
        seen[creator_id] += 1
    ranked.sort()
    return [pk for _, _, pk in ranked]


def free_slots(api_key: ApiKey, now=None) -> int | None:
    if not api_key.concurrency_limit:
        return None
    return max(0, api_key.concurrency_limit - slot_holders(api_key.pk, now).count())


# --- submit -----------------------------------------------------------------------------------


def _reject(generation_id: int, message: str, *, code: str = "", detail: dict | None = None):
    return lifecycle.apply_status(
        generation_id=generation_id,
        status=Status.REJECTED,
        source=Source.SUBMIT,
        detail=message[:500],
        error_code=code,
        error_message=message,
        error_detail=detail,
    )


def _back_to_queue(generation_id: int, *, delay: float, detail: str) -> None:
    lifecycle.apply_status(
        generation_id=generation_id,
        status=Status.QUEUED,
        expect=Status.SUBMITTING,
        source=Source.SUBMIT,
        detail=detail[:500],
        next_poll_at=timezone.now() + timedelta(seconds=delay),
    )


def _claim_for_submit(generation: Generation) -> tuple[bool, str | None]:
    """queued → submitting if the key has a slot and it is this generation's turn.

    The callback token is made here and only its hash stored: the row (with the hash) is
    committed before createTask is called, and the token itself lives only in this job.
    """
    with transaction.atomic():
        key = ApiKey.objects.select_for_update().get(pk=generation.api_key_id)
        if key.revoked_at is not None or key.status == ApiKey.Status.INVALID:
            _cancel_for_dead_key(generation, key)
            return False, None
        free = free_slots(key)
        if free is not None and generation.pk not in fair_order(key.pk)[:free]:
            # Due again at once (not after a dispatcher's claim lease): the dispatcher sends it
            # as soon as a slot frees and its turn comes.
            Generation.objects.filter(
                pk=generation.pk, status=Status.QUEUED, next_poll_at__gt=timezone.now()
            ).update(next_poll_at=timezone.now())
            return False, None
        token = secrets.token_urlsafe(32)
        from generations.services import callback_url_for

        callback_url = callback_url_for(generation, token)
        outcome = lifecycle.apply_status(
            generation_id=generation.pk,
            status=Status.SUBMITTING,
            expect=Status.QUEUED,
            source=Source.SUBMIT,
            detail="calling createTask",
            next_poll_at=None,
            fields={
                "callback_token_hash": hash_token(token) if callback_url else "",
                "submit_attempts": generation.submit_attempts + 1,
            },
        )
        return outcome.changed, callback_url


def _cancel_for_dead_key(generation: Generation, key: ApiKey) -> None:
    reason = "was revoked" if key.revoked_at is not None else "was refused by Kinovi"
    lifecycle.apply_status(
        generation_id=generation.pk,
        status=Status.CANCELED,
        expect=Status.QUEUED,
        source=Source.SUBMIT,
        detail=f"The API key {reason} before this video was sent; nothing was charged.",
        error_message=f"The API key {reason} before this video was sent; nothing was charged.",
    )


def _backoff(attempts: int) -> float:
    return min(300.0, 5.0 * 2 ** max(0, attempts - 1)) * polling.scale()


@_logged("generation.submit", "generation_id")
def submit_generation(generation_id: int) -> str:
    """Send one queued generation to Kinovi (createTask) and record what came of it."""
    generation = Generation.objects.select_related("api_key").filter(pk=generation_id).first()
    if generation is None or generation.status != Status.QUEUED:
        return "not queued"
    try:
        secret = generation.api_key.secret
    except Exception:  # a ciphertext that no key decrypts: never use it as-is
        logger.exception("generation %s: the API key does not decrypt", generation.public_id)
        _claim_and_reject(generation, "The API key cannot be read; an operator must re-enter it.")
        return "key unreadable"
    claimed, callback_url = _claim_for_submit(generation)
    if not claimed:
        return "waiting for a slot"
    generation.refresh_from_db()
    try:
        with _client(secret) as client:
            task_id = client.create_task(
                model=generation.model,
                prompt=generation.prompt,
                duration=generation.duration,
                aspect_ratio=generation.aspect_ratio,
                mode=generation.mode,
                upscale_4k=generation.upscale_4k,
                callback_url=callback_url,
            )
    except kinovi.KinoviError as exc:
        return record_answer(_create_failed, generation, exc)
    except Exception as exc:  # a bug or an unexpected transport error: the request may be out
        logger.exception("generation %s: createTask crashed", generation.public_id)
        return record_answer(
            _create_failed, generation, kinovi.UnknownOutcome(f"createTask crashed: {exc!r}")
        )
    return record_answer(_create_accepted, generation, task_id)


def record_answer(write, *args):
    """Record what Kinovi answered with `write(*args)`; once more on a fresh connection if the
    database dropped ours while we waited for Kinovi (a restart, a failover). The answer exists
    only in this job's memory (a task id lost here leaves a charged task `unknown`), and every
    write is guarded by the state machine, so a repeat after a half-done try changes nothing
    twice."""
    try:
        return write(*args)
    except (OperationalError, InterfaceError):
        logger.warning("the database connection was lost while Kinovi answered; reconnecting")
        close_old_connections()
        return write(*args)


def _claim_and_reject(generation: Generation, message: str) -> None:
    outcome = lifecycle.apply_status(
        generation_id=generation.pk,
        status=Status.SUBMITTING,
        expect=Status.QUEUED,
        source=Source.SUBMIT,
        next_poll_at=None,
    )
    if outcome.changed:
        _reject(generation.pk, message)


def _create_accepted(generation: Generation, task_id: str) -> str:
    now = timezone.now()
    try:
        outcome = lifecycle.apply_status(
            generation_id=generation.pk,
            status=Status.WAITING,
            source=Source.SUBMIT,
            task_id=task_id,
            detail=f"createTask accepted: {task_id}",
        )
    except IntegrityError:
        # Another generation already holds this task id: keep the reserve, let a human look.
        lifecycle.apply_status(
            generation_id=generation.pk,
            status=Status.UNKNOWN,
            source=Source.SUBMIT,
            detail=f"Kinovi answered task id {task_id}, already used by another generation",
        )
        return "duplicate task id"
    ApiKey.objects.filter(pk=generation.api_key_id).update(last_used_at=now)
    from generations import webhooks

    webhooks.resolve_early(generation.pk)
    return f"submitted {task_id}" if outcome.changed else f"late answer {task_id}"


def _create_failed(generation: Generation, exc: kinovi.KinoviError) -> str:
    pk = generation.pk
    message = exc.message
    if isinstance(exc, kinovi.UnknownOutcome):
        # Includes a 5xx, a read timeout, a reset after sending and a malformed 200: a task may
        # exist and be charged, so the reserve is written and nothing is resent.
        lifecycle.apply_status(
            generation_id=pk,
            status=Status.UNKNOWN,
            expect=Status.SUBMITTING,
            source=Source.SUBMIT,
            detail=message[:500],
            error_code="unknown",
            error_message=message,
            next_poll_at=None,
        )
        from generations import webhooks

        webhooks.resolve_early(pk)
        return "unknown outcome"
    if isinstance(exc, kinovi.ConcurrencyLimited):
        learned = exc.limit or exc.current
        if learned:
            ApiKey.objects.filter(pk=generation.api_key_id).update(concurrency_limit=learned)
        delay = exc.retry_after if exc.retry_after is not None else _backoff(1)
        _back_to_queue(
            pk,
            delay=min(delay, 120.0),
            detail=f"429 from Kinovi (limit {exc.limit}, in progress {exc.current}); "
            f"retrying in {delay:.0f} s",
        )
        return "concurrency limited"
    if isinstance(exc, kinovi.KinoviUnavailable):
        if generation.submit_attempts >= MAX_CONNECT_ATTEMPTS:
            _reject(
                pk,
                f"Kinovi could not be reached after {generation.submit_attempts} attempts; "
                "nothing was sent and nothing charged.",
                code="unreachable",
            )
            return "gave up"
        delay = _backoff(generation.submit_attempts)
        _back_to_queue(pk, delay=delay, detail=f"{message} Retrying in {delay:.0f} s.")
        return "unavailable"
    if isinstance(exc, kinovi.AuthenticationFailed | kinovi.AccessNotEnabled):
        what = (
            "Kinovi refused the API key (401)"
            if isinstance(exc, kinovi.AuthenticationFailed)
            else "API access is not enabled for this Kinovi account (403)"
        )
        ApiKey.objects.filter(pk=generation.api_key_id).update(
            status=ApiKey.Status.INVALID, status_detail=what[:300]
        )
        _reject(pk, f"{what}. Nothing was charged.", code=str(exc.status_code))
        return "key refused"
    if isinstance(exc, kinovi.InsufficientCredits):
        detail = {"required": exc.required, "available": exc.available}
        needs = (
            f" It needs {exc.required} credits and the account has {exc.available}."
            if exc.required is not None and exc.available is not None
            else ""
        )
        _reject(
            pk,
            f"The Kinovi account has too few credits (402).{needs} Nothing was charged.",
            code="402",
            detail=detail,
        )
        return "insufficient credits"
    if isinstance(exc, kinovi.InvalidRequest):
        _reject(
            pk,
            f"Kinovi refused the parameters (400): {message}",
            code="400",
            detail={"errors": exc.errors},
        )
        return "invalid request"
    # Any other answer is a definite refusal before anything was created.
    _reject(pk, f"Kinovi refused the request: {message}", code=str(exc.status_code or ""))
    return "refused"


# --- poll and confirm -------------------------------------------------------------------------


def ask_kinovi(generation: Generation, task_id: str) -> kinovi.TaskInfo:
    """recordInfo for `task_id` with the generation's key, counted on the generation."""
    Generation.objects.filter(pk=generation.pk).update(poll_count=F("poll_count") + 1)
    with _client(generation.api_key.secret) as client:
        return client.record_info(task_id)


def poll_generation(generation_id: int, source: str = Source.POLL) -> str:
    """recordInfo for one in-flight generation (a re-check asked for by a person)."""
    return poll_many([generation_id], source)[generation_id]


def poll_batch(generation_ids: list[int], source: str = Source.POLL) -> dict[int, str]:
    """The ticker's poll job: recordInfo for each of a batch of claimed generations."""
    return poll_many(generation_ids, source)


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
    with _client(secret) as client:
        return client.record_info(generation.task_id)


def poll_many(generation_ids: list[int], source: str = Source.POLL) -> dict[int, str]:
    """recordInfo for each in-flight generation of `generation_ids`; each answer goes through
    the state machine as soon as it arrives, while the other calls are still out."""
    outcomes = {pk: "nothing to poll" for pk in generation_ids}
    generations = list(
        Generation.objects.select_related("api_key").filter(
            pk__in=generation_ids,
            status__in=lifecycle.POLLABLE_STATUSES,
            task_id__isnull=False,
        )
    )
    asking: list[tuple[Generation, str]] = []
    for generation in generations:
        try:
            asking.append((generation, generation.api_key.secret))
        except Exception:  # a ciphertext no key decrypts: the others are still asked
            logger.exception("generation %s: the API key does not decrypt", generation.public_id)
            _reschedule(generation)
            outcomes[generation.pk] = "key unreadable"
    if not asking:
        return outcomes
    Generation.objects.filter(pk__in=[g.pk for g, _ in asking]).update(
        poll_count=F("poll_count") + 1
    )
    deadline = time.monotonic() + POLL_BATCH_BUDGET
    started = time.monotonic()
    if len(asking) == 1:
        generation, secret = asking[0]
        answers = [(generation, functools.partial(_ask, generation, secret, deadline))]
    else:
        pool = _poll_pool()
        futures = {
            pool.submit(_ask, generation, secret, deadline): generation
            for generation, secret in asking
        }
        answers = ((futures[f], f.result) for f in as_completed(futures))
    with notifications.one_job_for_many():
        for generation, answer in answers:
            try:
                outcome = _record_poll(generation, answer, source)
            except Exception:
                # A bug, or a database that stays down: this one stays claimed and is asked about
                # again when its claim runs out; the answers still coming in are applied.
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
        # recordInfo already retried inside the client; carry on at the usual cadence.
        logger.warning("generation %s: recordInfo failed: %s", generation.public_id, exc)
        if isinstance(exc, kinovi.AuthenticationFailed):
            ApiKey.objects.filter(pk=generation.api_key_id).update(
                status=ApiKey.Status.INVALID, status_detail="Kinovi refused the key (401)"
            )
        at = polling.next_poll_at(generation)
        if isinstance(exc, kinovi.ConcurrencyLimited) and exc.retry_after and at is not None:
            # Kinovi said when to come back (longer than a worker waits inside the call):
            # asking sooner only earns another 429.
            at = max(at, timezone.now() + timedelta(seconds=exc.retry_after))
        _reschedule(generation, at=at)
        return f"poll failed: {type(exc).__name__}"
    except Exception:  # a bug or an unexpected transport error: the rest of the batch goes on
        logger.exception("generation %s: recordInfo crashed", generation.public_id)
        _reschedule(generation)
        return "poll crashed"
    if info.task_id != generation.task_id:
        _reschedule(generation)
        return "answer about another task"
    outcome = record_answer(_apply_poll, generation, info, source)
    return f"{outcome.from_status} -> {outcome.generation.status}"


def _apply_poll(generation: Generation, info: kinovi.TaskInfo, source: str) -> lifecycle.Outcome:
    return lifecycle.apply_info(
        generation_id=generation.pk, info=info, source=source, seen=generation
    )


@_logged("webhook.confirm", "delivery_id")
def confirm_delivery(delivery_id: int) -> str:
    """Ask Kinovi whether what a webhook claimed is true, and apply Kinovi's answer."""
    from generations import webhooks

    return webhooks.confirm(delivery_id)


# --- the ticker -------------------------------------------------------------------------------


def _heartbeat(name: str) -> Heartbeat:
    beat, _ = Heartbeat.objects.get_or_create(name=name)
    return beat


def _take_lease(owner: str) -> bool:
    now = timezone.now()
    _heartbeat(Heartbeat.TICKER)
    return bool(
        Heartbeat.objects.filter(name=Heartbeat.TICKER)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now) | Q(lease_owner=owner))
        .update(
            lease_owner=owner,
            lease_until=now + TICKER_LEASE,
            beat_at=now,
            count=F("count") + 1,
        )
    )


def ticker(seconds: float | None = None) -> str:
    """Loop claiming due work every half second; then hand over to a fresh ticker job."""
    owner = uuid.uuid4().hex
    if not _take_lease(owner):
        return "another ticker holds the lease"
    seconds = settings.KINOVI_TICKER_SECONDS if seconds is None else seconds
    deadline = time.monotonic() + seconds
    stopping = threading.Event()
    previous = _on_interrupt(stopping.set)
    try:
        while time.monotonic() < deadline and not stopping.is_set():
            try:
                tick()
                stopping.wait(TICK_INTERVAL)
                if not _take_lease(owner):
                    return "lease lost"
            except (OperationalError, InterfaceError):
                # The database dropped the connection (a restart, a failover): this loop is the
                # only thing enqueuing polls and submissions, so it reconnects and goes on
                # rather than die and leave the work to the watchdog a minute later.
                logger.warning("ticker: the database connection was lost; reconnecting")
                close_old_connections()
                stopping.wait(TICK_INTERVAL)
    finally:
        _restore_interrupt(previous)
        Heartbeat.objects.filter(name=Heartbeat.TICKER, lease_owner=owner).update(
            lease_until=None, lease_owner=""
        )
    start_ticker()
    return "interrupted; handed over" if stopping.is_set() else "handed over"


def _on_interrupt(callback):
    """Ctrl-C in the cluster's terminal (`make run`, `manage.py qcluster`) reaches its workers
    too. django-q2's workers ignore it and the cluster waits for every running job before it
    exits, so the ticker loop ends at its next tick instead of running out its minute. Only a
    process's main thread may set a handler (elsewhere: None, and the loop runs its course)."""
    try:
        return signal.signal(signal.SIGINT, lambda signum, frame: callback())
    except ValueError:
        return None


def _restore_interrupt(previous) -> None:
    if previous is not None:
        signal.signal(signal.SIGINT, previous)


def queue_room() -> int:
    """How many more poll jobs the job queue should take now (bench/tracking.py).

    Polls are claimed only about as fast as the workers take them: claimed ahead of that, they
    would wait in the queue in front of every submission and webhook confirmation, and one
    waiting longer than CLAIM_LEASE would be claimed, and asked about, a second time. Unclaimed,
    they wait in the table, where the next claim takes the most overdue first.
    """
    from django_q.brokers import get_broker

    queued = get_broker().queue_size() or 0
    return max(0, settings.Q_CLUSTER["workers"] * QUEUED_POLL_JOBS_PER_WORKER - queued)


def tick() -> dict:
    """One pass: due polls, due submissions, and the sandbox's webhooks when it is on."""
    room = queue_room()
    polls = claim_due_polls(limit=min(MAX_CLAIMED_POLLS, room * POLL_BATCH)) if room else []
    enqueue_polls(polls)
    submissions = dispatch()
    for pk in submissions:
        enqueue_submit(pk)
    if settings.KINOVI_SANDBOX:
        _send_sandbox_webhooks()
    return {"polls": polls, "submissions": submissions}


def _send_sandbox_webhooks() -> None:
    try:
        from sandbox import tasks as sandbox_tasks
    except ImportError:
        return
    if hasattr(sandbox_tasks, "send_due_webhooks"):
        try:
            sandbox_tasks.send_due_webhooks()
        except Exception:  # the fake vendor must never stop our own ticker
            logger.exception("sandbox webhooks failed")


def claim_due_polls(limit: int = 200) -> list[int]:
    """Due in-flight generations, claimed (their next poll pushed out) so no other ticker or
    cluster polls them at the same moment; the poll job sets the real next time."""
    now = timezone.now()
    with transaction.atomic():
        ids = list(
            Generation.objects.select_for_update(skip_locked=True)
            .filter(
                status__in=lifecycle.POLLABLE_STATUSES,
                next_poll_at__lte=now,
                task_id__isnull=False,
            )
            .order_by("next_poll_at")
            .values_list("pk", flat=True)[:limit]
        )
        if ids:
            Generation.objects.filter(pk__in=ids).update(next_poll_at=now + CLAIM_LEASE)
    return ids


def dispatch() -> list[int]:
    """Queued generations due for submission, per key: as many as it has free slots, fairly."""
    now = timezone.now()
    key_ids = set(
        Generation.objects.filter(status=Status.QUEUED, next_poll_at__lte=now).values_list(
            "api_key_id", flat=True
        )
    )
    chosen: list[int] = []
    for key_id in key_ids:
        with transaction.atomic():
            key = ApiKey.objects.select_for_update(skip_locked=True).filter(pk=key_id).first()
            if key is None:
                continue  # a submit job or another ticker is deciding for this key right now
            free = free_slots(key, now)
            due_ids = set(
                Generation.objects.filter(
                    api_key_id=key_id, status=Status.QUEUED, next_poll_at__lte=now
                ).values_list("pk", flat=True)
            )
            order = fair_order(key_id, now)
            if free is None:
                due = [pk for pk in order if pk in due_ids][:UNKNOWN_LIMIT_BATCH]
            else:
                # The head of the fair order keeps its place even while it backs off or its
                # job is on the way: the slots are its, and nobody overtakes it.
                due = [pk for pk in order[:free] if pk in due_ids]
            Generation.objects.filter(pk__in=due).update(next_poll_at=now + CLAIM_LEASE)
            chosen.extend(due)
    return chosen


# --- the sweeper ------------------------------------------------------------------------------


def submitting_timeout() -> timedelta:
    """Longer than any createTask can take in a live worker (retries on connect errors, then
    the read timeout) and than django-q2's own timeout, after which the worker is killed."""
    client_worst = settings.KINOVI_CONNECT_TIMEOUT * 4 + settings.KINOVI_READ_TIMEOUT + 15
    return timedelta(seconds=max(2 * client_worst, settings.Q_CLUSTER["timeout"] + 30))


def sweep() -> dict:
    """Resolve rows a dead worker left in submitting, mark overdue tasks stalled, beat."""
    now = timezone.now()
    orphaned = list(
        Generation.objects.filter(
            status=Status.SUBMITTING, submitted_at__lt=now - submitting_timeout()
        ).values_list("pk", flat=True)
    )
    unknown = []
    for pk in orphaned:
        # There is no lookup by anything but task id, so "unknown" it is: never resent blindly.
        outcome = lifecycle.apply_status(
            generation_id=pk,
            status=Status.UNKNOWN,
            expect=Status.SUBMITTING,
            source=Source.SWEEPER,
            detail="No answer recorded for createTask (the worker died); not resubmitted.",
            error_code="unknown",
            error_message="The request to Kinovi was interrupted; it may or may not have "
            "created (and charged) a task.",
            next_poll_at=None,
        )
        # Only what this sweep changed: another sweep (or a late answer) may have got there first.
        if outcome.changed:
            unknown.append(pk)
    stalled = []
    candidates = Generation.objects.filter(
        status__in=[Status.WAITING, Status.GENERATING],
        submitted_at__lt=now - timedelta(seconds=polling.VENDOR_STUCK_WINDOW * polling.scale()),
    )
    for generation in candidates:
        if polling.is_overdue(generation, now):
            outcome = lifecycle.apply_status(
                generation_id=generation.pk,
                status=Status.STALLED,
                source=Source.SWEEPER,
                detail="No terminal answer within the vendor's window.",
            )
            if outcome.changed:
                stalled.append(generation.pk)
    from generations import webhooks

    early = webhooks.resolve_all_early()
    emails = notifications.enqueue_unsent(now)
    prune_job_results(now)
    _heartbeat(Heartbeat.SWEEPER)
    Heartbeat.objects.filter(name=Heartbeat.SWEEPER).update(
        beat_at=now, count=F("count") + 1, detail=f"unknown {len(unknown)}, stalled {len(stalled)}"
    )
    return {"unknown": unknown, "stalled": stalled, "early": early, "emails": emails}


# How long django-q2's success rows are kept (settings.Q_CLUSTER save_limit is 0: unpruned by
# django-q2 itself, whose per-job pruning locks every kept row); failures are left alone.
JOB_RESULTS_KEPT = timedelta(days=1)
PRUNE_BATCH = 5000


def prune_job_results(now=None) -> int:
    """Delete successful job results older than JOB_RESULTS_KEPT, one bounded batch a sweep."""
    from django_q.models import Success

    now = now or timezone.now()
    old = Success.objects.filter(stopped__lt=now - JOB_RESULTS_KEPT).order_by("stopped")
    ids = list(old.values_list("pk", flat=True)[:PRUNE_BATCH])
    return Success.objects.filter(pk__in=ids).delete()[0] if ids else 0


# --- schedules --------------------------------------------------------------------------------


def register_schedules() -> None:
    """Idempotent (post_migrate): the ticker watchdog and the sweeper, every minute."""
    from django_q.models import Schedule

    for name, (func, minutes) in SCHEDULES.items():
        Schedule.objects.update_or_create(
            name=name,
            defaults={
                "func": func,
                "schedule_type": Schedule.MINUTES,
                "minutes": minutes,
                "repeats": -1,
            },
            create_defaults={
                "func": func,
                "schedule_type": Schedule.MINUTES,
                "minutes": minutes,
                "repeats": -1,
                "next_run": timezone.now(),
            },
        )
