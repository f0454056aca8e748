"""The generations app: registers its django-q2 schedules and seed prices after every migrate."""

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class GenerationsConfig(AppConfig):
    name = "generations"
    verbose_name = "Generations and credits"

    def ready(self) -> None:
        # Django's one place for an app to import its own modules: not before the registry is
        # ready (the only project import inside a function the ruff rule allows, in apps.py).
        from generations import pricing, ticker

        def ensure_background_setup(sender, **kwargs) -> None:
            """Idempotent: the schedules and the seed prices. post_migrate also runs after a
            test database is flushed, which deletes rows that data migrations created."""
            ticker.register_schedules()
            pricing.ensure_seed_prices()

        post_migrate.connect(ensure_background_setup, sender=self, weak=False)
