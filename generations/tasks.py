"""django-q2's entry points: each loads by primary key, calls the module that does the work,
and returns what came of it, in a structured log line. queue.py names these paths; keep them
(or an alias) as long as a queued job or a schedule may still name them.
"""

import functools
import time

from generations import budget, deliveries, notifications, submission, tracking
from generations import ticker as ticking
from generations.models import StatusEvent
from kinovi_site.logging import log_job


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


@_logged("generation.submit", "generation_id")
def submit_generation(generation_id: int) -> str:
    return submission.submit_generation(generation_id)


def poll_generation(generation_id: int, source: str = StatusEvent.Source.POLL) -> str:
    """recordInfo for one in-flight generation (a re-check asked for by a person)."""
    return tracking.poll_many([generation_id], source)[generation_id]


def poll_batch(generation_ids: list[int], source: str = StatusEvent.Source.POLL) -> dict:
    """The ticker's poll job: recordInfo for each of a batch of claimed generations."""
    return tracking.poll_many(generation_ids, source)


@_logged("webhook.confirm", "delivery_id")
def confirm_delivery(delivery_id: int) -> str:
    """Ask Kinovi whether what a webhook claimed is true, and apply Kinovi's answer."""
    return deliveries.confirm(delivery_id)


def ticker(seconds: float | None = None) -> str:
    return ticking.loop(seconds)


def sweep() -> dict:
    return ticking.sweep()


def send_finished_emails(generation_ids: list[int]) -> int:
    return notifications.send_finished_emails(generation_ids)


def send_due_budget_warnings() -> int:
    return budget.send_due_budget_warnings()
