"""Idempotency-Key on createTask: one generation per (token, key) and body, for a day.

The record row is inserted first (concurrent inserts of one key meet the unique constraint,
and all but one fall back to reading the row), then locked for the whole creation: the
others wait on the lock and find the generation the first one made. A refused creation
leaves the row without a generation, so the script may retry (even with a corrected body).
"""

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from api.models import ApiToken, IdempotencyRecord
from generations.models import Generation

MAX_KEY_LENGTH = 255


class KeyReused(Exception):
    """The key was used with another body within the window."""


def body_hash(body, *extra) -> str:
    canonical = json.dumps([body, *extra], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def valid_key(key: str) -> bool:
    return 0 < len(key) <= MAX_KEY_LENGTH and key.isprintable()


def create_once(
    *, token: ApiToken, key: str, digest: str, create: Callable[[], Generation]
) -> tuple[Generation, bool]:
    """(the generation, whether it was made before) for this key; `create` runs at most once
    per key and body within the window."""
    record, _ = IdempotencyRecord.objects.get_or_create(
        token=token, key=key, defaults={"body_hash": digest}
    )
    with transaction.atomic():
        record = IdempotencyRecord.objects.select_for_update().get(pk=record.pk)
        now = timezone.now()
        expired = record.created_at < now - timedelta(hours=settings.API_IDEMPOTENCY_HOURS)
        if record.generation_id is not None and not expired:
            if record.body_hash != digest:
                raise KeyReused
            return Generation.objects.get(pk=record.generation_id), True
        generation = create()
        record.generation = generation
        record.body_hash = digest
        record.created_at = now
        record.save(update_fields=["generation", "body_hash", "created_at"])
    return generation, False


PRUNE_BATCH = 5000


def prune(*, now=None) -> int:
    """Deletes records past the window (the key may then be used again), a bounded batch."""
    cutoff = (now or timezone.now()) - timedelta(hours=settings.API_IDEMPOTENCY_HOURS)
    old = IdempotencyRecord.objects.filter(created_at__lt=cutoff).order_by("created_at")
    ids = list(old.values_list("pk", flat=True)[:PRUNE_BATCH])
    return IdempotencyRecord.objects.filter(pk__in=ids).delete()[0] if ids else 0
