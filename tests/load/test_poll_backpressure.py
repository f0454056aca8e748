"""The ticker claims polls only as fast as the workers take them (bench/tracking.py showed a
queue thousands deep at 5 000 in flight: submissions and confirmations stuck behind it, and
polls older than the claim lease claimed twice)."""

from datetime import timedelta

from django.utils import timezone
from django_q.models import OrmQ

from bench import loadkit
from generations import queue, ticker
from generations.models import Generation


def test_tick_claims_no_more_than_the_queue_has_room_for(db, settings, monkeypatch):
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "workers": 2}
    assert "orm" in settings.Q_CLUSTER  # the queue under test is the database's
    monkeypatch.setattr(queue, "POLL_BATCH", 4)
    world = loadkit.build_world(
        count=60, site_url="http://127.0.0.1:9", media_root=settings.MEDIA_ROOT, duplicate_every=0
    )
    settings.KINOVI_SANDBOX = False  # no sandbox webhooks sent from the tick
    now = timezone.now()
    for age, pk in enumerate(world.generation_ids):
        Generation.objects.filter(pk=pk).update(next_poll_at=now - timedelta(seconds=age + 1))
    jobs = 2 * ticker.QUEUED_POLL_JOBS_PER_WORKER
    room = jobs * queue.POLL_BATCH

    first = ticker.tick()["polls"]
    assert len(first) == room
    # The most overdue first.
    assert set(first) == set(world.generation_ids[-room:])
    assert OrmQ.objects.count() == jobs  # in full batches

    assert ticker.tick()["polls"] == []  # the queue is full: nothing more is claimed
    unclaimed = Generation.objects.filter(pk__in=world.generation_ids, next_poll_at__lte=now)
    assert unclaimed.count() == 60 - room

    OrmQ.objects.all().delete()  # the workers took them
    assert len(ticker.tick()["polls"]) == 60 - room
