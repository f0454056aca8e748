from django.apps import AppConfig
from django.db.models.signals import post_migrate

SWEEP_SCHEDULE = "api sweep"


def register_sweep(sender, **kwargs) -> None:
    """Idempotent (post_migrate, also after a test flush): api.sweep.run every minute."""
    from django.utils import timezone
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name=SWEEP_SCHEDULE,
        defaults={"func": "api.sweep.run", "schedule_type": Schedule.MINUTES, "minutes": 1},
        create_defaults={
            "func": "api.sweep.run",
            "schedule_type": Schedule.MINUTES,
            "minutes": 1,
            "repeats": -1,
            "next_run": timezone.now(),
        },
    )


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "Kinovi-compatible API"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported here: the app registry must be ready before the models are.
        from api import webhooks

        webhooks.connect()
        post_migrate.connect(register_sweep, sender=self)
