"""Seed the price table with the prices of the Kinovi text-to-video page (shared/seed)."""

from datetime import UTC, datetime
from decimal import Decimal

from django.db import migrations

SEED_VALID_FROM = datetime(2026, 1, 1, tzinfo=UTC)
SEED_PRICES = [
    # model, credits per second, 4K add-on per second, dollars per credit
    ("seedance-20", 40, 28, Decimal("0.005")),
    ("seedance2-fast", 28, 28, Decimal("0.005")),
]


def seed(apps, schema_editor):
    Price = apps.get_model("generations", "Price")
    for model, per_second, upscale, dollars in SEED_PRICES:
        Price.objects.get_or_create(
            model=model,
            valid_from=SEED_VALID_FROM,
            defaults={
                "credits_per_second": per_second,
                "upscale_4k_credits_per_second": upscale,
                "dollars_per_credit": dollars,
            },
        )


def unseed(apps, schema_editor):
    apps.get_model("generations", "Price").objects.filter(valid_from=SEED_VALID_FROM).delete()


class Migration(migrations.Migration):
    dependencies = [("generations", "0001_initial")]
    operations = [migrations.RunPython(seed, unseed)]
