"""Every error the Kinovi client raises: one typed class per kind of answer.

Messages never contain the API key (the client scrubs them). "Unknown" (a request that may
have reached Kinovi) is kept apart from "unavailable" (nothing was sent), because only the
second may be retried without risking a second charge.
"""


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
