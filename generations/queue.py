"""The only module that names django-q2 job paths: every job and schedule is enqueued here.

Jobs take primary keys, never a key's secret. Callers inside a transaction enqueue with
`after_commit`, so a job never runs before the rows it needs are visible; outside one, Django
runs the callback at once. Every path below is a function of generations/tasks.py, whose
entry points stay put (or stay as aliases) because queued jobs and schedules store them.
"""

import math

from django.conf import settings
from django.db import transaction
from django_q.brokers import get_broker
from django_q.tasks import async_task

SUBMIT = "generations.tasks.submit_generation"
POLL = "generations.tasks.poll_generation"
POLL_BATCH_JOB = "generations.tasks.poll_batch"
CONFIRM = "generations.tasks.confirm_delivery"
TICKER = "generations.tasks.ticker"
SWEEP = "generations.tasks.sweep"
FINISHED_EMAILS = "generations.tasks.send_finished_emails"
BUDGET_WARNINGS = "generations.tasks.send_due_budget_warnings"

# name: (job, every N minutes). The ticker's schedule is only a watchdog that starts a loop
# when none holds the lease (ticker.py).
SCHEDULES = {
    "kinovi ticker": (TICKER, 1),
    "kinovi sweeper": (SWEEP, 1),
    "budget warnings": (BUDGET_WARNINGS, 5),
}
# One poll job asks about up to this many generations (tracking.py).
POLL_BATCH = 25


def enqueue(func: str, *args) -> None:
    """The one call into django-q2 (tests swap it to run jobs inline)."""
    async_task(func, *args)


def after_commit(func: str, *args) -> None:
    transaction.on_commit(lambda: enqueue(func, *args))


def submit(generation_id: int) -> None:
    enqueue(SUBMIT, generation_id)


def poll(generation_id: int, source: str = "poll") -> None:
    enqueue(POLL, generation_id, source)


def polls(generation_ids: list[int]) -> None:
    """Claimed polls as batch jobs, spread over the workers when there are few of them."""
    if not generation_ids:
        return
    workers = settings.Q_CLUSTER["workers"]
    size = max(1, min(POLL_BATCH, math.ceil(len(generation_ids) / workers)))
    for start in range(0, len(generation_ids), size):
        enqueue(POLL_BATCH_JOB, generation_ids[start : start + size])


def confirm(delivery_id: int) -> None:
    enqueue(CONFIRM, delivery_id)


def start_ticker() -> None:
    enqueue(TICKER)


def finished_emails(generation_ids: list[int]) -> None:
    # Straight to django-q2, not through `enqueue`: tests that run jobs inline still see the
    # e-mail jobs wait in the broker, as the sweeper's net expects them to.
    async_task(FINISHED_EMAILS, generation_ids)


def waiting_jobs() -> int:
    """How many jobs the broker holds, not yet taken by a worker."""
    return get_broker().queue_size() or 0
