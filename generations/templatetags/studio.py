"""Display helpers for the dashboard templates: elapsed times and money."""

import datetime
from decimal import Decimal

from django import template
from django.utils import timezone
from django.utils.timesince import timesince

register = template.Library()


@register.filter
def elapsed(start, end=None) -> str:
    """'1:05' or '1:02:03' between two moments (or until now): for in-flight cards."""
    if not start:
        return ""
    end = end or timezone.now()
    seconds = max(int((end - start).total_seconds()), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}:{minutes:02d}:{seconds:02d}"
    return f"{minutes}:{seconds:02d}"


@register.filter
def dollars(value) -> str:
    """Exact dollars to the cent, e.g. $1.70; negative amounts keep their sign."""
    if value is None or value == "":
        return ""
    amount = Decimal(value).quantize(Decimal("0.01"))
    sign = "−" if amount < 0 else ""
    return f"{sign}${abs(amount):,.2f}"


@register.filter
def credits(value) -> str:
    if value is None or value == "":
        return "—"
    number = int(value)
    sign = "−" if number < 0 else ""
    return f"{sign}{abs(number):,}"


@register.filter
def signed(value) -> str:
    number = int(value or 0)
    return f"+{number:,}" if number > 0 else (f"−{abs(number):,}" if number < 0 else "0")


@register.filter
def frame_class(ratio: str) -> str:
    return "frame-" + str(ratio).replace(":", "x")


@register.simple_tag
def since(moment: datetime.datetime | None, now: datetime.datetime | None = None) -> str:
    return elapsed(moment, now)


@register.filter
def mul(value, factor):
    """credits × dollars per credit, exactly."""
    if value is None or factor is None:
        return None
    return Decimal(value) * Decimal(factor)


@register.simple_tag
def ago(moment: datetime.datetime | None, now: datetime.datetime | None = None) -> str:
    """'just now', '5 minutes ago', '2 days ago'."""
    if not moment:
        return ""
    now = now or timezone.now()
    if (now - moment).total_seconds() < 60:
        return "just now"
    return f"{timesince(moment, now, depth=1)} ago"
