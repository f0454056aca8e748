from django.db import migrations, models
from django.utils import timezone


def probe_learned_limits(apps, schema_editor):
    # Limits learned before probing existed may be stale (an upgraded account): probe them.
    ApiKey = apps.get_model("accounts", "ApiKey")
    ApiKey.objects.filter(concurrency_limit__isnull=False).update(
        concurrency_probe_at=timezone.now()
    )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_user_theme_time_zone"),
    ]

    operations = [
        migrations.AddField(
            model_name="apikey",
            name="concurrency_probe_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.RunPython(probe_learned_limits, migrations.RunPython.noop),
    ]
