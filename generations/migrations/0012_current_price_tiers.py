"""The vendor's current prices per output tier ("After the seed" in KINOVI_API.md).

The seed's rows (migration 0002, 40 and 28 credits per second) stay as the 720p history: they
are what those rates were before the tiers and the reference-video surcharge were published.
The vendor's pages carry no exact date; CURRENT_VALID_FROM is the date of the vendor README's
examples (September 2026), the earliest date the tiers are known to apply.
"""

from datetime import UTC, datetime
from decimal import Decimal

from django.db import migrations

CURRENT_VALID_FROM = datetime(2026, 9, 1, tzinfo=UTC)
CURRENT_PRICES = [
    # model, resolution, credits per second, 4K add-on, reference-video add-on, $ per credit
    ("seedance-20", "480p", 15, 28, 4, Decimal("0.005")),
    ("seedance-20", "720p", 40, 28, 8, Decimal("0.005")),
    ("seedance-20", "1080p", 83, 28, 17, Decimal("0.005")),
    ("seedance2-fast", "480p", 10, 28, 3, Decimal("0.005")),
    ("seedance2-fast", "720p", 28, 28, 6, Decimal("0.005")),
]


def add_tiers(apps, schema_editor):
    Price = apps.get_model("generations", "Price")
    for model, resolution, per_second, upscale, reference, dollars in CURRENT_PRICES:
        Price.objects.get_or_create(
            model=model,
            output_resolution=resolution,
            valid_from=CURRENT_VALID_FROM,
            defaults={
                "credits_per_second": per_second,
                "upscale_4k_credits_per_second": upscale,
                "reference_video_credits_per_second": reference,
                "dollars_per_credit": dollars,
            },
        )


def remove_tiers(apps, schema_editor):
    apps.get_model("generations", "Price").objects.filter(valid_from=CURRENT_VALID_FROM).delete()


class Migration(migrations.Migration):
    dependencies = [("generations", "0011_tiers_and_resolution")]
    operations = [migrations.RunPython(add_tiers, remove_tiers)]
