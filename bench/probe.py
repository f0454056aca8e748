"""Bench only: `manage.py qcluster` with the poll path timed (due, claimed, started) to a file.

Run as `python -m bench.probe <file> [<poll batch> <poll threads>]` with the cluster's
environment (the optional pair overrides generations.queue.POLL_BATCH and tracking.POLL_THREADS, so
one invocation can compare them). The ticker's claim_due_polls and each poll's recordInfo
call are wrapped before django-q2 forks its workers; behaviour is unchanged, each claim and
each poll's start is appended as a line:
    claim <generation id> <due epoch seconds> <claimed epoch seconds>
    start <generation id> <started epoch seconds>
"""

import os
import sys
import time


def _append(path: str, text: str) -> None:
    if text:
        # One write per line batch on an O_APPEND file: lines of several processes never mix.
        with open(path, "a") as out:
            out.write(text)


def install(path: str) -> None:
    from django.utils import timezone

    from generations import lifecycle, tracking
    from generations.models import Generation

    claim, ask = tracking.claim_due_polls, tracking._ask

    def claim_due_polls(limit: int = 200) -> list[int]:
        due = dict(
            Generation.objects.filter(
                status__in=lifecycle.POLLABLE_STATUSES,
                next_poll_at__lte=timezone.now(),
                task_id__isnull=False,
            )
            .order_by("next_poll_at")
            .values_list("pk", "next_poll_at")[: limit * 2]
        )
        ids = claim(limit)
        now = time.time()
        _append(
            path, "".join(f"claim {pk} {due[pk].timestamp()} {now}\n" for pk in ids if pk in due)
        )
        return ids

    def _ask(generation, *args, **kwargs):
        _append(path, f"start {generation.pk} {time.time()}\n")
        return ask(generation, *args, **kwargs)

    tracking.claim_due_polls = claim_due_polls
    tracking._ask = _ask


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kinovi_site.settings")
    import django

    django.setup()
    install(sys.argv[1])
    if len(sys.argv) > 2:
        from generations import queue, tracking

        queue.POLL_BATCH, tracking.POLL_THREADS = int(sys.argv[2]), int(sys.argv[3])
    from django.core.management import execute_from_command_line

    execute_from_command_line(["manage.py", "qcluster"])
