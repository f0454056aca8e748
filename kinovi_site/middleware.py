"""Site-wide middleware: /healthz before everything else, one structured log line per request."""

import logging
import re
import time
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils.functional import SimpleLazyObject, empty

from kinovi_site.health import HEALTH_PATH, healthz
from kinovi_site.logging import REQUEST_LOGGER, mask_url_secrets, request_id_var

logger = logging.getLogger(REQUEST_LOGGER)

# A request id from a trusted proxy is reused so lines can be joined across hops; anything
# else (too long, odd characters) is replaced rather than copied into the logs.
_INCOMING_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class HealthCheckMiddleware:
    """Answers GET/HEAD /healthz before host validation, the HTTPS redirect and the session.

    Load balancers probe by IP address over plain HTTP; those requests must reach the check
    instead of a 400 (unknown host) or a 301 (to https). The answer carries no secret.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info == HEALTH_PATH and request.method in {"GET", "HEAD"}:
            return healthz(request)
        return self.get_response(request)


def _user_id(request: HttpRequest) -> int | None:
    user = getattr(request, "user", None)
    # Only read a user the view already loaded: logging must never add a query.
    if user is None or (isinstance(user, SimpleLazyObject) and user._wrapped is empty):
        return None
    return user.pk if getattr(user, "is_authenticated", False) else None


def _workspace_id(request: HttpRequest) -> int | None:
    workspace = getattr(request, "workspace", None)
    if workspace is not None:
        return workspace.pk
    membership = getattr(request, "_membership", None)
    return membership.workspace_id if membership is not None else None


def loggable_path(request: HttpRequest) -> str:
    """The path without its query string, with credential-like URL arguments masked."""
    return mask_url_secrets(request, request.path)


class RequestLogMiddleware:
    """One structured line per request: method, path, route, status, duration, user, workspace.

    Sets `request.request_id` and the `X-Request-ID` response header.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _INCOMING_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500
        try:
            response = self.get_response(request)
            status = response.status_code
            response["X-Request-ID"] = request_id
            return response
        finally:
            request_id_var.reset(token)
            # A load balancer probes every few seconds: only a failing probe is worth a line.
            if not (request.path_info == HEALTH_PATH and status == 200):
                self._log(request, status, started, request_id)

    @staticmethod
    def _log(request: HttpRequest, status: int, started: float, request_id: str) -> None:
        duration_ms = round((time.perf_counter() - started) * 1000, 1)
        match = getattr(request, "resolver_match", None)
        fields = {
            "method": request.method,
            "path": loggable_path(request),
            "route": match.route if match is not None else None,
            "status": status,
            "duration_ms": duration_ms,
            "user_id": _user_id(request),
            "workspace_id": _workspace_id(request),
            "request_id": request_id,
        }
        level = logging.ERROR if status >= 500 else logging.INFO
        logger.log(
            level, "%s %s %s", request.method, fields["path"], status, extra={"fields": fields}
        )
