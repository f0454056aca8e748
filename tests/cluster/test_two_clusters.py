"""Two `qcluster` processes against one database, on the ORM broker and on Redis, with many
generations in flight at the sandbox (and its faults): no generation is submitted twice, no
task is ever polled by two jobs at once, and the schedules (the ticker's loop, the sweeper)
run once."""

import re
import time
from collections import Counter
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.db.models import Count
from django.utils import timezone
from django_q.models import Schedule, Success

from generations.models import CreditEntry, Generation, Heartbeat, Status
from sandbox.models import SandboxAccount, SandboxFault, SandboxTask
from sandbox.services import inject_faults, settle_finished
from tests.lifecycle.conftest import history, ledger, submit, wait_for

pytestmark = [pytest.mark.cluster]

GENERATIONS = 24
SANDBOX_LIMIT = 8  # fewer slots than generations: some createTasks meet a 429 and go again
CREDITS = 100_000
# django-q2's scheduler runs in each cluster about every 30 s from its start.
SCHEDULER_PERIOD = 30
# Handing over, a ticker releases its lease and enqueues the next one before its own job is
# recorded as stopped: the next may start that much "before" the previous one ended.
HANDOVER_SLACK = timedelta(seconds=0.5)
TICKER = "generations.tasks.ticker"
PROCESSING = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) INFO django-q: \S+ processing (\S+) "
    rf"'{re.escape(TICKER)}'",
    re.MULTILINE,
)


def prompt_for(n: int) -> str:
    # A third fail (moderation at the start, or a server error at the end): refunds are
    # exercised, and fewer videos have to be rendered on a 2-core machine.
    marker = {0: "", 1: " [sandbox:fail]", 2: " [sandbox:error]"}[n % 3]
    return f"Shot {n:02d}: a tram crossing a bridge at dusk{marker}"


def overlaps(intervals: list[tuple[float, float]]) -> list:
    ordered = sorted(intervals)
    return [(a, b) for a, b in zip(ordered, ordered[1:], strict=False) if b[0] < a[1]]


def processed(cluster, func: str) -> int:
    return len(re.findall(rf"Processed '{re.escape(func)}'", cluster.log_path.read_text()))


def ticker_loops(clusters) -> list[tuple]:
    """(start, end, cluster) of every ticker job that really looped, in start order.

    A job's start is when a worker began it (its "processing" log line; django-q2's own
    `started` is the enqueue time) and its end is `stopped`, set by the worker on return.
    """
    began = {}
    for number, cluster in enumerate(clusters):
        for stamp, name in PROCESSING.findall(cluster.log_path.read_text()):
            moment = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f")
            began[name] = (moment.replace(tzinfo=ZoneInfo(settings.TIME_ZONE)), number)
    loops = []
    for name, stopped, result in Success.objects.filter(func=TICKER).values_list(
        "name", "stopped", "result"
    ):
        if result in {"handed over", "lease lost"}:
            start, number = began[name]
            loops.append((start, stopped, number))
    return sorted(loops)


def start_two(start_q_cluster, **env):
    # Plain-text logs: the workers' "processing" lines are read back to time the ticker loops.
    clusters = [
        start_q_cluster(LOG_FORMAT="text", **env),
        start_q_cluster(LOG_FORMAT="text", **env),
    ]
    # The schedules are due now: both clusters' schedulers will look at them once within
    # SCHEDULER_PERIOD, and only one may fire each.
    Schedule.objects.update(next_run=timezone.now() - timedelta(seconds=1))
    return clusters, time.monotonic()


def run_many_generations(sandbox_server, start_q_cluster, team, bob_membership, kinovi_calls):
    key = sandbox_server.api_key(team, credits=CREDITS, concurrency_limit=SANDBOX_LIMIT)
    clusters, up_since = start_two(start_q_cluster)
    # Faults on top of the real 429s: refusals that teach no limit, and failing polls.
    inject_faults(status=429, count=3, endpoint="createTask", retry_after=1)
    inject_faults(status=500, count=6, endpoint="recordInfo")

    prompts = [prompt_for(n) for n in range(GENERATIONS)]
    generations = [submit(bob_membership, key, prompt=p) for p in prompts]

    def all_ended():
        left = Generation.objects.exclude(status__in=[Status.SUCCESS, Status.FAIL])
        return not left.exists()

    try:
        wait_for(all_ended, timeout=90, interval=0.5, what="every generation to end")
    except AssertionError:
        left = Generation.objects.exclude(status__in=[Status.SUCCESS, Status.FAIL])
        raise AssertionError(
            [(g.pk, g.status, g.next_poll_at, timezone.now(), history(g)) for g in left]
        ) from None

    # -- every generation ended as the sandbox decided, with an exact ledger ------------------
    successes = 0
    for generation in generations:
        done = Generation.objects.get(pk=generation.pk)
        expected = Status.SUCCESS if "[sandbox:" not in done.prompt else Status.FAIL
        assert done.status == expected, history(done)
        if expected == Status.SUCCESS:
            successes += 1
            assert ledger(done) == {"reserve": -200}
            assert done.video_url
        else:
            assert ledger(done) == {"reserve": -200, "refund": 200}
    assert sum(CreditEntry.objects.values_list("credits", flat=True)) == -200 * successes
    settle_finished()
    account = SandboxAccount.objects.get()
    assert account.credits == CREDITS - 200 * successes  # our ledger matches the vendor's

    # -- no generation was submitted twice: one task per prompt at the sandbox ----------------
    per_prompt = dict(SandboxTask.objects.values_list("prompt").annotate(n=Count("id")))
    assert per_prompt == dict.fromkeys(prompts, 1)
    for generation in Generation.objects.all():
        assert SandboxTask.objects.get(prompt=generation.prompt).task_id == generation.task_id
        submits = [e for e in history(generation) if e[1] == "submitting"]
        back = [e for e in history(generation) if e[:2] == ("submitting", "queued")]
        assert len(submits) == len(back) + 1  # every extra attempt followed a refusal (429)
    refused = kinovi_calls.creates - GENERATIONS
    assert refused >= 3  # the injected 429s (and real ones when more than 8 were in flight)
    assert not SandboxFault.objects.filter(remaining__gt=0).exists()  # every fault was met
    assert refused == sum(
        1 for g in Generation.objects.all() for e in history(g) if e[:2] == ("submitting", "queued")
    )

    # -- no task was ever polled by two jobs at the same moment -------------------------------
    for generation in Generation.objects.all():
        intervals = kinovi_calls.intervals[generation.task_id]
        assert len(intervals) == kinovi_calls.for_task(generation.task_id) >= 1
        assert overlaps(intervals) == [], f"overlapping recordInfo for {generation.task_id}"

    # -- both clusters really took jobs ---------------------------------------------------------
    for cluster in clusters:
        worked = processed(cluster, "generations.tasks.poll_batch") + processed(
            cluster, "generations.tasks.submit_generation"
        )
        assert worked > 0, cluster.log_path.read_text()[-3000:]

    # -- the schedules ran once, and one ticker loop held the lease at a time -------------------
    time.sleep(max(0.0, SCHEDULER_PERIOD + 3 - (time.monotonic() - up_since)))
    fired = Counter(Success.objects.values_list("group", flat=True))
    assert fired["kinovi sweeper"] == 1, fired
    assert fired["kinovi ticker"] == 1, fired
    assert Heartbeat.objects.get(name=Heartbeat.SWEEPER).count == 1
    loops = ticker_loops(clusters)
    assert len(loops) >= 3  # the loop went on across handovers for the whole run
    for (_, end, _), (next_start, _, _) in zip(loops, loops[1:], strict=False):
        assert next_start >= end - HANDOVER_SLACK, f"two ticker loops ran at once: {loops}"
    results = Counter(Success.objects.filter(func=TICKER).values_list("result", flat=True))
    # The second cluster's kick (and the watchdog) found the lease held and did nothing.
    assert results["another ticker holds the lease"] >= 1, results
    return clusters


def test_two_clusters_on_the_orm_broker(
    sandbox_server, start_q_cluster, team, bob_membership, kinovi_calls
):
    run_many_generations(sandbox_server, start_q_cluster, team, bob_membership, kinovi_calls)


def test_two_clusters_on_redis(
    redis_broker, sandbox_server, start_q_cluster, team, bob_membership, kinovi_calls
):
    clusters = run_many_generations(
        sandbox_server, start_q_cluster, team, bob_membership, kinovi_calls
    )
    for cluster in clusters:
        log = cluster.log_path.read_text()
        # Each cluster served this run's own Redis list, not the ORM queue.
        assert f"[django_q:{redis_broker}:q]" in log, log[-3000:]
