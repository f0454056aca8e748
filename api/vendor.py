"""The vendor's shapes: a createTask body read into the studio's terms, a generation written
as recordInfo. Field rules are the studio's own (the same validator the new-video form's
body goes through), so a script is refused exactly where the form would be.
"""

import uuid
from dataclasses import dataclass

from generations.models import Generation, Status
from kinovi import validate_create_inputs
from kinovi.schema import DEFAULT_RESOLUTION

TASK_PREFIX = "gen_"
DEFAULTS = {"duration": 5, "aspectRatio": "16:9", "mode": "keyframe"}
# Inputs of the vendor's newer pages the studio cannot pass on: refused rather than dropped,
# since the vendor would silently ignore them and the script would get another video.
UNSUPPORTED_INPUTS = ("urls", "imageUrls", "videoUrls", "audioUrls", "seed")

# The studio's statuses in the vendor's vocabulary (waiting, generating, success, fail).
VENDOR_STATUS = {
    Status.QUEUED: "waiting",
    Status.SUBMITTING: "waiting",
    Status.UNKNOWN: "waiting",
    Status.WAITING: "waiting",
    Status.GENERATING: "generating",
    Status.STALLED: "generating",
    Status.SUCCESS: "success",
    Status.FAIL: "fail",
    Status.REJECTED: "fail",
    Status.CANCELED: "fail",
}
STUDIO_STATUSES = {
    vendor: [s for s, v in VENDOR_STATUS.items() if v == vendor]
    for vendor in ("waiting", "generating", "success", "fail")
}


@dataclass(frozen=True)
class CreateRequest:
    model: str
    prompt: str
    duration: int
    aspect_ratio: str
    mode: str
    upscale_4k: bool
    callback_url: str | None


def _error(path: str, message: str) -> dict:
    return {"path": path, "message": message}


def _duration(value):
    """The seed's string ("5") or the README's integer; anything else is left to be refused."""
    if value is None:
        return DEFAULTS["duration"]
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return value


def _upscale(value, errors: list) -> bool:
    if value in (None, ""):
        return False
    if isinstance(value, str) and value.lower() == "4k":
        return True
    errors.append(_error("inputs.upscaleResolution", "upscaleResolution must be 4k when given."))
    return False


def _unstorable(value) -> bool:
    """A string the database cannot keep: a NUL character, or a lone surrogate (JSON allows
    "\\ud800"; UTF-8 does not). The form refuses these too."""
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return "\x00" in value


def _given(inputs: dict, name: str):
    value = inputs.get(name)
    return DEFAULTS[name] if value is None else value


def read_create_body(body) -> tuple[CreateRequest | None, list[dict]]:
    """A createTask body as the studio's parameters, or the list of problems with it."""
    if not isinstance(body, dict):
        return None, [_error("", "The body must be a JSON object.")]
    inputs = body.get("inputs")
    if not isinstance(inputs, dict):
        return None, [_error("inputs", "inputs is required and must be an object.")]
    errors = [
        _error(f"inputs.{name}", f"{name} is not supported by this studio; leave it out.")
        for name in UNSUPPORTED_INPUTS
        if inputs.get(name) is not None
    ]
    resolution = inputs.get("outputResolution")
    if resolution is not None and resolution != DEFAULT_RESOLUTION:
        errors.append(
            _error(
                "inputs.outputResolution",
                f"outputResolution must be {DEFAULT_RESOLUTION} here (or left out).",
            )
        )
    for path, value in (
        ("inputs.prompt", inputs.get("prompt")),
        ("callBackUrl", body.get("callBackUrl")),
    ):
        if _unstorable(value):
            errors.append(_error(path, "must not contain NUL or unpaired surrogate characters."))
    if errors:
        return None, errors
    upscale = _upscale(inputs.get("upscaleResolution"), errors)
    request = CreateRequest(
        model=body.get("model"),
        prompt=inputs.get("prompt"),
        duration=_duration(inputs.get("duration")),
        # Left out means the default; given empty is a mistake, refused like any bad value.
        aspect_ratio=_given(inputs, "aspectRatio"),
        mode=_given(inputs, "mode"),
        upscale_4k=upscale,
        callback_url=body.get("callBackUrl"),  # given empty is refused, not ignored
    )
    errors += validate_create_inputs(
        model=request.model,
        prompt=request.prompt,
        duration=request.duration,
        aspect_ratio=request.aspect_ratio,
        mode=request.mode,
        upscale_4k=request.upscale_4k,
        callback_url=request.callback_url,
    )
    return (None, errors) if errors else (request, [])


def task_id(generation: Generation) -> str:
    return f"{TASK_PREFIX}{generation.public_id.hex}"


def parse_task_id(value) -> uuid.UUID | None:
    """The generation's public id from a task id (`gen_<hex>` or the bare uuid), or None."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        return uuid.UUID(value.removeprefix(TASK_PREFIX))
    except ValueError:
        return None


def _epoch_ms(moment) -> int | None:
    return int(moment.timestamp() * 1000) if moment else None


def _error_of(generation: Generation) -> dict | None:
    if generation.status == Status.CANCELED:
        return {"code": "canceled", "message": "Canceled before it was sent to Kinovi."}
    if generation.status in (Status.FAIL, Status.REJECTED):
        return {
            "code": generation.error_code or generation.status,
            "message": generation.error_message or "The video could not be made.",
        }
    return None


def _output_of(generation: Generation) -> list[dict] | None:
    if generation.status != Status.SUCCESS or not generation.video_url:
        return None
    item = {
        "url": generation.video_url,
        "width": generation.width,
        "height": generation.height,
        "mediaType": "video/mp4",
    }
    if generation.seed is not None:
        item["seed"] = generation.seed
    if generation.last_frame_url:
        item["lastFrameImage"] = generation.last_frame_url
    return [item]


def credits_used(generation: Generation) -> int:
    """What the task costs or cost: Kinovi's figure once known, else the studio's estimate;
    nothing for what never reached Kinovi (canceled, rejected)."""
    if generation.status in (Status.CANCELED, Status.REJECTED):
        return 0
    if generation.credits_used is not None:
        return generation.credits_used
    return generation.estimated_credits


def record_info(generation: Generation) -> dict:
    """The vendor's recordInfo answer for a generation, plus the studio's own status."""
    terminal = generation.status in (Status.SUCCESS, Status.FAIL, Status.REJECTED, Status.CANCELED)
    return {
        "taskId": task_id(generation),
        "model": generation.model,
        "status": VENDOR_STATUS.get(generation.status, "waiting"),
        "creditsUsed": credits_used(generation),
        "output": _output_of(generation),
        "error": _error_of(generation),
        "createTime": _epoch_ms(generation.created_at),
        "completeTime": _epoch_ms(generation.completed_at) if terminal else None,
        "studioStatus": generation.status,
    }
