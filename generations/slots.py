"""A key's concurrency slots at Kinovi and the fair order in which queued videos get them.

Kinovi limits tasks in progress per account (a 429 says `limit`); the studio learns the limit
into `ApiKey.concurrency_limit` and sends no more than that at once, but for one probe: once
a minute (scaled) one submission beyond the limit is tried. A 429 costs nothing; accepted, it
shows the limit was raised (an upgraded account), and the learned limit rises with it. A task
whose outcome is doubtful (`unknown`, `stalled`) holds its slot only for a minute, then the
slot is tried again: a task that never existed must not throttle the team for the vendor's
whole window. Queued videos are dispatched round-robin by member, so one member's batch of
50 cannot starve a teammate.
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
# Seconds (scaled by KINOVI_POLL_TIME_SCALE) between probes above a learned limit, and the
# most a generation refused by that limit waits before it may be dispatched again.
PROBE_INTERVAL = 60.0
# Seconds (scaled) a doubtful task (unknown, stalled) holds its slot after it was submitted.
DOUBTFUL_HOLD = 60.0
# Tasks Kinovi accepted and has not finished, as far as the studio knows.
ACCEPTED_STATUSES = (Status.WAITING, Status.GENERATING)


def slot_holders(api_key_id: int, now=None):
    """Generations holding one of the key's concurrency slots at Kinovi.

    An unknown or stalled task may be running at Kinovi, or may never have existed: it holds
    its slot for DOUBTFUL_HOLD, then the slot is tried again (a 429 costs nothing and says
    whether it is really taken), so a phantom task cannot throttle a key for long.
    """
    now = now or timezone.now()
    recent = now - timedelta(seconds=DOUBTFUL_HOLD * polling.scale())
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


def probe_due(api_key: ApiKey, now=None) -> bool:
    """Whether one submission beyond the key's learned limit may be tried now. A limit an
    operator set (no probe time) is not probed until a 429 teaches one."""
    now = now or timezone.now()
    return (
        bool(api_key.concurrency_limit)
        and api_key.concurrency_probe_at is not None
        and api_key.concurrency_probe_at <= now
    )


def free_slots(api_key: ApiKey, now=None) -> int | None:
    """Slots the key has free now (one more while a probe is due); None while its limit is not
    known. A probe in flight holds a slot like any task, so there is one probe at a time."""
    if not api_key.concurrency_limit:
        return None
    limit = api_key.concurrency_limit + (1 if probe_due(api_key, now) else 0)
    return max(0, limit - slot_holders(api_key.pk, now).count())


def has_turn(generation: Generation, key: ApiKey) -> bool:
    """Whether the generation may take one of the key's slots now (the key's row is locked)."""
    free = free_slots(key)
    return free is None or generation.pk in fair_order(key.pk)[:free]


def probe_interval() -> timedelta:
    return timedelta(seconds=PROBE_INTERVAL * polling.scale())


def learn_limit(api_key_id: int, limit: int | None) -> bool:
    """What a 429 said the account's limit is (`limit`, else `current`); the next probe above
    it is a minute away. Whether a limit was learned."""
    if not limit:
        return False
    ApiKey.objects.filter(pk=api_key_id).update(
        concurrency_limit=limit, concurrency_probe_at=timezone.now() + probe_interval()
    )
    return True


def learn_from_acceptance(api_key_id: int) -> int | None:
    """A createTask was accepted: Kinovi holds at least the tasks it accepted that are still in
    flight here (submissions still waiting for their answer are not counted: they may meet a
    429). If that is more than the learned limit (a probe got through), the limit rises to it,
    and the next probe may go at once. The new limit, or None when it did not change."""
    in_flight = Generation.objects.filter(
        api_key_id=api_key_id, status__in=ACCEPTED_STATUSES
    ).count()
    raised = ApiKey.objects.filter(
        pk=api_key_id, concurrency_limit__isnull=False, concurrency_limit__lt=in_flight
    ).update(concurrency_limit=in_flight)
    return in_flight if raised else None


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
