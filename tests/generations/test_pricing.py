from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from generations import pricing
from generations.models import Price


# Every figure of the seed's two price tables.
@pytest.mark.parametrize(
    ("model", "duration", "upscale", "credits", "dollars"),
    [
        ("seedance-20", 4, False, 160, "0.80"),
        ("seedance-20", 5, False, 200, "1.00"),
        ("seedance-20", 8, False, 320, "1.60"),
        ("seedance-20", 10, False, 400, "2.00"),
        ("seedance-20", 15, False, 600, "3.00"),
        ("seedance-20", 4, True, 272, "1.36"),
        ("seedance-20", 5, True, 340, "1.70"),
        ("seedance-20", 8, True, 544, "2.72"),
        ("seedance-20", 10, True, 680, "3.40"),
        ("seedance-20", 15, True, 1020, "5.10"),
        ("seedance2-fast", 4, False, 112, "0.56"),
        ("seedance2-fast", 5, False, 140, "0.70"),
        ("seedance2-fast", 8, False, 224, "1.12"),
        ("seedance2-fast", 10, False, 280, "1.40"),
        ("seedance2-fast", 15, False, 420, "2.10"),
        ("seedance2-fast", 4, True, 224, "1.12"),
        ("seedance2-fast", 5, True, 280, "1.40"),
        ("seedance2-fast", 8, True, 448, "2.24"),
        ("seedance2-fast", 10, True, 560, "2.80"),
        ("seedance2-fast", 15, True, 840, "4.20"),
    ],
)
def test_it_matches_the_seed(db, model, duration, upscale, credits, dollars):
    result = pricing.estimate(model=model, duration=duration, upscale_4k=upscale)
    assert result.credits == credits
    assert result.dollars == Decimal(dollars)


def test_a_new_price_applies_from_its_date_only(db):
    now = timezone.now()
    Price.objects.create(
        model="seedance-20",
        credits_per_second=50,
        upscale_4k_credits_per_second=30,
        dollars_per_credit=Decimal("0.005"),
        valid_from=now + timedelta(days=1),
    )
    assert pricing.estimate(model="seedance-20", duration=5, upscale_4k=False).credits == 200
    later = now + timedelta(days=2)
    assert (
        pricing.estimate(model="seedance-20", duration=5, upscale_4k=False, at=later).credits == 250
    )


def test_it_refuses_a_model_without_price(db):
    with pytest.raises(pricing.NoPrice):
        pricing.estimate(model="seedance-99", duration=5, upscale_4k=False)
