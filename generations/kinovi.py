"""The one HTTP client for the Kinovi API (createTask, recordInfo): typed results and errors.

INTERFACE CONTRACT (the implementation is being written; keep these names and shapes):
everything the rest of the project needs from Kinovi goes through `KinoviClient`.
"""

from dataclasses import dataclass, field
from datetime import datetime


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

    @property
    def output(self) -> TaskOutput | None:
        return self.outputs[0] if self.outputs else None


def parse_task(data: dict) -> TaskInfo:
    """recordInfo's body or a webhook's `data` (`status` or `state`) into a TaskInfo.
    Raises MalformedResponse for anything that is not the documented shape."""
    raise NotImplementedError


class KinoviClient:
    def __init__(
        self,
        api_key: str,
        *,
        base_url: str | None = None,  # default settings.KINOVI_BASE_URL
        connect_timeout: float | None = None,  # default settings.KINOVI_CONNECT_TIMEOUT
        read_timeout: float | None = None,  # default settings.KINOVI_READ_TIMEOUT
        retries: int = 3,
        session=None,  # a requests.Session to reuse connections; one is made if None
    ) -> None:
        raise NotImplementedError

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
        raise NotImplementedError

    def record_info(self, task_id: str) -> TaskInfo:
        raise NotImplementedError


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
    """The exact createTask JSON body (also shown to the user in "what will be sent")."""
    raise NotImplementedError
