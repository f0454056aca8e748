"""The e-mail a creator gets when their generation ends (success, failure or rejection).

Sent through the configured e-mail backend (`EMAIL_URL`). On by default; a user switches it
off with `User.email_on_finish` (the account settings page). `lifecycle.apply_status` calls
`finished` once, when a generation first reaches one of NOTIFY_STATUSES, after the transaction
commits: it enqueues `send_finished_emails` as a django-q2 job with the primary key only, or,
inside `one_job_for_many` (a poll batch finishing many videos), one job for all of them. The
job reads the switch when it runs, and a mail server that refuses is logged, never raised: the
video's fate does not depend on its e-mail. An e-mail whose job was never enqueued (a broker
that refused, a worker killed before the end of its batch) is enqueued by the sweeper's
`enqueue_unsent` a few minutes later.

django-q2 delivers a job at least once (a worker that dies after sending, a second cluster
picking up a timed-out package), so the job claims `Generation.finished_email_sent_at` with one
compare-and-set UPDATE before sending, and only the run that set it sends: at most one e-mail
per generation.
"""

import logging
import threading
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from generations import queue
from generations.explain import explain_problem
from generations.models import NOTIFY_STATUSES, Generation

logger = logging.getLogger(__name__)


# The sweeper's net: a generation that ended at least UNSENT_AFTER ago (its job had time to run)
# and at most UNSENT_WITHIN ago, creator willing, marker unset.
UNSENT_AFTER = timedelta(minutes=3)
UNSENT_WITHIN = timedelta(hours=1)
UNSENT_BATCH = 500

_collecting = threading.local()


def wants_email(user) -> bool:
    return user.email_on_finish and bool(user.email) and user.is_active


def finished(generation_id: int) -> None:
    """A generation just reached a notified status (called on commit by the lifecycle)."""
    collected = getattr(_collecting, "ids", None)
    if collected is not None:
        collected.append(generation_id)
    else:
        _enqueue([generation_id])


@contextmanager
def one_job_for_many():
    """The e-mails of the generations finished inside go out as one job, enqueued on exit.

    A poll batch that sees 25 videos finish would otherwise pay django-q2's enqueue, fetch,
    acknowledgement and result row 25 times over for its e-mails (bench/tracking.py).
    """
    if getattr(_collecting, "ids", None) is not None:
        yield  # already collecting: the outer scope enqueues
        return
    _collecting.ids = []
    try:
        yield
    finally:
        collected, _collecting.ids = _collecting.ids, None
        if collected:
            _enqueue(collected)


def _enqueue(generation_ids: list[int]) -> None:
    try:
        queue.finished_emails(generation_ids)
    except Exception:
        # Whoever applied the status (a poll, a webhook confirmation, an operator) must not
        # fail because of an e-mail; the sweeper enqueues it later (enqueue_unsent).
        logger.exception("could not enqueue the finished e-mails of %s", generation_ids)


def send_finished_emails(generation_ids: list[int]) -> int:
    """The e-mail job (tasks.send_finished_emails; jobs queued before it moved there still name
    this function): one e-mail per generation that still needs one; how many were sent."""
    return sum(send_finished_email(generation_id=pk) for pk in generation_ids)


def enqueue_unsent(now=None) -> list[int]:
    """The sweeper's net for e-mails whose job never ran; a job that runs twice sends once."""
    now = now or timezone.now()
    ids = list(
        Generation.objects.filter(
            status__in=NOTIFY_STATUSES,
            finished_email_sent_at__isnull=True,
            confirmed_at__range=(now - UNSENT_WITHIN, now - UNSENT_AFTER),
            # wants_email, as a query
            creator__email_on_finish=True,
            creator__is_active=True,
        )
        .exclude(creator__email="")
        .order_by("confirmed_at")
        .values_list("pk", flat=True)[:UNSENT_BATCH]
    )
    if ids:
        _enqueue(ids)
    return ids


def send_finished_email(*, generation_id: int) -> bool:
    """E-mail the creator that the generation ended; False when there was nothing to send."""
    generation = (
        Generation.objects.select_related("creator", "workspace").filter(pk=generation_id).first()
    )
    if generation is None or generation.status not in NOTIFY_STATUSES:
        return False
    creator = generation.creator
    if not wants_email(creator):
        return False
    context = {
        "g": generation,
        "user": creator,
        "url": settings.SITE_URL + reverse("generation_detail", args=[generation.public_id]),
        "problem": explain_problem(generation),
    }
    subject = render_to_string("generations/email/finished_subject.txt", context)
    body = render_to_string("generations/email/finished.txt", context)
    # Claimed right before sending, after everything that could fail for a reason of ours. A
    # worker killed between the claim and the send leaves the marker set and the e-mail unsent:
    # at most once, by design, as a second e-mail is what the user would notice.
    claimed_at = timezone.now()
    claimed = Generation.objects.filter(
        pk=generation.pk, finished_email_sent_at__isnull=True
    ).update(finished_email_sent_at=claimed_at)
    if not claimed:
        logger.info("finished e-mail for generation %s already sent", generation.public_id)
        return False
    try:
        send_mail(
            " ".join(subject.split()),
            body,
            settings.DEFAULT_FROM_EMAIL,
            [creator.email],
            fail_silently=False,
        )
    except Exception:
        # The mail server refused or was unreachable: release our own claim (not a newer one)
        # so an operator's re-run of the job can send. The risk is a duplicate when the server
        # took the message and then failed to say so, rarer than an e-mail lost for good. A job
        # that raises is only django-q2 bookkeeping: log which e-mail was lost and why, never
        # the address.
        Generation.objects.filter(pk=generation.pk, finished_email_sent_at=claimed_at).update(
            finished_email_sent_at=None
        )
        logger.warning(
            "finished e-mail for generation %s not sent", generation.public_id, exc_info=True
        )
        return False
    logger.info("finished e-mail sent for generation %s", generation.public_id)
    return True
