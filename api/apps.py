from django.apps import AppConfig
from django.db.models.signals import post_migrate

SWEEP_SCHEDULE = "api sweep"


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "Kinovi-compatible API"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported here: the app registry must be ready before the models are.
        from api import webhooks
        from generations import ticker

        def register_sweep(sender, **kwargs) -> None:
            """After every migrate (and a test flush): api.sweep.run every minute."""
            ticker.register_schedule(SWEEP_SCHEDULE, "api.sweep.run", 1)

        webhooks.connect()
        post_migrate.connect(register_sweep, sender=self, weak=False)
