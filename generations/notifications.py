"""The e-mail a creator gets when their generation ends (success, failure or rejection).

Sent through the configured e-mail backend (`EMAIL_URL`). On by default; a user switches it
off with `User.email_on_finish` (the accounts area adds that field and its toggle; until then
every creator gets the e-mail). The lifecycle calls `send_finished_email` once per terminal
transition, after the transaction commits (e.g. `transaction.on_commit(lambda: ...)` in
`lifecycle.apply_status`), passing the primary key only.
"""

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.urls import reverse

from generations.explain import explain_problem
from generations.models import Generation, Status

logger = logging.getLogger(__name__)

# Canceling is the user's own act: no e-mail for it.
NOTIFY_STATUSES = frozenset({Status.SUCCESS, Status.FAIL, Status.REJECTED})


def wants_email(user) -> bool:
    return bool(getattr(user, "email_on_finish", True)) and bool(user.email) and user.is_active


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
    send_mail(
        " ".join(subject.split()),
        body,
        settings.DEFAULT_FROM_EMAIL,
        [creator.email],
        fail_silently=False,
    )
    logger.info("finished e-mail sent for generation %s", generation.public_id)
    return True
