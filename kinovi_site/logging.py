"""Structured logs: JSON or text lines, a request-id context, job events, and secret masking.

Use `log_job("poll.done", generation_id=gen.pk, status="success")` from job code for one line
per job event; the request middleware writes one line per request. Whatever is logged passes
through `MaskSecretsFilter`, so a Kinovi key or bearer token never reaches a log sink.
"""

import contextvars
import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

from django.core.exceptions import PermissionDenied

# The current request's id, so any line logged while serving it (or a job it enqueued
# synchronously) can be tied back to the request line.
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "kinovi_request_id", default=None
)

REQUEST_LOGGER = "kinovi.request"
JOB_LOGGER = "kinovi.job"

MASK = "[masked]"
# Kinovi keys look like `sk_...`; anything sent as a bearer token is a credential too. The
# patterns are deliberately wide: masking a harmless word costs less than leaking a key.
_SECRET_PATTERNS = [
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]+"), r"\1 " + MASK),
    (re.compile(r"\bsk_[A-Za-z0-9_-]{4,}"), "sk_" + MASK),
    (re.compile(r"\bkst_[A-Za-z0-9_-]{4,}"), "kst_" + MASK),
    (re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?)[^\"',}\s]+"), r"\1" + MASK),
]


# URL keyword arguments whose values are credentials (the webhook token).
_SECRET_KWARG = re.compile(r"token|secret|signature|password|key$", re.IGNORECASE)
# The webhook route's token, for lines logged without a resolved request at hand.
_CALLBACK_PATH = re.compile(r"(/hooks/kinovi/[0-9a-fA-F-]{32,36}/)[^/\s\"'?]+")


def mask_secrets(text: str) -> str:
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return _CALLBACK_PATH.sub(r"\1" + MASK, text)


def mask_url_secrets(request: Any, text: str) -> str:
    """`text` with the values of the request's credential-like URL arguments masked."""
    match = getattr(request, "resolver_match", None)
    if match is not None:
        for name, value in match.kwargs.items():
            if _SECRET_KWARG.search(name) and value:
                text = text.replace(str(value), MASK)
    return text


def _mask_value(value: Any) -> Any:
    if isinstance(value, str):
        return mask_secrets(value)
    if isinstance(value, dict):
        return {k: _mask_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask_value(v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return mask_secrets(str(value))


class MaskSecretsFilter(logging.Filter):
    """Rewrites a record so its message, arguments, fields and traceback carry no secret.

    Attached to handlers (not loggers) so records propagated from any library pass through it.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not hide the record or leak its args
            message = f"{record.msg!s} {record.args!r}"
        # Django's own lines ("Not Found: <path>") carry the request: mask its URL secrets.
        request = getattr(record, "request", None)
        if request is not None:
            message = mask_url_secrets(request, message)
        record.msg = mask_secrets(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_secrets(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_secrets(record.stack_info)
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            record.fields = _mask_value(fields)
        return True


class ExpectedRefusalFilter(logging.Filter):
    """Drops Django's "Forbidden (Permission denied)" record and its traceback.

    A 403 from PermissionDenied is the access helper doing its job, not a fault; the request
    line (RequestLogMiddleware) already records it, once, with its status.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not (
            getattr(record, "status_code", None) == 403 and isinstance(exc, PermissionDenied)
        )


def _record_fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = getattr(record, "fields", None)
    return dict(fields) if isinstance(fields, dict) else {}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, then the fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        for key, value in _record_fields(record).items():
            entry.setdefault(key, value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        # Masked here too, value by value before JSON escaping can hide a pattern, because a
        # formatter may be used on a handler without the filter.
        return json.dumps(_mask_value(entry), default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """Readable lines for development: the usual prefix, the message, then key=value fields."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = _record_fields(record)
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        if request_id:
            fields.setdefault("request_id", request_id)
        if fields:
            extra = " ".join(f"{k}={json.dumps(v, default=str)}" for k, v in fields.items())
            head, sep, rest = line.partition("\n")
            line = f"{head} {extra}{sep}{rest}"
        return mask_secrets(line)


def log_job(event: str, *, level: int = logging.INFO, **fields: Any) -> None:
    """One structured line for a background job event; pass ids (generation_id=...), never keys."""
    logging.getLogger(JOB_LOGGER).log(level, event, extra={"fields": {"event": event, **fields}})


def logging_config(*, log_format: str, level: str) -> dict[str, Any]:
    """The LOGGING dict for settings: one console handler, masked, in the chosen format."""
    formatter = "json" if log_format == "json" else "text"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "mask_secrets": {"()": "kinovi_site.logging.MaskSecretsFilter"},
            "expected_refusals": {"()": "kinovi_site.logging.ExpectedRefusalFilter"},
            "require_debug_false": {"()": "django.utils.log.RequireDebugFalse"},
        },
        "formatters": {
            "json": {"()": "kinovi_site.logging.JsonFormatter"},
            "text": {"()": "kinovi_site.logging.TextFormatter"},
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": formatter,
                "filters": ["mask_secrets"],
            },
            # Django's own error mails, kept as its default config has them.
            "mail_admins": {
                "level": "ERROR",
                "filters": ["require_debug_false"],
                "class": "django.utils.log.AdminEmailHandler",
            },
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # Replaces Django's default "django" logger, whose own console handler printed
            # every warning a second time under DEBUG; records reach ours by propagation.
            "django": {"handlers": ["mail_admins"], "level": level},
            "django.request": {"filters": ["expected_refusals"]},
            "django.db.backends": {"level": "WARNING"},
            # django-axes announces its version once per process (four times under make run).
            "axes.apps": {"level": "WARNING"},
            # Django's own request/server lines would duplicate ours; errors still get through.
            "django.server": {"level": "ERROR"},
            # django-q2 configures its own handler; route it through ours instead.
            "django-q": {"handlers": ["console"], "level": level, "propagate": False},
        },
    }
