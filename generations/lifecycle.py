"""The one state machine: a status seen by anyone (submit, poll, webhook, operator, sweeper).

`apply_status` locks the generation's row, refuses regressions, records a StatusEvent, stores
what the vendor said, and writes the ledger rows of the transition in the same transaction.
Ledger rows are checked for under that lock, so the (generation, kind) unique constraint is
a second net that never has to fire.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from generations import locks, notifications, polling, retry
from generations.models import (
    NOTIFY_STATUSES,
    POLLABLE_STATUSES,
    RESERVED_STATUSES,
    TERMINAL_STATUSES,
    CreditEntry,
    Generation,
    Status,
    StatusEvent,
)
from kinovi import TaskInfo, TaskStatus

logger = logging.getLogger(__name__)

S = Status
# Where each status may go. Nothing leaves a terminal state; generating never goes back to
# waiting; submitting may fall back to queued only on a 429 or a connect error (nothing sent);
# unknown is resolved by a callback or an operator; stalled may still finish.
ALLOWED: dict[str, frozenset[str]] = {
    S.QUEUED: frozenset({S.SUBMITTING, S.CANCELED}),
    S.SUBMITTING: frozenset({S.QUEUED, S.WAITING, S.GENERATING, S.REJECTED, S.UNKNOWN}),
    S.WAITING: frozenset({S.GENERATING, S.SUCCESS, S.FAIL, S.STALLED}),
    S.GENERATING: frozenset({S.SUCCESS, S.FAIL, S.STALLED}),
    # rejected: an operator found that Kinovi never created the task (the reserve is refunded).
    S.UNKNOWN: frozenset({S.WAITING, S.GENERATING, S.SUCCESS, S.FAIL, S.REJECTED}),
    S.STALLED: frozenset({S.GENERATING, S.SUCCESS, S.FAIL}),
}
# Kinovi's task statuses, as recordInfo reports them, and ours for each.
VENDOR_STATUSES = {
    TaskStatus.WAITING: S.WAITING,
    TaskStatus.GENERATING: S.GENERATING,
    TaskStatus.SUCCESS: S.SUCCESS,
    TaskStatus.FAIL: S.FAIL,
}


# Statuses whose transition may write ledger rows (_write_ledger).
LEDGER_STATUSES = RESERVED_STATUSES | {S.REJECTED}


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET = _Unset()


@dataclass
class Outcome:
    generation: Generation
    changed: bool
    from_status: str
    refused: str = ""


@retry.retried
def apply_status(
    *,
    generation_id: int,
    status: str,
    source: str,
    detail: str = "",
    expect: str | None = None,
    info: TaskInfo | None = None,
    task_id: str | None = None,
    error_code: str = "",
    error_message: str = "",
    error_detail: dict | None = None,
    next_poll_at: datetime | None | _Unset = UNSET,
    fields: dict | None = None,
) -> Outcome:
    """Apply `status` seen by `source`; refused transitions change nothing but the poll time.

    `expect` makes it a compare-and-set (e.g. queued → submitting only from queued). `info` is
    recordInfo's answer (outputs, errors, credits, times). `fields` are extra columns written
    only when the transition happens (e.g. the callback token hash). `next_poll_at` defaults to
    the polling cadence while the generation stays in flight.
    """
    with transaction.atomic():
        if status in LEDGER_STATUSES:
            # Its ledger rows point at the workspace and the key: their share locks first, in
            # the documented order, not late at COMMIT (docs/LOCKS.md).
            locks.share_parents(generation_id)
        generation = Generation.objects.select_for_update(no_key=True).get(pk=generation_id)
        from_status = generation.status
        now = timezone.now()
        refused = _refusal(generation, status, expect=expect, task_id=task_id)
        changed = not refused
        update: set[str] = set()
        if changed:
            update |= _change(generation, status, now, task_id=task_id, fields=fields or {})
            if error_code or error_message or error_detail:
                generation.error_code = error_code[:50]
                generation.error_message = error_message
                generation.error_detail = error_detail or {}
                update |= {"error_code", "error_message", "error_detail"}
        if info is not None and (changed or generation.status in POLLABLE_STATUSES):
            update |= _store_info(generation, info)
        update |= _schedule(generation, now, next_poll_at)
        generation.save(update_fields=sorted(update))
        if changed:
            _record(generation, from_status, source, detail, now)
        return Outcome(generation, changed, from_status, refused)


def _refusal(generation: Generation, status: str, *, expect, task_id) -> str:
    """Why `status` may not be applied now ("" when it may)."""
    from_status = generation.status
    if expect is not None and from_status != expect:
        return f"expected {expect}, found {from_status}"
    if task_id and generation.task_id and generation.task_id != task_id:
        return f"task {task_id} is not this generation's task"
    if status == from_status:
        return "no change"
    if status not in ALLOWED.get(from_status, frozenset()):
        return f"{from_status} cannot become {status}"
    return ""


def _change(generation: Generation, status: str, now, *, task_id, fields: dict) -> set[str]:
    from_status = generation.status
    generation.status = status
    update = {"status"}
    if task_id and not generation.task_id:
        generation.task_id = task_id
        update.add("task_id")
    for name, value in fields.items():
        setattr(generation, name, value)
        update.add(name)
    return update | _record_times(generation, from_status, now)


def _schedule(generation: Generation, now, next_poll_at) -> set[str]:
    """The next poll (none once terminal), and the confirmation that ends the callback URL."""
    update = {"next_poll_at"}
    if generation.status in TERMINAL_STATUSES:
        generation.next_poll_at = None
        if generation.confirmed_at is None:
            # Decided locally (rejected, canceled) or read from recordInfo: either way
            # nothing more is expected: later deliveries are answered as duplicates, unjudged.
            generation.confirmed_at = now
            update.add("confirmed_at")
    elif next_poll_at is not UNSET:
        generation.next_poll_at = next_poll_at
    elif generation.status in POLLABLE_STATUSES and generation.task_id:
        generation.next_poll_at = polling.next_poll_at(generation, now)
    return update


def _record(generation: Generation, from_status: str, source: str, detail: str, now) -> None:
    """The event row, the ledger rows and the e-mail of a transition that happened."""
    status = generation.status
    StatusEvent.objects.create(
        generation=generation,
        from_status=from_status,
        to_status=status,
        source=source,
        detail=detail[:500],
        created_at=now,
    )
    _write_ledger(generation, now)
    logger.info("generation %s: %s -> %s (%s)", generation.public_id, from_status, status, source)
    if status in NOTIFY_STATUSES:
        # Terminal states are never left, so this runs once per generation. robust: a failure
        # there is logged, never raised into whoever applied the status (a poll, a webhook
        # confirmation, an operator).
        transaction.on_commit(lambda pk=generation.pk: notifications.finished(pk), robust=True)


def apply_info(
    *,
    generation_id: int,
    info: TaskInfo,
    source: str,
    detail: str = "",
    task_id=None,
    seen: Generation | None = None,
) -> Outcome:
    """recordInfo's answer for the generation's task, mapped to our status and applied.

    `seen` is the row as the caller read it before asking. Most polls hear that nothing has
    changed since: then only the poll time moves, by one UPDATE guarded on that status, with
    no lock, event or ledger work (bench/tracking.py). If the status moved meanwhile, the
    answer is applied in full like any other.
    """
    status = VENDOR_STATUSES[info.status]
    if (
        seen is not None
        and seen.pk == generation_id
        and status == seen.status
        and status in POLLABLE_STATUSES
        and task_id in (None, seen.task_id)
        and info.task_id == seen.task_id
    ):
        now = timezone.now()
        seen.next_poll_at = polling.next_poll_at(seen, now)
        if Generation.objects.filter(pk=generation_id, status=status).update(
            next_poll_at=seen.next_poll_at
        ):
            return Outcome(seen, False, status, "no change")
    error_code = error_message = ""
    if info.error is not None and status == S.FAIL:
        error_code, error_message = info.error.code, info.error.message
    return apply_status(
        generation_id=generation_id,
        status=status,
        source=source,
        detail=detail or f"Kinovi says {info.status}",
        info=info,
        task_id=task_id or info.task_id,
        error_code=error_code,
        error_message=error_message,
    )


def reschedule(*, generation_id: int, at: datetime | None) -> None:
    """Set the next poll (e.g. after a failed recordInfo) without touching the status."""
    Generation.objects.filter(pk=generation_id, status__in=POLLABLE_STATUSES).update(
        next_poll_at=at
    )


def hurry(*, generation_id: int, now: datetime | None = None) -> bool:
    """Poll the generation's own task within seconds, after a webhook that could not be used.

    One conditional UPDATE: only an in-flight task not hurried in the last HURRY_EVERY, and
    only if its next poll is later, so a flood of posts costs at most one extra poll a minute.
    """
    now = now or timezone.now()
    at = now + timedelta(seconds=polling.HURRY_DELAY)
    return bool(
        Generation.objects.filter(
            pk=generation_id, status__in=POLLABLE_STATUSES, task_id__isnull=False
        )
        .filter(
            Q(hurried_at__isnull=True)
            | Q(hurried_at__lte=now - timedelta(seconds=polling.HURRY_EVERY))
        )
        .filter(Q(next_poll_at__isnull=True) | Q(next_poll_at__gt=at))
        .update(next_poll_at=at, hurried_at=now)
    )


def _record_times(generation: Generation, from_status: str, now) -> set[str]:
    update = set()
    if generation.status == S.SUBMITTING:
        generation.submitted_at = now
        update.add("submitted_at")
    if generation.status == S.GENERATING and generation.started_at is None:
        generation.started_at = now
        update.add("started_at")
    if generation.status in TERMINAL_STATUSES and generation.completed_at is None:
        generation.completed_at = now
        update.add("completed_at")
    return update


def _store_info(generation: Generation, info: TaskInfo) -> set[str]:
    """What recordInfo told us about a task, kept on the row (outputs only once it succeeded)."""
    update = set()
    if info.credits_used is not None and generation.status in {S.SUCCESS, S.FAIL}:
        generation.credits_used = info.credits_used
        update.add("credits_used")
    if generation.status == S.SUCCESS and info.output is not None:
        output = info.output
        generation.video_url = output.url[:1000]
        generation.width = output.width
        generation.height = output.height
        generation.seed = output.seed
        generation.last_frame_url = (output.last_frame_url or "")[:1000]
        update |= {"video_url", "width", "height", "seed", "last_frame_url"}
    if generation.status in {S.SUCCESS, S.FAIL} and info.completed_at is not None:
        generation.completed_at = info.completed_at
        update.add("completed_at")
    return update


def _write_ledger(generation: Generation, now) -> None:
    """The ledger rows the generation's current status calls for, each written at most once."""
    if generation.status not in LEDGER_STATUSES:
        return
    existing = set(CreditEntry.objects.filter(generation=generation).values_list("kind", flat=True))
    estimate = generation.estimated_credits
    wanted: list[tuple[str, int]] = [(CreditEntry.Kind.RESERVE, -estimate)]
    if generation.status == S.REJECTED:
        # Only an unknown outcome (reserve kept) can end rejected with a reserve to give back.
        wanted = (
            [(CreditEntry.Kind.REFUND, estimate)] if CreditEntry.Kind.RESERVE in existing else []
        )
    elif generation.status == S.SUCCESS and generation.credits_used is not None:
        if generation.credits_used != estimate:
            # Signed correction: more used than reserved is a further (negative) movement.
            wanted.append((CreditEntry.Kind.CAPTURE, estimate - generation.credits_used))
    elif generation.status == S.FAIL:
        wanted.append((CreditEntry.Kind.REFUND, estimate))
    rows = [
        CreditEntry(
            generation=generation,
            workspace_id=generation.workspace_id,
            user_id=generation.creator_id,
            api_key_id=generation.api_key_id,
            model=generation.model,
            kind=kind,
            credits=credits,
            dollars_per_credit=generation.dollars_per_credit,
            created_at=now,
        )
        for kind, credits in wanted
        if kind not in existing
    ]
    CreditEntry.objects.bulk_create(rows)
