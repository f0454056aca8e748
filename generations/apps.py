"""The generations app: registers its django-q2 schedules and seed prices after every migrate."""

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def ensure_background_setup(sender, **kwargs) -> None:
    """Idempotent: the ticker watchdog and sweeper schedules, and the seed prices.

    post_migrate also runs after a test database is flushed, which deletes rows that data
    migrations created; doing this here keeps both present everywhere.
    """
    from generations.tasks import register_schedules

    register_schedules()
    _ensure_seed_prices()


def _ensure_seed_prices() -> None:
    import importlib

    from generations.models import Price

    seed = importlib.import_module("generations.migrations.0002_seed_prices")
    for model, per_second, upscale, dollars in seed.SEED_PRICES:
        if not Price.objects.filter(model=model).exists():
            Price.objects.create(
                model=model,
                valid_from=seed.SEED_VALID_FROM,
                credits_per_second=per_second,
                upscale_4k_credits_per_second=upscale,
                dollars_per_credit=dollars,
            )


class GenerationsConfig(AppConfig):
    name = "generations"
    verbose_name = "Generations and credits"

    def ready(self) -> None:
        post_migrate.connect(ensure_background_setup, sender=self)
