"""Sending one queued generation to Kinovi: claim a slot, call createTask, record the answer.

The claim (queued → submitting, with the callback token's hash) is committed before
createTask is called, so a worker that dies mid-call leaves a row the sweeper turns into
`unknown`, never one that is sent twice. Only "nothing was sent" answers (a connect error,
a 429) put the generation back in the queue; anything that may have created a task is
`unknown` and is never resubmitted automatically.
"""

import logging
import secrets
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

import kinovi
from accounts.models import ApiKey, hash_token
from generations import deliveries, inputs, lifecycle, polling, retry, slots, vendor
from generations.models import Generation, Status, StatusEvent

logger = logging.getLogger(__name__)

Source = StatusEvent.Source
# A connect error (nothing sent) is retried this many times before the generation is rejected.
MAX_CONNECT_ATTEMPTS = 8


def submit_generation(generation_id: int) -> str:
    """Send one queued generation to Kinovi (createTask) and record what came of it."""
    generation = Generation.objects.select_related("api_key").filter(pk=generation_id).first()
    if generation is None or generation.status != Status.QUEUED:
        return "not queued"
    try:
        secret = generation.api_key.secret
    except Exception:  # a ciphertext that no key decrypts: never use it as-is
        logger.exception("generation %s: the API key does not decrypt", generation.public_id)
        _claim_and_reject(generation)
        return "key unreadable"
    claimed, callback_url = _claim(generation)
    if not claimed:
        return "waiting for a slot"
    generation.refresh_from_db()
    # Signed fresh for this call (they expire); made before anything is sent.
    materials = inputs.urls_for(generation)
    try:
        with vendor.client_for(secret) as client:
            task_id = client.create_task(
                prompt=generation.prompt,
                **generation.video_settings(),
                materials=materials,
                callback_url=callback_url,
            )
    except kinovi.KinoviError as exc:
        return vendor.record_answer(_create_failed, generation, exc)
    except Exception as exc:  # a bug or an unexpected transport error: the request may be out
        logger.exception("generation %s: createTask crashed", generation.public_id)
        unknown = kinovi.UnknownOutcome(f"createTask crashed: {exc!r}")
        return vendor.record_answer(_create_failed, generation, unknown)
    return vendor.record_answer(_create_accepted, generation, task_id)


@retry.retried
def _claim(generation: Generation) -> tuple[bool, str | None]:
    """queued → submitting if the key has a slot and it is this generation's turn.

    The callback token is made here and only its hash stored: the token itself lives only in
    this job, long enough to be sent to Kinovi.
    """
    with transaction.atomic():
        key = ApiKey.objects.select_for_update(no_key=True).get(pk=generation.api_key_id)
        if not key.is_usable:
            _cancel_for_dead_key(generation, key)
            return False, None
        if not slots.has_turn(generation, key):
            # Due again at once (not after a dispatcher's claim lease): the dispatcher sends it
            # as soon as a slot frees and its turn comes.
            Generation.objects.filter(
                pk=generation.pk, status=Status.QUEUED, next_poll_at__gt=timezone.now()
            ).update(next_poll_at=timezone.now())
            return False, None
        token = secrets.token_urlsafe(32)
        callback_url = vendor.callback_url_for(generation, token)
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
                # A 429 or a connect error noted while it waited is behind it now.
                "error_code": "",
                "error_message": "",
            },
        )
        return outcome.changed, callback_url


def _cancel_for_dead_key(generation: Generation, key: ApiKey) -> None:
    reason = "was revoked" if key.revoked_at is not None else "was refused by Kinovi"
    message = f"The API key {reason} before this video was sent; nothing was charged."
    lifecycle.apply_status(
        generation_id=generation.pk,
        status=Status.CANCELED,
        expect=Status.QUEUED,
        source=Source.SUBMIT,
        detail=message,
        error_message=message,
    )


def _claim_and_reject(generation: Generation) -> None:
    outcome = lifecycle.apply_status(
        generation_id=generation.pk,
        status=Status.SUBMITTING,
        expect=Status.QUEUED,
        source=Source.SUBMIT,
        next_poll_at=None,
    )
    if outcome.changed:
        _reject(
            generation.pk,
            vendor.Refusal(
                Status.REJECTED,
                vendor.KEY_UNREADABLE,
                "The API key cannot be read; an operator must re-enter it.",
            ),
        )


def _reject(generation_id: int, refusal: vendor.Refusal) -> None:
    lifecycle.apply_status(
        generation_id=generation_id,
        status=Status.REJECTED,
        source=Source.SUBMIT,
        detail=refusal.message[:500],
        error_code=refusal.code,
        error_message=refusal.message,
        error_detail=refusal.detail,
    )


def _back_to_queue(generation_id: int, *, delay: float, detail: str, code: str) -> None:
    lifecycle.apply_status(
        generation_id=generation_id,
        status=Status.QUEUED,
        expect=Status.SUBMITTING,
        source=Source.SUBMIT,
        detail=detail[:500],
        error_code=code,
        error_message=detail,
        next_poll_at=timezone.now() + timedelta(seconds=delay),
    )


def backoff(attempts: int) -> float:
    return min(300.0, 5.0 * 2 ** max(0, attempts - 1)) * polling.scale()


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
    raised = slots.learn_from_acceptance(generation.api_key_id)
    if raised:
        logger.info("key %s: Kinovi accepted %d tasks at once", generation.api_key_id, raised)
    deliveries.resolve_early(generation.pk)
    return f"submitted {task_id}" if outcome.changed else f"late answer {task_id}"


def _create_failed(generation: Generation, exc: kinovi.KinoviError) -> str:
    if isinstance(exc, kinovi.ConcurrencyLimited):
        return _concurrency_limited(generation, exc)
    if (
        isinstance(exc, kinovi.KinoviUnavailable)
        and generation.submit_attempts < MAX_CONNECT_ATTEMPTS
    ):
        delay = backoff(generation.submit_attempts)
        _back_to_queue(
            generation.pk,
            delay=delay,
            detail=f"{exc.message} Retrying in {delay:.0f} s.",
            code=vendor.UNREACHABLE,
        )
        return "unavailable"
    refusal = vendor.refusal_for(exc, attempts=generation.submit_attempts)
    if refusal.status == Status.UNKNOWN:
        lifecycle.apply_status(
            generation_id=generation.pk,
            status=Status.UNKNOWN,
            expect=Status.SUBMITTING,
            source=Source.SUBMIT,
            detail=refusal.message[:500],
            error_code=refusal.code,
            error_message=refusal.message,
            next_poll_at=None,
        )
        deliveries.resolve_early(generation.pk)
        return "unknown outcome"
    key_problem = vendor.key_refusal(exc)
    if key_problem:
        ApiKey.objects.filter(pk=generation.api_key_id).update(
            status=ApiKey.Status.INVALID, status_detail=key_problem[:300]
        )
    _reject(generation.pk, refusal)
    return _OUTCOMES.get(refusal.code, "refused")


_OUTCOMES = {
    vendor.UNREACHABLE: "gave up",
    vendor.KEY_REFUSED: "key refused",
    vendor.NO_API_ACCESS: "key refused",
    vendor.NO_CREDITS: "insufficient credits",
    vendor.INVALID: "invalid request",
}


def _concurrency_limited(generation: Generation, exc: kinovi.ConcurrencyLimited) -> str:
    learned = slots.learn_limit(generation.api_key_id, exc.limit or exc.current)
    delay = exc.retry_after if exc.retry_after is not None else backoff(1)
    if learned:
        # The learned limit keeps it from being sent beyond the limit; waiting longer than
        # until the next probe would only hide a raised limit from it.
        delay = min(delay, slots.probe_interval().total_seconds())
    _back_to_queue(
        generation.pk,
        delay=min(delay, 120.0),
        detail=f"429 from Kinovi (limit {exc.limit}, in progress {exc.current}); "
        f"retrying in {delay:.0f} s",
        code=vendor.CONCURRENCY,
    )
    return "concurrency limited"
