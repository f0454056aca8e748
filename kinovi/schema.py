"""The vendor's vocabulary, the createTask body and the parsing of Kinovi's answers.

The one place that knows Kinovi's field names: the studio's models, forms and the sandbox's
checks are written in the studio's own terms and reach the wire only through here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

from django.db.models import TextChoices

from kinovi.errors import InvalidInput, MalformedResponse


class Model(TextChoices):
    STANDARD = "seedance-20", "Seedance 2.0 (standard)"
    FAST = "seedance2-fast", "Seedance 2.0 Fast"


class AspectRatio(TextChoices):
    WIDE = "16:9", "16:9 landscape"
    TALL = "9:16", "9:16 portrait"
    SQUARE = "1:1", "1:1 square"
    PORTRAIT = "3:4", "3:4 portrait"
    CLASSIC = "4:3", "4:3 classic"
    CINEMA = "21:9", "21:9 cinema"


class Mode(TextChoices):
    KEYFRAME = "keyframe", "Keyframe"
    REFERENCE = "reference", "Omni Reference"


class OutputResolution(TextChoices):
    """What the video renders at. Kinovi's default when it is omitted is 1080p (the dearest):
    the studio always says which it wants."""

    P480 = "480p", "480p"
    P720 = "720p", "720p"
    P1080 = "1080p", "1080p"


# The fast model renders at most 720p.
RESOLUTIONS_BY_MODEL = {
    "seedance-20": ("480p", "720p", "1080p"),
    "seedance2-fast": ("480p", "720p"),
}
# The seed's prices (40 and 28 credits per second) are the 720p rates.
DEFAULT_RESOLUTION = "720p"


class TaskStatus(TextChoices):
    """A task's status as recordInfo says it (`status`) or a webhook claims it (`state`)."""

    WAITING = "waiting", "Waiting"
    GENERATING = "generating", "Generating"
    SUCCESS = "success", "Success"
    FAIL = "fail", "Fail"


MODELS = tuple(Model.values)
ASPECT_RATIOS = tuple(AspectRatio.values)
MODES = tuple(Mode.values)
MIN_DURATION = 4
MAX_DURATION = 15
MAX_PROMPT_LENGTH = 4000
STATUSES = tuple(TaskStatus.values)
TERMINAL = frozenset({TaskStatus.SUCCESS, TaskStatus.FAIL})


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


def field_error(path: str, message: str) -> dict:
    return {"path": path, "message": message}


DIALECTS = ("docs", "models")
DEFAULT_DIALECT = "docs"
MATERIAL_KINDS = ("image", "video", "audio")
MAX_MATERIALS = 12


def _by_kind(materials: list[dict]) -> dict:
    """The README dialect's three lists; the order within a kind is kept (it numbers them)."""
    keys = {"image": "imageUrls", "video": "videoUrls", "audio": "audioUrls"}
    lists: dict = {}
    for item in materials:
        lists.setdefault(keys[item["kind"]], []).append(item["url"])
    return lists


# The one table from the studio's fields to the wire, per dialect: each entry gives the
# `inputs` keys a value becomes ({} leaves it out). "docs" is the vendor's reference pages
# (the seed's family); "models" is its model README. Unknown keys are ignored by the vendor,
# so a wrong name here silently drops a user's choice: both columns are exercised against the
# sandbox (tests/generations/test_dialects.py). Order matters: in "models" native 4K replaces
# the tier written just before it.
WIRE = {
    "prompt": {
        "docs": lambda v: {"prompt": v},
        "models": lambda v: {"prompt": v},
    },
    "duration": {
        "docs": lambda v: {"duration": str(v)},
        "models": lambda v: {"duration": v},
    },
    "aspect_ratio": {
        "docs": lambda v: {"aspectRatio": v},
        "models": lambda v: {"aspectRatio": v},
    },
    "mode": {
        "docs": lambda v: {"mode": v},
        "models": lambda v: {"mode": v},
    },
    # Always explicit: without it Kinovi renders (and charges) 1080p.
    "output_resolution": {
        "docs": lambda v: {"outputResolution": v},
        "models": lambda v: {"outputResolution": v},
    },
    "upscale_4k": {
        "docs": lambda v: {"upscaleResolution": "4k"} if v else {},
        "models": lambda v: {"outputResolution": "4k"} if v else {},
    },
    "materials": {
        "docs": lambda v: {"urls": [item["url"] for item in v]} if v else {},
        "models": lambda v: _by_kind(v) if v else {},
    },
}


def validate_create_inputs(
    *,
    model,
    prompt,
    duration,
    aspect_ratio,
    mode,
    upscale_4k,
    output_resolution=DEFAULT_RESOLUTION,
    callback_url=None,
    materials=(),
    dialect=DEFAULT_DIALECT,
) -> list[dict]:
    """Every problem with a createTask's inputs as [{path, message}], using the vendor's paths."""
    errors = []
    if model not in MODELS:
        errors.append(field_error("model", f"model must be one of {', '.join(MODELS)}."))
    if not isinstance(prompt, str) or not prompt.strip():
        errors.append(field_error("inputs.prompt", "prompt is required."))
    elif len(prompt) > MAX_PROMPT_LENGTH:
        errors.append(
            field_error("inputs.prompt", f"prompt must be at most {MAX_PROMPT_LENGTH} characters.")
        )
    if (
        isinstance(duration, bool)
        or not isinstance(duration, int)
        or not MIN_DURATION <= duration <= MAX_DURATION
    ):
        errors.append(
            field_error(
                "inputs.duration",
                f"duration must be a whole number of seconds from {MIN_DURATION} to "
                f"{MAX_DURATION}.",
            )
        )
    if aspect_ratio not in ASPECT_RATIOS:
        errors.append(
            field_error(
                "inputs.aspectRatio", f"aspectRatio must be one of {', '.join(ASPECT_RATIOS)}."
            )
        )
    if mode not in MODES:
        errors.append(field_error("inputs.mode", f"mode must be one of {', '.join(MODES)}."))
    errors += _resolution_errors(model, output_resolution, upscale_4k, dialect)
    errors += _material_errors(materials)
    if callback_url is not None:
        parts = urlsplit(callback_url) if isinstance(callback_url, str) else None
        if parts is None or parts.scheme not in {"http", "https"} or not parts.hostname:
            errors.append(field_error("callBackUrl", "callBackUrl must be an http(s) URL."))
    return errors


def _resolution_errors(model, output_resolution, upscale_4k, dialect) -> list[dict]:
    errors = []
    allowed = RESOLUTIONS_BY_MODEL.get(model, OutputResolution.values)
    if output_resolution not in allowed:
        errors.append(
            field_error(
                "inputs.outputResolution",
                f"outputResolution must be one of {', '.join(allowed)} for {model}.",
            )
        )
    if not isinstance(upscale_4k, bool):
        errors.append(field_error("inputs.upscaleResolution", "upscale_4k must be true or false."))
    elif upscale_4k and dialect == "models" and output_resolution != "1080p":
        # The README form has no upscale: its "4k" is a native 4K output priced as 1080p plus
        # the 4K add-on, so anything else would be charged differently than estimated.
        errors.append(
            field_error(
                "inputs.outputResolution",
                "with the models dialect, 4K is a native 4K output: choose 1080p with it.",
            )
        )
    return errors


def _material_errors(materials) -> list[dict]:
    if not isinstance(materials, list | tuple):
        return [field_error("inputs.urls", "materials must be a list.")]
    errors = []
    if len(materials) > MAX_MATERIALS:
        errors.append(field_error("inputs.urls", f"at most {MAX_MATERIALS} files in all."))
    for index, item in enumerate(materials):
        url = item.get("url") if isinstance(item, dict) else None
        parts = urlsplit(url) if isinstance(url, str) else None
        if (
            parts is None
            or parts.scheme not in {"http", "https"}
            or not parts.hostname
            or item.get("kind") not in MATERIAL_KINDS
        ):
            errors.append(
                field_error(
                    f"inputs.urls[{index}]", "each material needs a kind and an http(s) URL."
                )
            )
    return errors


def build_create_body(
    *,
    model: str,
    prompt: str,
    duration: int,
    aspect_ratio: str,
    mode: str,
    upscale_4k: bool,
    output_resolution: str = DEFAULT_RESOLUTION,
    callback_url: str | None = None,
    materials: list[dict] | tuple = (),
    dialect: str = DEFAULT_DIALECT,
) -> dict:
    """The exact createTask JSON body (also shown to the user in "what will be sent").

    `materials` are [{"kind": image|video|audio, "url": ...}] in the order Kinovi numbers them
    (@image1, @video1, ...); `dialect` picks the column of WIRE. Raises InvalidInput (a
    ValueError) for anything the vendor would silently default or drop."""
    if dialect not in DIALECTS:
        raise ValueError(f"dialect must be one of {', '.join(DIALECTS)}, not {dialect!r}.")
    fields = {
        "prompt": prompt,
        "duration": duration,
        "aspect_ratio": aspect_ratio,
        "mode": mode,
        "output_resolution": output_resolution,
        "upscale_4k": upscale_4k,
        "materials": list(materials) if isinstance(materials, list | tuple) else materials,
    }
    errors = validate_create_inputs(
        model=model, callback_url=callback_url, dialect=dialect, **fields
    )
    if errors:
        raise InvalidInput("; ".join(e["message"] for e in errors), errors=errors)
    body: dict = {"model": model}
    if callback_url:
        body["callBackUrl"] = callback_url
    inputs: dict = {}
    for name, columns in WIRE.items():
        inputs.update(columns[dialect](fields[name]))
    body["inputs"] = inputs
    return body


def safe_int(value) -> int | None:
    try:
        return _opt_int(value, "number")
    except MalformedResponse:
        return None
