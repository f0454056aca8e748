"""Stored webhook deliveries: judge what each claims, confirm it with recordInfo, apply that.

Kinovi signs nothing, so a body proves nothing: the per-generation URL token only says the
sender knew the URL. Nothing from the body is applied; a credible delivery triggers a
recordInfo (with our key) whose answer goes through the state machine like any poll.
"""

import json

from django.db import transaction
from django.utils import timezone

import kinovi
from generations import lifecycle, queue, retry, vendor
from generations.models import HELD_STATUSES, Generation, Status, StatusEvent, WebhookDelivery

Outcome = WebhookDelivery.Outcome
# Once a generation has ended, a late delivery is stored only while the generation has fewer
# deliveries than this (enough for the audit of Kinovi's repeats); beyond, it is only counted,
# so repeats (or a leaked URL) cannot fill the table.
DELIVERIES_KEPT = 10


def storable(text: str) -> str:
    """Text PostgreSQL can hold: an attacker's NUL characters or lone surrogates would
    otherwise make storing the delivery itself fail (a 500, and no audit trail)."""
    return text.encode("utf-8", errors="replace").decode("utf-8").replace("\x00", "\ufffd")


def finish(delivery: WebhookDelivery, outcome: str, error: str = "") -> WebhookDelivery:
    delivery.outcome = outcome
    delivery.error = storable(error[:500])
    delivery.processed_at = timezone.now()
    delivery.save(update_fields=["outcome", "error", "processed_at"])
    return delivery


def keep_late(generation: Generation, fields: dict) -> WebhookDelivery | None:
    """Store a delivery that came after the generation's end, as a duplicate never judged or
    confirmed, unless the generation holds DELIVERIES_KEPT deliveries already (then: None)."""
    with transaction.atomic():
        # The generation's row lock makes concurrent late deliveries count one after another.
        Generation.objects.select_for_update(no_key=True).filter(pk=generation.pk).values_list(
            "pk"
        ).first()
        if WebhookDelivery.objects.filter(generation_id=generation.pk).count() >= DELIVERIES_KEPT:
            return None
        return WebhookDelivery.objects.create(
            generation_id=generation.pk,
            outcome=Outcome.DUPLICATE,
            error=f"After the end ({generation.status}): answered 2xx, not checked again.",
            processed_at=timezone.now(),
            **fields,
        )


@retry.retried
def judge(delivery: WebhookDelivery) -> WebhookDelivery:
    """Decide what a stored delivery means; a credible one gets a recordInfo confirmation."""
    try:
        info = kinovi.parse_webhook(json.loads(delivery.body))
    except RecursionError:
        # json.loads recurses once per nesting level: a 64 KiB body of brackets exceeds it.
        return finish(delivery, Outcome.REJECTED, "Not the documented webhook body: too deep.")
    except (ValueError, kinovi.MalformedResponse) as exc:
        return finish(delivery, Outcome.REJECTED, f"Not the documented webhook body: {exc}")
    delivery.claimed_task_id = storable(info.task_id[:100])
    delivery.claimed_status = storable(info.status[:12])
    delivery.error = ""
    delivery.save(update_fields=["claimed_task_id", "claimed_status", "error"])
    if delivery.generation_id is None:
        return finish(delivery, Outcome.REJECTED, "Not addressed to any generation.")

    with transaction.atomic():
        # Under the generation's lock: the submit job saves the task id under the same lock,
        # so a delivery is either judged with the task id or found by resolve_early after it.
        generation = Generation.objects.select_for_update(no_key=True).get(
            pk=delivery.generation_id
        )
        if generation.is_terminal:
            return finish(delivery, Outcome.DUPLICATE, f"Already {generation.status}.")
        if generation.task_id:
            if info.task_id != generation.task_id:
                # Misaddressed, or Kinovi's own news about our task under a wrong id: ask soon.
                lifecycle.hurry(generation_id=generation.pk)
                return finish(
                    delivery,
                    Outcome.REJECTED,
                    f"Names task {info.task_id[:60]}, but this generation's task is "
                    f"{generation.task_id}.",
                )
        elif generation.status in HELD_STATUSES:
            return finish(delivery, Outcome.EARLY, "Arrived before the task id was known.")
        elif (
            generation.status == Status.UNKNOWN
            and Generation.objects.filter(task_id=info.task_id).exists()
        ):
            return finish(delivery, Outcome.REJECTED, "Names a task of another generation.")
        pending = (
            WebhookDelivery.objects.filter(
                generation=generation,
                outcome=Outcome.RECEIVED,
                claimed_status=info.status,
                processed_at__isnull=True,
            )
            .exclude(pk=delivery.pk)
            .exists()
        )
        if pending:
            return finish(delivery, Outcome.DUPLICATE, "Same claim as a delivery being checked.")
        delivery.outcome = Outcome.RECEIVED
        delivery.processed_at = None
        delivery.save(update_fields=["outcome", "processed_at"])
        transaction.on_commit(lambda: queue.confirm(delivery.pk))
    return delivery


def confirm(delivery_id: int) -> str:
    """The confirmation job: recordInfo for the task, applied as a webhook-sourced status."""
    delivery = (
        WebhookDelivery.objects.select_related("generation__api_key")
        .filter(pk=delivery_id, outcome=Outcome.RECEIVED, processed_at__isnull=True)
        .first()
    )
    if delivery is None or delivery.generation is None:
        return "nothing to confirm"
    generation = delivery.generation
    if generation.is_terminal:
        finish(delivery, Outcome.DUPLICATE, f"Already {generation.status}.")
        return "duplicate"
    if generation.is_paused:
        # Every call with the key is refused: polling resumes (and asks) once it works again.
        _unconfirmed(delivery, "Kinovi refused this video's key; checked once the key works.")
        return "key refused"
    adopting = not generation.task_id
    task_id = generation.task_id or delivery.claimed_task_id
    try:
        info = vendor.ask(generation, task_id)
    except (kinovi.NotFound, kinovi.AccessNotEnabled, kinovi.InvalidRequest) as exc:
        finish(delivery, Outcome.REJECTED, f"Kinovi does not know that task for our key: {exc}")
        lifecycle.hurry(generation_id=generation.pk)
        return "rejected"
    except kinovi.KinoviError as exc:
        # Unconfirmed: leave it to the poller, sooner than its cadence would (bounded).
        lifecycle.hurry(generation_id=generation.pk)
        _unconfirmed(delivery, f"Confirmation failed ({exc}); the poller will check.")
        return "confirmation failed"
    if info.task_id != task_id:
        finish(delivery, Outcome.REJECTED, "Kinovi answered about another task.")
        lifecycle.hurry(generation_id=generation.pk)
        return "rejected"
    # For an unknown generation this answer is the only way out of `unknown` (nothing polls a
    # task id we never learned), so a dropped database connection must not lose it.
    return vendor.record_answer(_apply_confirmed, delivery, info, task_id if adopting else None)


def _unconfirmed(delivery: WebhookDelivery, error: str) -> None:
    # Still "received" (unconfirmed), but no longer pending: a later delivery is judged anew.
    delivery.error = error[:500]
    delivery.processed_at = timezone.now()
    delivery.save(update_fields=["error", "processed_at"])


def _apply_confirmed(delivery: WebhookDelivery, info: kinovi.TaskInfo, adopt: str | None) -> str:
    generation = delivery.generation
    outcome = lifecycle.apply_info(
        generation_id=generation.pk,
        info=info,
        source=StatusEvent.Source.WEBHOOK,
        detail=f"callback (delivery {delivery.pk}) confirmed: Kinovi says {info.status}",
        task_id=adopt,
    )
    claimed = delivery.claimed_status
    if info.status != claimed:
        finish(
            delivery,
            Outcome.IGNORED,
            f"The callback claimed {claimed} but Kinovi says {info.status}.",
        )
        # Sent before Kinovi's status changed, most likely: ask again in a few seconds.
        lifecycle.hurry(generation_id=generation.pk)
    elif outcome.changed:
        finish(delivery, Outcome.APPLIED)
    else:
        finish(delivery, Outcome.DUPLICATE, f"Already {outcome.generation.status}.")
    return delivery.outcome


def resolve_early(generation_id: int) -> int:
    """Judge again the deliveries that came before the task id (or its absence) was known."""
    early = list(WebhookDelivery.objects.filter(generation_id=generation_id, outcome=Outcome.EARLY))
    for delivery in early:
        judge(delivery)
    return len(early)


def resolve_all_early() -> int:
    """Sweeper's net: early deliveries whose generation has moved on since."""
    ids = set(
        WebhookDelivery.objects.filter(outcome=Outcome.EARLY)
        .exclude(generation__status__in=HELD_STATUSES)
        .values_list("generation_id", flat=True)
    )
    return sum(resolve_early(pk) for pk in ids if pk is not None)
