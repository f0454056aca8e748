"""The loop that hands out work every half second, its lease, the sweeper, and the schedules.

A django-q2 schedule fires at most once a minute, too slow for a 4-second poll cadence. So one
ticker job loops for KINOVI_TICKER_SECONDS, every half second claiming due polls and queued
submissions and enqueuing their jobs, then hands over to a fresh job. A lease on the
Heartbeat row keeps it to one loop across all clusters; the minute schedule is only a
watchdog that starts a loop when none holds the lease.
"""

import logging
import signal
import threading
import time
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections
from django.db.models import F, Q
from django.utils import timezone
from django_q.models import Schedule, Success

from generations import deliveries, lifecycle, notifications, polling, queue, slots, tracking
from generations.models import Generation, Heartbeat, Status, StatusEvent, refused_keys
from sandbox import tasks as sandbox_tasks

logger = logging.getLogger(__name__)

TICK_INTERVAL = 0.5
TICKER_LEASE = timedelta(seconds=10)
# The ticker stops claiming polls while the job queue holds this many jobs per worker.
QUEUED_POLL_JOBS_PER_WORKER = 5
# At most this many polls are claimed per tick (every half second).
MAX_CLAIMED_POLLS = 500
# How long django-q2's success rows are kept (settings.Q_CLUSTER save_limit is 0: unpruned by
# django-q2 itself, whose per-job pruning locks every kept row); failures are left alone.
JOB_RESULTS_KEPT = timedelta(days=1)
PRUNE_BATCH = 5000


def _heartbeat(name: str) -> Heartbeat:
    beat, _ = Heartbeat.objects.get_or_create(name=name)
    return beat


def take_lease(owner: str) -> bool:
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


def loop(seconds: float | None = None) -> str:
    """Claim due work every half second for `seconds`; then hand over to a fresh ticker job."""
    owner = uuid.uuid4().hex
    if not take_lease(owner):
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
                if not take_lease(owner):
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
    queue.start_ticker()
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
    waiting longer than the claim lease would be claimed, and asked about, a second time.
    Unclaimed, they wait in the table, where the next claim takes the most overdue first.
    """
    room = settings.Q_CLUSTER["workers"] * QUEUED_POLL_JOBS_PER_WORKER
    return max(0, room - queue.waiting_jobs())


def tick() -> dict:
    """One pass: due polls, due submissions, and the sandbox's webhooks when it is on."""
    room = queue_room()
    polls = (
        tracking.claim_due_polls(limit=min(MAX_CLAIMED_POLLS, room * queue.POLL_BATCH))
        if room
        else []
    )
    queue.polls(polls)
    submissions = slots.dispatch()
    for pk in submissions:
        queue.submit(pk)
    if settings.KINOVI_SANDBOX:
        _send_sandbox_webhooks()
    return {"polls": polls, "submissions": submissions}


def _send_sandbox_webhooks() -> None:
    try:
        sandbox_tasks.send_due_webhooks()
    except Exception:  # the fake vendor must never stop our own ticker
        logger.exception("sandbox webhooks failed")


# --- the sweeper ------------------------------------------------------------------------------


def submitting_timeout() -> timedelta:
    """Longer than any createTask can take in a live worker (retries on connect errors, then
    the read timeout) and than django-q2's own timeout, after which the worker is killed."""
    client_worst = settings.KINOVI_CONNECT_TIMEOUT * 4 + settings.KINOVI_READ_TIMEOUT + 15
    return timedelta(seconds=max(2 * client_worst, settings.Q_CLUSTER["timeout"] + 30))


def sweep() -> dict:
    """Resolve rows a dead worker left in submitting, mark overdue tasks stalled, beat."""
    now = timezone.now()
    unknown = _orphans_to_unknown(now)
    tracking.hold_paused(now)
    stalled = _overdue_to_stalled(now)
    early = deliveries.resolve_all_early()
    emails = notifications.enqueue_unsent(now)
    prune_job_results(now)
    _heartbeat(Heartbeat.SWEEPER)
    Heartbeat.objects.filter(name=Heartbeat.SWEEPER).update(
        beat_at=now, count=F("count") + 1, detail=f"unknown {len(unknown)}, stalled {len(stalled)}"
    )
    return {"unknown": unknown, "stalled": stalled, "early": early, "emails": emails}


def _orphans_to_unknown(now) -> list[int]:
    orphaned = Generation.objects.filter(
        status=Status.SUBMITTING, submitted_at__lt=now - submitting_timeout()
    ).values_list("pk", flat=True)
    unknown = []
    for pk in list(orphaned):
        # There is no lookup by anything but task id, so "unknown" it is: never resent blindly.
        outcome = lifecycle.apply_status(
            generation_id=pk,
            status=Status.UNKNOWN,
            expect=Status.SUBMITTING,
            source=StatusEvent.Source.SWEEPER,
            detail="No answer recorded for createTask (the worker died); not resubmitted.",
            error_code="unknown",
            error_message="The request to Kinovi was interrupted; it may or may not have "
            "created (and charged) a task.",
            next_poll_at=None,
        )
        # Only what this sweep changed: another sweep (or a late answer) may have got there first.
        if outcome.changed:
            unknown.append(pk)
    return unknown


def _overdue_to_stalled(now) -> list[int]:
    window = timedelta(seconds=polling.VENDOR_STUCK_WINDOW * polling.scale())
    # A paused generation (its key refused) is not late, only unasked: never called stalled.
    candidates = Generation.objects.filter(
        status__in=[Status.WAITING, Status.GENERATING], submitted_at__lt=now - window
    ).exclude(api_key_id__in=refused_keys())
    stalled = []
    for generation in candidates:
        if polling.is_overdue(generation, now):
            outcome = lifecycle.apply_status(
                generation_id=generation.pk,
                status=Status.STALLED,
                source=StatusEvent.Source.SWEEPER,
                detail="No terminal answer within the vendor's window.",
            )
            if outcome.changed:
                stalled.append(generation.pk)
    return stalled


def prune_job_results(now=None) -> int:
    """Delete successful job results older than JOB_RESULTS_KEPT, one bounded batch a sweep."""
    now = now or timezone.now()
    old = Success.objects.filter(stopped__lt=now - JOB_RESULTS_KEPT).order_by("stopped")
    ids = list(old.values_list("pk", flat=True)[:PRUNE_BATCH])
    return Success.objects.filter(pk__in=ids).delete()[0] if ids else 0


def register_schedules() -> None:
    """The studio's schedules (after every migrate): idempotent, by name."""
    for name, (func, minutes) in queue.SCHEDULES.items():
        register_schedule(name, func, minutes)


def register_schedule(name: str, func: str, minutes: int) -> None:
    """The one way a schedule is made, here and by apps built on this one (the API)."""
    fields = {"func": func, "schedule_type": Schedule.MINUTES, "minutes": minutes, "repeats": -1}
    Schedule.objects.update_or_create(
        name=name, defaults=fields, create_defaults={**fields, "next_run": timezone.now()}
    )
