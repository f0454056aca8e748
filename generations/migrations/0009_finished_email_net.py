from datetime import timedelta

from django.db import migrations, models
from django.utils import timezone

NOTIFY_STATUSES = ["success", "fail", "rejected"]


def mark_recent_endings_sent(apps, schema_editor):
    """Videos that ended shortly before this release got their e-mail from the old job, which
    left no marker: without one, the sweeper's net (notifications.enqueue_unsent) would send
    them a second. Endings of the last minute are left unmarked, so a job still queued from
    before the release can send theirs."""
    Generation = apps.get_model("generations", "Generation")
    now = timezone.now()
    Generation.objects.filter(
        status__in=NOTIFY_STATUSES,
        finished_email_sent_at__isnull=True,
        confirmed_at__range=(now - timedelta(hours=2), now - timedelta(minutes=1)),
    ).update(finished_email_sent_at=models.F("confirmed_at"))


class Migration(migrations.Migration):
    dependencies = [
        ("generations", "0008_generation_finished_email_sent_at"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="generation",
            index=models.Index(
                condition=models.Q(
                    ("finished_email_sent_at__isnull", True),
                    ("status__in", NOTIFY_STATUSES),
                ),
                fields=["confirmed_at"],
                name="gen_email_unsent",
            ),
        ),
        migrations.RunPython(mark_recent_endings_sent, migrations.RunPython.noop),
    ]
