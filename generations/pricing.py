"""The one place a generation's cost is computed, from the price table in the database."""

import importlib
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone

from generations.models import DEFAULT_RESOLUTION, Price

# The seed's prices and the current tiers are data of migrations 0002 and 0012; read from
# there so they are written once.
_seed = importlib.import_module("generations.migrations.0002_seed_prices")
SEED_PRICES, SEED_VALID_FROM = _seed.SEED_PRICES, _seed.SEED_VALID_FROM
_tiers = importlib.import_module("generations.migrations.0012_current_price_tiers")
CURRENT_PRICES, CURRENT_VALID_FROM = _tiers.CURRENT_PRICES, _tiers.CURRENT_VALID_FROM


class NoPrice(Exception):
    """No price row covers this model at this tier and time: an operator must add one."""


@dataclass(frozen=True)
class Estimate:
    model: str
    duration: int
    upscale_4k: bool
    credits: int
    dollars_per_credit: Decimal
    price_id: int
    output_resolution: str = DEFAULT_RESOLUTION
    reference_video: bool = False
    per_second: int = 0

    @property
    def dollars(self) -> Decimal:
        return (self.credits * self.dollars_per_credit).quantize(Decimal("0.01"))


def estimate(
    *,
    model: str,
    duration: int,
    upscale_4k: bool,
    output_resolution: str = DEFAULT_RESOLUTION,
    reference_video: bool = False,
    at=None,
) -> Estimate:
    """Credits = seconds × (the tier's rate + the 4K add-on when asked + the reference-video
    add-on when a video is among the materials), at the price valid `at`."""
    price = Price.objects.current(model, at or timezone.now(), resolution=output_resolution)
    if price is None:
        raise NoPrice(f"There is no price for {model} at {output_resolution} yet.")
    per_second = (
        price.credits_per_second
        + (price.upscale_4k_credits_per_second if upscale_4k else 0)
        + (price.reference_video_credits_per_second if reference_video else 0)
    )
    return Estimate(
        model=model,
        duration=duration,
        upscale_4k=upscale_4k,
        credits=per_second * duration,
        dollars_per_credit=price.dollars_per_credit,
        price_id=price.pk,
        output_resolution=output_resolution,
        reference_video=reference_video,
        per_second=per_second,
    )


def tier_rates(model: str, at=None) -> dict[str, Price]:
    """The price row in effect for each of the model's tiers (a tier without one is left out)."""
    rates = {}
    for resolution in (
        Price.objects.filter(model=model).values_list("output_resolution", flat=True).distinct()
    ):
        price = Price.objects.current(model, at, resolution=resolution)
        if price is not None:
            rates[resolution] = price
    return rates


def ensure_seed_prices() -> None:
    """Migration 0002's seed rows for any model without a price, and migration 0012's tiers
    (a flushed test database loses what data migrations wrote). Nothing while the price table
    is older than the model (a migrate to an earlier migration also ends in post_migrate)."""
    applied = MigrationRecorder(connection).applied_migrations()
    if ("generations", "0012_current_price_tiers") not in applied:
        return
    for model, per_second, upscale, dollars in SEED_PRICES:
        if not Price.objects.filter(model=model).exists():
            Price.objects.create(
                model=model,
                valid_from=SEED_VALID_FROM,
                credits_per_second=per_second,
                upscale_4k_credits_per_second=upscale,
                dollars_per_credit=dollars,
            )
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
