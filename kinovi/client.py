"""The one HTTP client for the Kinovi API (createTask, recordInfo): typed results and errors.

Everything the rest of the project needs from Kinovi goes through `KinoviClient`. Every answer
becomes either a `TaskInfo`/task id or exactly one `KinoviError` subclass; the API key never
appears in a log line, an exception message, an error body or a repr.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import requests
from django.conf import settings
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util.retry import Retry

from kinovi.errors import (
    AccessNotEnabled,
    AuthenticationFailed,
    ConcurrencyLimited,
    InsufficientCredits,
    InvalidInput,
    InvalidRequest,
    KinoviError,
    KinoviUnavailable,
    MalformedCreateResponse,
    MalformedResponse,
    NotFound,
    ServerError,
    UnknownOutcome,
)
from kinovi.schema import TaskInfo, build_create_body, field_error, parse_task, safe_int

logger = logging.getLogger(__name__)

# --- the client -------------------------------------------------------------------------------

_local = threading.local()


def shared_session() -> requests.Session:
    """One Session per thread, so every client in a worker reuses its connections."""
    session = getattr(_local, "session", None)
    if session is None:
        session = requests.Session()
        _local.session = session
    return session


def close_shared_session() -> None:
    """Close this thread's shared Session (tests call it so no kept-alive socket outlives one)."""
    session = getattr(_local, "session", None)
    if session is not None:
        _local.session = None
        session.close()


def _nothing_sent(exc: requests.exceptions.ConnectionError) -> bool:
    """True when the connection failed before the request could have left this machine."""
    if isinstance(exc, requests.exceptions.ConnectTimeout | requests.exceptions.SSLError):
        return True
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)  # urllib3's MaxRetryError wraps the cause
    return isinstance(reason, NewConnectionError | ConnectTimeoutError)


class _Answer:
    """The parts of an HTTP answer the client reads: status, headers and body."""

    def __init__(self, status_code: int, headers, content: bytes):
        self.status_code = status_code
        self.headers = requests.structures.CaseInsensitiveDict(headers)
        self.content = content

    def json(self):
        return json.loads(self.content)


class _Attempt:
    """What one HTTP attempt produced: a response, or a transport failure."""

    def __init__(self, response=None, *, failure: str | None = None, sent: bool = False):
        self.response = response
        self.failure = failure  # a short description, never containing the key
        self.sent = sent  # could the request have reached the server?


class KinoviClient:
    """createTask and recordInfo over one requests.Session, with typed results and errors."""

    # Retry-After longer than this is not waited for inside a call: the error is raised with
    # `retry_after` so the caller can reschedule instead of blocking a worker.
    max_retry_after = 30.0

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str | None = None,  # default settings.KINOVI_BASE_URL
        dialect: str | None = None,  # default settings.KINOVI_DIALECT (schema.WIRE's column)
        connect_timeout: float | None = None,  # default settings.KINOVI_CONNECT_TIMEOUT
        read_timeout: float | None = None,  # default settings.KINOVI_READ_TIMEOUT
        retries: int = 3,
        session=None,  # a requests.Session to reuse connections; one is made if None
        backoff: float = 0.5,
        backoff_max: float = 8.0,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if not isinstance(api_key, str) or not api_key.strip():
            raise AuthenticationFailed("No Kinovi API key was given.", status_code=401)
        self._api_key = api_key.strip()
        self.base_url = (base_url or settings.KINOVI_BASE_URL).rstrip("/")
        self.dialect = dialect or getattr(settings, "KINOVI_DIALECT", "docs")
        self.connect_timeout = connect_timeout or settings.KINOVI_CONNECT_TIMEOUT
        self.read_timeout = read_timeout or settings.KINOVI_READ_TIMEOUT
        self.retries = max(0, retries)
        self.session = session if session is not None else shared_session()
        self.backoff = backoff
        self.backoff_max = backoff_max
        self.sleep = sleep
        self.rng = rng or random.Random()

    def __repr__(self) -> str:
        return f"<KinoviClient {self.base_url} key={self.masked_key}>"

    @property
    def masked_key(self) -> str:
        return f"••••{self._api_key[-4:]}"

    # -- public calls --

    def create_task(self, **inputs) -> str:
        """Returns the task id. Raises a KinoviError subclass, UnknownOutcome when unsure.

        `inputs` are `schema.build_create_body`'s keyword arguments (the dialect is the
        client's).
        """
        body = build_create_body(dialect=self.dialect, **inputs)
        url = f"{self.base_url}/jobs/createTask"
        for attempt in range(self.retries + 1):
            result = self._send("POST", url, json=body)
            if result.response is not None:
                return self._create_answer(result.response)
            if result.sent:
                # No idempotency key exists: resending could create and charge a second task.
                raise self._scrub(
                    UnknownOutcome(
                        f"Kinovi did not answer createTask ({result.failure}); a task may "
                        "have been created and charged. It is not resubmitted automatically."
                    )
                )
            if attempt < self.retries:
                self._pause(attempt, None, "createTask", result.failure)
        raise self._scrub(
            KinoviUnavailable(
                f"Could not reach Kinovi ({result.failure}); nothing was sent, "
                f"tried {self.retries + 1} times."
            )
        )

    def record_info(self, task_id: str) -> TaskInfo:
        if (
            not isinstance(task_id, str)
            or not task_id.strip()
            or len(task_id) > 200
            or any(ord(c) < 32 for c in task_id)
        ):
            raise InvalidInput(
                "That is not a Kinovi task id.",
                errors=[field_error("taskId", "taskId is required.")],
            )
        url = f"{self.base_url}/jobs/recordInfo"
        last_error: KinoviError | None = None
        for attempt in range(self.retries + 1):
            result = self._send("GET", url, params={"taskId": task_id})
            retry_after = None
            if result.response is None:
                last_error = KinoviUnavailable(
                    f"No answer from Kinovi for recordInfo ({result.failure})."
                )
            else:
                status = result.response.status_code
                if status == 429 or status >= 500:
                    last_error = self._error_for(result.response)
                    retry_after = self._retry_after(result.response)
                    if retry_after is not None and retry_after > self.max_retry_after:
                        break
                else:
                    return self._record_answer(result.response, task_id)
            if attempt < self.retries:
                self._pause(attempt, retry_after, "recordInfo", str(last_error))
        assert last_error is not None
        raise self._scrub(last_error)

    def close(self) -> None:
        if self.session is not getattr(_local, "session", None):
            self.session.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- plumbing --

    def _send(self, method: str, url: str, **kwargs) -> _Attempt:
        headers = {
            "Authorization": f"Bearer {self._api_key}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        started = time.monotonic()
        try:
            response = self.session.request(
                method,
                url,
                headers=headers,
                timeout=(self.connect_timeout, self.read_timeout),
                # A redirected POST would become a GET; Kinovi never redirects its API.
                allow_redirects=False,
                **kwargs,
            )
        except requests.exceptions.ConnectionError as exc:
            sent = not _nothing_sent(exc)
            failure = "connection lost after sending" if sent else "could not connect"
            logger.warning("Kinovi %s %s: %s", method, urlsplit(url).path, failure)
            return _Attempt(failure=failure, sent=sent)
        except requests.exceptions.Timeout:
            logger.warning("Kinovi %s %s: read timeout", method, urlsplit(url).path)
            return _Attempt(failure="read timeout", sent=True)
        except requests.exceptions.InvalidURL:
            return _Attempt(failure="the Kinovi base URL is invalid", sent=False)
        except requests.exceptions.RequestException as exc:
            logger.warning("Kinovi %s %s: %s", method, urlsplit(url).path, type(exc).__name__)
            return _Attempt(failure=type(exc).__name__, sent=True)
        logger.info(
            "Kinovi %s %s -> %s in %.2fs",
            method,
            urlsplit(url).path,
            response.status_code,
            time.monotonic() - started,
        )
        # Keep a copy, not the Response: an error kept by a caller (with its traceback) would
        # otherwise hold the socket open after the session is closed.
        answer = _Answer(response.status_code, response.headers, response.content)
        response.close()
        return _Attempt(answer)

    def _pause(self, attempt: int, retry_after: float | None, what: str, why: str) -> None:
        ceiling = min(self.backoff_max, self.backoff * (2**attempt))
        delay = self.rng.uniform(ceiling / 2, ceiling)  # jitter: spread out retrying clients
        if retry_after is not None:
            delay = max(delay, retry_after)
        logger.info("Kinovi %s: retrying in %.2fs after %s", what, delay, self._redact(why))
        self.sleep(delay)

    @staticmethod
    def _retry_after(response) -> float | None:
        value = response.headers.get("Retry-After")
        if not value:
            return None
        try:
            return max(0.0, float(Retry().parse_retry_after(value)))
        except Exception:  # a garbled header just means "no advice"
            return None

    def _json(self, response):
        try:
            return response.json()
        except ValueError:
            return None

    def _create_answer(self, response) -> str:
        status = response.status_code
        if 200 <= status < 300:
            data = self._json(response)
            if (
                isinstance(data, dict)
                and "taskId" not in data
                and isinstance(data.get("data"), dict)
            ):
                data = data["data"]  # the vendor's enveloped form
            task_id = data.get("taskId") if isinstance(data, dict) else None
            if not isinstance(task_id, str) or not task_id.strip():
                raise self._scrub(
                    MalformedCreateResponse(
                        f"Kinovi answered createTask with HTTP {status} but no task id; a task "
                        "may have been created and charged.",
                        status_code=status,
                        body=data if isinstance(data, dict) else {},
                    )
                )
            return task_id
        if status >= 500:
            error = self._error_for(response)
            raise self._scrub(
                UnknownOutcome(
                    f"Kinovi answered createTask with HTTP {status} ({error.message}); a task "
                    "may have been created and charged.",
                    status_code=status,
                    body=error.body,
                )
            )
        raise self._scrub(self._error_for(response))

    def _record_answer(self, response, task_id: str) -> TaskInfo:
        status = response.status_code
        if not 200 <= status < 300:
            raise self._scrub(self._error_for(response))
        data = self._json(response)
        if isinstance(data, dict) and "taskId" not in data and isinstance(data.get("data"), dict):
            data = data["data"]
        if not isinstance(data, dict):
            raise self._scrub(
                MalformedResponse(
                    f"Kinovi answered recordInfo with HTTP {status} but not a JSON object.",
                    status_code=status,
                )
            )
        try:
            info = parse_task(data)
        except MalformedResponse as exc:
            exc.status_code = status
            exc.body = data
            raise self._scrub(exc) from None
        if info.task_id != task_id:
            raise self._scrub(
                MalformedResponse(
                    "Kinovi answered recordInfo about a different task.",
                    status_code=status,
                    body=data,
                )
            )
        return info

    def _error_for(self, response) -> KinoviError:
        """The one typed error for a non-2xx answer."""
        status = response.status_code
        data = self._json(response)
        body = data if isinstance(data, dict) else {}
        vendor_message = body.get("message") or body.get("msg")
        message = (
            vendor_message.strip()[:500]
            if isinstance(vendor_message, str) and vendor_message.strip()
            else None
        )
        if status in _ERRORS:
            kind, default = _ERRORS[status]
            extra = self._details(status, body, response)
            return kind(message or default, status_code=status, body=body, **extra)
        if status >= 500:
            message = message or f"Kinovi had a server error (HTTP {status})."
            return ServerError(message, status_code=status, body=body)
        if 400 <= status < 500:
            message = message or f"Kinovi refused the request (HTTP {status})."
            return InvalidRequest(message, status_code=status, body=body)
        return MalformedResponse(
            f"Kinovi answered with an unexpected HTTP {status}.", status_code=status, body=body
        )

    def _details(self, status: int, body: dict, response) -> dict:
        """What the documented error bodies add: field errors, credits, limits."""
        if status == 400:
            errors = body.get("errors")
            return {
                "errors": [e for e in errors if isinstance(e, dict)]
                if isinstance(errors, list)
                else []
            }
        if status == 402:
            return {
                "required": safe_int(body.get("required")),
                "available": safe_int(body.get("available")),
            }
        if status == 429:
            return {
                "limit": safe_int(body.get("limit")),
                "current": safe_int(body.get("current")),
                "retry_after": self._retry_after(response),
            }
        return {}

    def _redact(self, value):
        """The same value with the API key masked wherever a server might have echoed it."""
        if isinstance(value, str):
            return value.replace(self._api_key, self.masked_key)
        if isinstance(value, dict):
            return {self._redact(k): self._redact(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._redact(v) for v in value]
        return value

    def _scrub(self, error: KinoviError) -> KinoviError:
        error.message = self._redact(error.message)
        error.args = (error.message,)
        error.body = self._redact(error.body)
        if isinstance(error, InvalidRequest):
            error.errors = self._redact(error.errors)
        return error


# HTTP status → (error class, message when Kinovi gives none).
_ERRORS: dict[int, tuple[type[KinoviError], str]] = {
    400: (InvalidRequest, "Kinovi refused the parameters."),
    401: (AuthenticationFailed, "Kinovi refused the API key."),
    402: (InsufficientCredits, "The Kinovi account does not have enough credits."),
    403: (AccessNotEnabled, "Kinovi refused access."),
    404: (NotFound, "Kinovi has no such task."),
    429: (ConcurrencyLimited, "Too many Kinovi tasks are in progress on this account."),
}
