"""A key's concurrency slots at Kinovi and the fair order in which queued videos get them.

Kinovi limits tasks in progress per account (a 429 says `limit`); the studio learns the limit
into `ApiKey.concurrency_limit` and never sends more than that at once. Queued videos are
dispatched round-robin by member, so one member's batch of 50 cannot starve a teammate.
"""

from collections import Counter
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import ApiKey
from generations import polling, retry
from generations.models import DOUBTFUL_STATUSES, SLOT_STATUSES, Generation, Status

# A claimed submission is not claimed again for this long, even if its job is lost.
CLAIM_LEASE = timedelta(seconds=120)
# Per key and tick, at most this many submissions are started when the key's limit is unknown.
UNKNOWN_LIMIT_BATCH = 10


def slot_holders(api_key_id: int, now=None):
    """Generations holding one of the key's concurrency slots at Kinovi.

    An unknown or stalled task may still be running at Kinovi for a while, then surely is not:
    they count for the vendor's window only, so one lost answer cannot block a key forever.
    """
    now = now or timezone.now()
    recent = now - timedelta(seconds=polling.VENDOR_STUCK_WINDOW * polling.scale())
    return Generation.objects.filter(api_key_id=api_key_id).filter(
        Q(status__in=SLOT_STATUSES) | Q(status__in=DOUBTFUL_STATUSES, submitted_at__gte=recent)
    )


def fair_order(api_key_id: int, now=None) -> list[int]:
    """Queued generations of a key in the order they should get slots: round-robin by member.

    A member's n-th waiting video ranks behind every teammate's first ones, counting what each
    member already has in flight; within a member, oldest first.
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
    """Slots the key has free now; None while its limit is not known."""
    if not api_key.concurrency_limit:
        return None
    return max(0, api_key.concurrency_limit - slot_holders(api_key.pk, now).count())


def has_turn(generation: Generation, key: ApiKey) -> bool:
    """Whether the generation may take one of the key's slots now (the key's row is locked)."""
    free = free_slots(key)
    return free is None or generation.pk in fair_order(key.pk)[:free]


def learn_limit(api_key_id: int, limit: int | None) -> None:
    """What a 429 said the account's limit is (`limit`, else `current`)."""
    if limit:
        ApiKey.objects.filter(pk=api_key_id).update(concurrency_limit=limit)


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
        chosen.extend(_dispatch_key(key_id, now))
    return chosen


@retry.retried
def _dispatch_key(key_id: int, now) -> list[int]:
    with transaction.atomic():
        key = (
            ApiKey.objects.select_for_update(no_key=True, skip_locked=True)
            .filter(pk=key_id)
            .first()
        )
        if key is None:
            return []  # a submit job or another ticker is deciding for this key right now
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
            # The head of the fair order keeps its place even while it backs off or its job
            # is on the way: the slots are its, and nobody overtakes it.
            due = [pk for pk in order[:free] if pk in due_ids]
        Generation.objects.filter(pk__in=due).update(next_poll_at=now + CLAIM_LEASE)
    return due
