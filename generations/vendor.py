"""Kinovi as the jobs meet it: a client for a key, asking about a task, callback URLs, and the
one table that turns a refused createTask into a status, a stored code and a user message.

`explain.py` reads the stored codes; nothing else writes user-facing words about Kinovi's
refusals.
"""

import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

import kinovi
from accounts.models import ApiKey
from generations.models import POLLABLE_STATUSES, Generation, Status

logger = logging.getLogger(__name__)


def client_for(secret: str) -> kinovi.KinoviClient:
    """The one way jobs reach Kinovi (tests swap it for a client that does not really sleep)."""
    return kinovi.KinoviClient(secret)


def ask(generation: Generation, task_id: str) -> kinovi.TaskInfo:
    """recordInfo for `task_id` with the generation's key, counted on the generation."""
    Generation.objects.filter(pk=generation.pk).update(poll_count=F("poll_count") + 1)
    with client_for(generation.api_key.secret) as client:
        return client.record_info(task_id)


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


def callback_url_for(generation: Generation, token: str) -> str | None:
    """The URL Kinovi should call when the task ends, or None when Kinovi cannot reach us."""
    if not settings.KINOVI_CALLBACKS:
        return None
    path = reverse("kinovi-webhook", args=[generation.public_id, token])
    return f"{settings.SITE_URL}{path}"


# --- refusals ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """What a createTask error means here: the status it leads to, the code stored on the
    generation (explain.py reads it), the message shown, and details for the page."""

    status: str
    code: str
    message: str
    detail: dict | None = None


# Codes stored on a generation that Kinovi refused before anything was created (`rejected`),
# each with what happened. The HTTP status is the code where there is one.
KEY_REFUSED = "401"
NO_API_ACCESS = "403"
NO_CREDITS = "402"
INVALID = "400"
UNREACHABLE = "unreachable"
UNKNOWN = "unknown"
REFUSED = "refused"
KEY_UNREADABLE = "key-unreadable"
CONCURRENCY = "429"


def refusal_for(exc: kinovi.KinoviError, *, attempts: int = 0) -> Refusal:
    """The one mapping from a createTask error to what the studio records and says."""
    if isinstance(exc, kinovi.UnknownOutcome):
        # A 5xx, a read timeout, a reset after sending or a malformed 200: a task may exist and
        # be charged, so the reserve is written and nothing is resent.
        return Refusal(Status.UNKNOWN, UNKNOWN, exc.message)
    if isinstance(exc, kinovi.KinoviUnavailable):
        return Refusal(
            Status.REJECTED,
            UNREACHABLE,
            f"Kinovi could not be reached after {attempts} attempts; nothing was sent and "
            "nothing charged.",
        )
    if isinstance(exc, kinovi.AuthenticationFailed):
        return Refusal(
            Status.REJECTED, KEY_REFUSED, "Kinovi refused the API key (401). Nothing was charged."
        )
    if isinstance(exc, kinovi.AccessNotEnabled):
        return Refusal(
            Status.REJECTED,
            NO_API_ACCESS,
            "API access is not enabled for this Kinovi account (403). Nothing was charged.",
        )
    if isinstance(exc, kinovi.InsufficientCredits):
        return _no_credits(exc)
    if isinstance(exc, kinovi.InvalidRequest):
        return Refusal(
            Status.REJECTED,
            INVALID,
            f"Kinovi refused the parameters (400): {exc.message}",
            {"errors": exc.errors},
        )
    return Refusal(
        Status.REJECTED,
        str(exc.status_code) if exc.status_code else REFUSED,
        f"Kinovi refused the request: {exc.message}",
    )


def _no_credits(exc: kinovi.InsufficientCredits) -> Refusal:
    needs = (
        f" It needs {exc.required} credits and the account has {exc.available}."
        if exc.required is not None and exc.available is not None
        else ""
    )
    return Refusal(
        Status.REJECTED,
        NO_CREDITS,
        f"The Kinovi account has too few credits (402).{needs} Nothing was charged.",
        {"required": exc.required, "available": exc.available},
    )


def key_refusal(exc: kinovi.KinoviError) -> str | None:
    """Why the key itself is unusable (stored on the key), or None for any other error."""
    if isinstance(exc, kinovi.AuthenticationFailed):
        return "Kinovi refused the key (401)"
    if isinstance(exc, kinovi.AccessNotEnabled):
        return "API access is not enabled for this Kinovi account (403)"
    return None


def refuse_key(api_key_id: int, exc: kinovi.KinoviError) -> None:
    """recordInfo was refused (401) with this key: mark it refused, which pauses the polls of
    all its in-flight generations (tracking.claim_due_polls skips a refused key's), and make
    them due at once, so each is asked about as soon as the key is verified again."""
    ApiKey.objects.filter(pk=api_key_id).update(
        status=ApiKey.Status.INVALID, status_detail=(key_refusal(exc) or str(exc))[:300]
    )
    Generation.objects.filter(api_key_id=api_key_id, status__in=POLLABLE_STATUSES).update(
        next_poll_at=timezone.now()
    )
