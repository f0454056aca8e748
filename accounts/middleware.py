"""Activates each request's time zone: the user's setting, else the browser's, else UTC.

The browser's zone arrives in a cookie that static/js/app.js sets on every page, so a visitor
sees local times from the second page on without choosing anything.
"""

import zoneinfo
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils import timezone

TZ_COOKIE = "tz"


def zone_or_none(name: str | None) -> zoneinfo.ZoneInfo | None:
    """The zone called `name`, or None for an empty, unknown or malformed name."""
    if not name or len(name) > 64:
        return None
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


def browser_zone_name(request: HttpRequest) -> str:
    """The zone the browser reported, if it is one we know; else ""."""
    name = request.COOKIES.get(TZ_COOKIE, "")
    return name if zone_or_none(name) else ""


class TimeZoneMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        zone = None
        if user is not None and user.is_authenticated:
            zone = zone_or_none(user.time_zone)
        zone = zone or zone_or_none(request.COOKIES.get(TZ_COOKIE))
        if zone is None:
            timezone.deactivate()
        else:
            timezone.activate(zone)
        try:
            return self.get_response(request)
        finally:
            # The thread serves other requests next: never leave one user's zone behind.
            timezone.deactivate()
