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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

import requests
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util.retry import Retry

logger = logging.getLogger(__name__)

MODELS = ("seedance-20", "seedance2-fast")
ASPECT_RATIOS = ("16:9", "9:16", "1:1", "3:4", "4:3", "21:9")
MODES = ("keyframe", "reference")
MIN_DURATION = 4
MAX_DURATION = 15
MAX_PROMPT_LENGTH = 4000
STATUSES = ("waiting", "generating", "success", "fail")
TERMINAL = frozenset({"success", "fail"})


class KinoviError(Exception):
    """Base of every error the client raises. Messages never contain the API key."""

    status_code: int | None = None

    def __init__(self, message: str, *, status_code: int | None = None, body: dict | None = None):
        super().__init__(message)
        self.message = message
        self.status_code = status_code if status_code is not None else self.status_code
        self.body = body or {}


class InvalidRequest(KinoviError):
    """400: the vendor refused the parameters; `errors` is a list of {path, message}."""

    status_code = 400

    def __init__(self, message: str, *, errors: list[dict] | None = None, **kwargs):
        super().__init__(message, **kwargs)
        self.errors = errors or []


class InvalidInput(InvalidRequest, ValueError):
    """Refused locally, before anything was sent: the vendor would silently default it."""


class AuthenticationFailed(KinoviError):
    """401: the API key is wrong, missing or revoked."""

    status_code = 401


class AccessNotEnabled(KinoviError):
    """403: the account has no API access (or, on recordInfo, the task is another account's)."""

    status_code = 403


class InsufficientCredits(KinoviError):
    """402: not enough credits; `required` and `available` when the vendor says them."""

    status_code = 402

    def __init__(self, message: str, *, required=None, available=None, **kwargs):
        super().__init__(message, **kwargs)
        self.required = required
        self.available = available


class ConcurrencyLimited(KinoviError):
    """429: too many tasks in progress for this account."""

    status_code = 429

    def __init__(self, message: str, *, limit=None, current=None, retry_after=None, **kwargs):
        super().__init__(message, **kwargs)
        self.limit = limit
        self.current = current
        self.retry_after: float | None = retry_after


class NotFound(KinoviError):
    """404: no such task."""

    status_code = 404


class ServerError(KinoviError):
    """5xx from Kinovi (on recordInfo after retries ran out; on createTask see UnknownOutcome)."""

    status_code = 500


class MalformedResponse(KinoviError):
    """A 2xx whose body is not the documented JSON."""


class KinoviUnavailable(KinoviError):
    """Nothing was sent, or no answer came for a call that creates nothing (connect errors,
    timeouts on recordInfo) after the retries ran out."""


class UnknownOutcome(KinoviError):
    """createTask only: the request may have reached Kinovi (read timeout, reset after sending,
    a 5xx) so a task may exist and may have been charged. Never resubmit automatically."""


class MalformedCreateResponse(MalformedResponse, UnknownOutcome):
    """createTask answered 200 with a body we cannot read: a task was probably created and
    charged but we do not know its id, so it is handled like any other unknown outcome."""


@dataclass(frozen=True)
class TaskOutput:
    url: str
    width: int | None = None
    height: int | None = None
    media_type: str | None = None
    seed: int | None = None
    last_frame_url: str | None = None


@dataclass(frozen=True)
class TaskError:
    code: str
    message: str


@dataclass(frozen=True)
class TaskInfo:
    """A task's state as recordInfo reports it, or as a webhook body claims it."""

    task_id: str
    status: str  # waiting | generating | success | fail
    model: str | None = None
    credits_used: int | None = None
    outputs: list[TaskOutput] = field(default_factory=list)
    error: TaskError | None = None
    created_at: datetime | None = None
    completed_at: datetime | None = None
    # Only webhooks carry these.
    order_id: str | None = None
    updated_at: datetime | None = None

    @property
    def output(self) -> TaskOutput | None:
        return self.outputs[0] if self.outputs else None

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL


# --- parsing --------------------------------------------------------------------------------


def _opt_int(value, what: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise MalformedResponse(f"Kinovi sent a non-numeric {what}.")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    raise MalformedResponse(f"Kinovi sent a non-numeric {what}.")


def _opt_str(value, what: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise MalformedResponse(f"Kinovi sent a {what} that is not text.")
    return value


def _epoch_ms(value, what: str) -> datetime | None:
    number = _opt_int(value, what)
    if number is None:
        return None
    try:
        return datetime.fromtimestamp(number / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise MalformedResponse(f"Kinovi sent an impossible {what}.") from None


def _parse_output(item) -> TaskOutput:
    if not isinstance(item, dict):
        raise MalformedResponse("Kinovi sent an output entry that is not an object.")
    url = item.get("url")
    if not isinstance(url, str) or not url:
        raise MalformedResponse("Kinovi sent an output without a video URL.")
    return TaskOutput(
        url=url,
        width=_opt_int(item.get("width"), "output width"),
        height=_opt_int(item.get("height"), "output height"),
        media_type=_opt_str(item.get("mediaType"), "media type"),
        seed=_opt_int(item.get("seed"), "seed"),
        last_frame_url=_opt_str(item.get("lastFrameImage"), "last frame URL"),
    )


def _parse_error(value) -> TaskError | None:
    if value is None or value == "" or value == {}:
        return None
    if isinstance(value, str):
        return TaskError(code="", message=value)
    if not isinstance(value, dict):
        raise MalformedResponse("Kinovi sent an error that is neither text nor an object.")
    code = value.get("code")
    message = value.get("message") or value.get("msg") or ""
    return TaskError(
        code="" if code is None else str(code),
        message=message if isinstance(message, str) else str(message),
    )


def parse_task(data: dict) -> TaskInfo:
    """recordInfo's body or a webhook's `data` (`status` or `state`) into a TaskInfo.
    Raises MalformedResponse for anything that is not the documented shape."""
    if not isinstance(data, dict):
        raise MalformedResponse("Kinovi sent a task that is not a JSON object.")
    task_id = data.get("taskId")
    if not isinstance(task_id, str) or not task_id:
        raise MalformedResponse("Kinovi sent a task without a taskId.")
    # recordInfo says `status`, the webhook says `state`; accept either wherever it comes from.
    status = data.get("status", data.get("state"))
    if status not in STATUSES:
        raise MalformedResponse(f"Kinovi sent an unknown task status {str(status)[:40]!r}.")
    raw_outputs = data.get("output")
    if raw_outputs is None:
        raw_outputs = []
    elif isinstance(raw_outputs, dict):
        raw_outputs = [raw_outputs]
    elif not isinstance(raw_outputs, list):
        raise MalformedResponse("Kinovi sent an output that is not a list.")
    return TaskInfo(
        task_id=task_id,
        status=status,
        model=_opt_str(data.get("model"), "model"),
        credits_used=_opt_int(data.get("creditsUsed"), "creditsUsed"),
        outputs=[_parse_output(item) for item in raw_outputs],
        error=_parse_error(data.get("error")),
        created_at=_epoch_ms(data.get("createTime"), "createTime"),
        completed_at=_epoch_ms(data.get("completeTime"), "completeTime"),
        order_id=_opt_str(data.get("orderId"), "orderId"),
        updated_at=_epoch_ms(data.get("updateTime"), "updateTime"),
    )


def parse_webhook(body) -> TaskInfo:
    """A webhook's whole JSON envelope (`code`, `message`, `data`) into a TaskInfo."""
    if not isinstance(body, dict):
        raise MalformedResponse("The webhook body is not a JSON object.")
    data = body.get("data")
    if data is None and "taskId" in body:
        data = body  # an envelope-less delivery: the task itself
    return parse_task(data)


# --- the createTask body ----------------------------------------------------------------------


def _field_error(path: str, message: str) -> dict:
    return {"path": path, "message": message}


def validate_create_inputs(
    *,
    model,
    prompt,
    duration,
    aspect_ratio,
    mode,
    upscale_4k,
    callback_url=None,
) -> list[dict]:
    """Every problem with a createTask's inputs as [{path, message}], using the vendor's paths."""
    errors = []
    if model not in MODELS:
        errors.append(_field_error("model", f"model must be one of {', '.join(MODELS)}."))
    if not isinstance(prompt, str) or not prompt.strip():
        errors.append(_field_error("inputs.prompt", "prompt is required."))
    elif len(prompt) > MAX_PROMPT_LENGTH:
        errors.append(
            _field_error("inputs.prompt", f"prompt must be at most {MAX_PROMPT_LENGTH} characters.")
        )
    if (
        isinstance(duration, bool)
        or not isinstance(duration, int)
        or not MIN_DURATION <= duration <= MAX_DURATION
    ):
        errors.append(
            _field_error(
                "inputs.duration",
                f"duration must be a whole number of seconds from {MIN_DURATION} to "
                f"{MAX_DURATION}.",
            )
        )
    if aspect_ratio not in ASPECT_RATIOS:
        errors.append(
            _field_error(
                "inputs.aspectRatio", f"aspectRatio must be one of {', '.join(ASPECT_RATIOS)}."
            )
        )
    if mode not in MODES:
        errors.append(_field_error("inputs.mode", f"mode must be one of {', '.join(MODES)}."))
    if not isinstance(upscale_4k, bool):
        errors.append(_field_error("inputs.upscaleResolution", "upscale_4k must be true or false."))
    if callback_url is not None:
        parts = urlsplit(callback_url) if isinstance(callback_url, str) else None
        if parts is None or parts.scheme not in {"http", "https"} or not parts.hostname:
            errors.append(_field_error("callBackUrl", "callBackUrl must be an http(s) URL."))
    return errors


def build_create_body(
    *,
    model: str,
    prompt: str,
    duration: int,
    aspect_ratio: str,
    mode: str,
    upscale_4k: bool,
    callback_url: str | None = None,
) -> dict:
    """The exact createTask JSON body (also shown to the user in "what will be sent").

    Raises InvalidInput (a ValueError) for anything the vendor would silently default."""
    errors = validate_create_inputs(
        model=model,
        prompt=prompt,
        duration=duration,
        aspect_ratio=aspect_ratio,
        mode=mode,
        upscale_4k=upscale_4k,
        callback_url=callback_url,
    )
    if errors:
        raise InvalidInput("; ".join(e["message"] for e in errors), errors=errors)
    body: dict = {"model": model}
    if callback_url:
        body["callBackUrl"] = callback_url
    inputs = {
        "prompt": prompt,
        "duration": str(duration),
        "aspectRatio": aspect_ratio,
        "mode": mode,
    }
    if upscale_4k:
        inputs["upscaleResolution"] = "4k"
    body["inputs"] = inputs
    return body


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
        connect_timeout: float | None = None,  # default settings.KINOVI_CONNECT_TIMEOUT
        read_timeout: float | None = None,  # default settings.KINOVI_READ_TIMEOUT
        retries: int = 3,
        session=None,  # a requests.Session to reuse connections; one is made if None
        backoff: float = 0.5,
        backoff_max: float = 8.0,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        from django.conf import settings

        if not isinstance(api_key, str) or not api_key.strip():
            raise AuthenticationFailed("No Kinovi API key was given.", status_code=401)
        self._api_key = api_key.strip()
        self.base_url = (base_url or settings.KINOVI_BASE_URL).rstrip("/")
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

    def create_task(
        self,
        *,
        model: str,
        prompt: str,
        duration: int,
        aspect_ratio: str,
        mode: str,
        upscale_4k: bool,
        callback_url: str | None = None,
    ) -> str:
        """Returns the task id. Raises a KinoviError subclass, UnknownOutcome when unsure."""
        body = build_create_body(
            model=model,
            prompt=prompt,
            duration=duration,
            aspect_ratio=aspect_ratio,
            mode=mode,
            upscale_4k=upscale_4k,
            callback_url=callback_url,
        )
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
                errors=[_field_error("taskId", "taskId is required.")],
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
        if status == 400:
            errors = body.get("errors")
            errors = [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []
            return InvalidRequest(
                message or "Kinovi refused the parameters.",
                errors=errors,
                status_code=status,
                body=body,
            )
        if status == 401:
            return AuthenticationFailed(
                message or "Kinovi refused the API key.", status_code=status, body=body
            )
        if status == 402:
            return InsufficientCredits(
                message or "The Kinovi account does not have enough credits.",
                required=_safe_int(body.get("required")),
                available=_safe_int(body.get("available")),
                status_code=status,
                body=body,
            )
        if status == 403:
            return AccessNotEnabled(
                message or "Kinovi refused access.", status_code=status, body=body
            )
        if status == 404:
            return NotFound(message or "Kinovi has no such task.", status_code=status, body=body)
        if status == 429:
            return ConcurrencyLimited(
                message or "Too many Kinovi tasks are in progress on this account.",
                limit=_safe_int(body.get("limit")),
                current=_safe_int(body.get("current")),
                retry_after=self._retry_after(response),
                status_code=status,
                body=body,
            )
        if status >= 500:
            return ServerError(
                message or f"Kinovi had a server error (HTTP {status}).",
                status_code=status,
                body=body,
            )
        if 400 <= status < 500:
            return InvalidRequest(
                message or f"Kinovi refused the request (HTTP {status}).",
                status_code=status,
                body=body,
            )
        return MalformedResponse(
            f"Kinovi answered with an unexpected HTTP {status}.", status_code=status, body=body
        )

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


def _safe_int(value) -> int | None:
    try:
        return _opt_int(value, "number")
    except MalformedResponse:
        return None
