"""When to ask Kinovi about a task next: sparse early, dense near the expected end, then back off.

All durations here are real-world seconds; `settings.KINOVI_POLL_TIME_SCALE` compresses them
(tests run a minute's schedule in about a second), so the number of calls stays the same.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from generations.models import Generation, Mode, Model, Status

# The vendor: "3 to 5 seconds" between polls; a task taking longer than 10 minutes is stuck.
DENSE_INTERVAL = 4.0
MAX_BACKOFF_INTERVAL = 60.0
# Nothing is asked before half the expected time; around it a poll every tenth of it, so a
# finish is seen within about 10 % of the expected time (5 % at the median) at a fraction of
# a 2-second client's calls (bench/kinovi_calls.py); past 1.5x, 15 % of the elapsed time.
FIRST_POLL = 0.5
DENSE_STEP = 0.1
DENSE_UNTIL = 1.5
BACKOFF_FRACTION = 0.15
VENDOR_STUCK_WINDOW = 600.0
# With a callback URL the webhook carries the news; polls are only a slow safety net.
SAFETY_NET_INTERVAL = 120.0
# A stalled task is still asked about now and then, in case it finishes after all.
STALLED_INTERVAL = 600.0
STOP_POLLING_AFTER = 24 * 3600.0
# A webhook that could not be used (early, naming another task, unconfirmed) still says
# something happened at Kinovi: the task is asked about this soon after (the vendor's own
# shortest poll interval), at most once per HURRY_EVERY whatever is posted. Real seconds,
# never scaled: they bound what anyone who learned the callback URL can make us spend.
HURRY_DELAY = 3.0
HURRY_EVERY = 60.0


def scale() -> float:
    return settings.KINOVI_POLL_TIME_SCALE


def expected_seconds(generation: Generation) -> float:
    """A guess at the time from createTask to the end: 1 to 3 minutes, longer for 4K/reference.

    Standard 5 s → 90 s, 15 s → 180 s; fast is about twice as quick.
    """
    seconds = 45.0 + 9.0 * generation.duration
    if generation.model == Model.FAST:
        seconds *= 0.5
    if generation.upscale_4k:
        seconds *= 1.5
    if generation.mode == Mode.REFERENCE:
        seconds *= 1.3
    return seconds


def stall_after_seconds(generation: Generation) -> float:
    """The vendor's 10-minute window, stretched for jobs expected to take long (4K, 15 s)."""
    return max(VENDOR_STUCK_WINDOW, 4.0 * expected_seconds(generation))


def expects_callback(generation: Generation) -> bool:
    # The token hash is only stored when a callback URL was really sent.
    return bool(generation.callback_token_hash)


def next_offset(generation: Generation, elapsed: float) -> float | None:
    """Seconds after submission (unscaled) of the next poll, given `elapsed` unscaled seconds."""
    if elapsed >= STOP_POLLING_AFTER:
        return None
    if generation.status == Status.STALLED:
        return elapsed + STALLED_INTERVAL
    expected = expected_seconds(generation)
    if expects_callback(generation):
        first = 1.5 * expected + 30.0
        return first if elapsed < first else elapsed + SAFETY_NET_INTERVAL
    if elapsed < FIRST_POLL * expected:
        return FIRST_POLL * expected
    if elapsed < DENSE_UNTIL * expected:
        return elapsed + max(DENSE_INTERVAL, DENSE_STEP * expected)
    # Past the expected end: waits grow with the elapsed time, between 4 s and a minute, so
    # the delay stays a steady fraction of however long the task takes.
    wait = BACKOFF_FRACTION * elapsed
    return elapsed + min(MAX_BACKOFF_INTERVAL, max(DENSE_INTERVAL, wait))


def next_poll_at(generation: Generation, now: datetime | None = None) -> datetime | None:
    """The moment of the next recordInfo for an in-flight generation (None: stop polling)."""
    now = now or timezone.now()
    started = generation.submitted_at or now
    factor = scale()
    elapsed = max(0.0, (now - started).total_seconds() / factor)
    offset = next_offset(generation, elapsed)
    if offset is None:
        return None
    # Never sooner than a second (scaled) from now, whatever the arithmetic says.
    return max(started + timedelta(seconds=offset * factor), now + timedelta(seconds=factor))


def is_overdue(generation: Generation, now: datetime | None = None) -> bool:
    """No terminal answer within the (stretched, scaled) vendor window."""
    now = now or timezone.now()
    if generation.submitted_at is None:
        return False
    window = timedelta(seconds=stall_after_seconds(generation) * scale())
    return now - generation.submitted_at > window
