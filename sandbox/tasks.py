"""Background work of the sandbox vendor: completion webhooks, sent from the django-q2 cluster.

`send_due_webhooks` is called by the lifecycle ticker (generations/tasks.py) about every second
while settings.KINOVI_SANDBOX is on, so it must cost one indexed query when nothing is due.
"""

import logging
from datetime import timedelta

import requests
from django.db import transaction
from django.utils import timezone

from sandbox import services
from sandbox.media import RenderFailed, ensure_rendered
from sandbox.models import SandboxTask

logger = logging.getLogger(__name__)

# Seconds to wait before the 2nd, 3rd and 4th attempt; after the last one the sandbox gives up.
RETRY_DELAYS = (1, 3, 10)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
# A claimed delivery is not picked up by another cluster for this long, even if its sender died.
LEASE = timedelta(seconds=30)
TIMEOUT = (2.0, 5.0)


def send_due_webhooks(*, limit: int = 20) -> int:
    """POST the completion envelope for every ended task whose webhook is due; returns how
    many deliveries succeeded. Safe to run in several processes at once."""
    now = timezone.now()
    if not SandboxTask.objects.filter(webhook_due_at__lte=now).exists():
        return 0
    services.settle_finished(now=now)
    with transaction.atomic():
        claimed = list(
            SandboxTask.objects.select_for_update(skip_locked=True)
            .filter(webhook_due_at__lte=now)
            .order_by("webhook_due_at", "id")[:limit]
        )
        for task in claimed:
            task.webhook_due_at = now + LEASE
            task.webhook_attempts += 1
        SandboxTask.objects.bulk_update(claimed, ["webhook_due_at", "webhook_attempts"])
    delivered = 0
    with requests.Session() as session:
        for task in claimed:
            delivered += _deliver(task, session)
    return delivered


def _deliver(task: SandboxTask, session: requests.Session) -> int:
    outcome = None
    try:
        if task.outcome == SandboxTask.Outcome.SUCCESS:
            ensure_rendered(task)
        response = session.post(
            task.callback_url,
            json=services.webhook_body(task),
            headers={"User-Agent": "Kinovi-Sandbox-Webhook/1"},
            timeout=TIMEOUT,
            allow_redirects=False,
        )
        outcome = f"HTTP {response.status_code}"
        ok = 200 <= response.status_code < 300
    except (requests.RequestException, RenderFailed) as exc:
        outcome = type(exc).__name__
        ok = False
    now = timezone.now()
    mine = SandboxTask.objects.filter(pk=task.pk, webhook_attempts=task.webhook_attempts)
    if ok:
        mine.update(webhook_due_at=None, webhook_delivered_at=now, webhook_last_status=outcome)
        return 1
    if task.webhook_attempts >= MAX_ATTEMPTS:
        logger.warning("Sandbox webhook for %s given up: %s", task.task_id, outcome)
        mine.update(webhook_due_at=None, webhook_last_status=f"gave up after {outcome}")
    else:
        delay = RETRY_DELAYS[task.webhook_attempts - 1]
        mine.update(webhook_due_at=now + timedelta(seconds=delay), webhook_last_status=outcome)
    return 0
