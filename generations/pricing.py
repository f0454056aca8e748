"""The one place a generation's cost is computed, from the price table in the database."""

import importlib
from dataclasses import dataclass
from decimal import Decimal

from django.utils import timezone

from generations.models import Price

# The seed's prices are data of migration 0002; read from there so they are written once.
_seed = importlib.import_module("generations.migrations.0002_seed_prices")
SEED_PRICES, SEED_VALID_FROM = _seed.SEED_PRICES, _seed.SEED_VALID_FROM


class NoPrice(Exception):
    """No price row covers this model at this time: an operator must add one."""


@dataclass(frozen=True)
class Estimate:
    model: str
    duration: int
    upscale_4k: bool
    credits: int
    dollars_per_credit: Decimal
    price_id: int

    @property
    def dollars(self) -> Decimal:
        return (self.credits * self.dollars_per_credit).quantize(Decimal("0.01"))


def estimate(*, model: str, duration: int, upscale_4k: bool, at=None) -> Estimate:
    """Credits = seconds × (model rate + 4K add-on when asked), at the price valid `at`."""
    price = Price.objects.current(model, at or timezone.now())
    if price is None:
        raise NoPrice(f"There is no price for {model} yet.")
    per_second = price.credits_per_second + (
        price.upscale_4k_credits_per_second if upscale_4k else 0
    )
    return Estimate(
        model=model,
        duration=duration,
        upscale_4k=upscale_4k,
        credits=per_second * duration,
        dollars_per_credit=price.dollars_per_credit,
        price_id=price.pk,
    )


def ensure_seed_prices() -> None:
    """The seed's prices (migration 0002's table) for any model that has no price at all."""
    for model, per_second, upscale, dollars in SEED_PRICES:
        if not Price.objects.filter(model=model).exists():
            Price.objects.create(
                model=model,
                valid_from=SEED_VALID_FROM,
                credits_per_second=per_second,
                upscale_4k_credits_per_second=upscale,
                dollars_per_credit=dollars,
            )
