"""createTask's body as the vendor reads it, in either of its two published dialects.

- `docs` (the default, settings.KINOVI_SANDBOX_DIALECT): the vendor's current reference pages.
  String `duration`, `outputResolution` 480p/720p/1080p, `upscaleResolution` "4k", one `urls`
  array whose kinds are only known once the files are fetched.
- `models`: the vendor's model README. `imageUrls`/`videoUrls`/`audioUrls`, integer `duration`,
  `outputResolution` up to native `4k`, `generate_audio`, `seed`, prompts up to 10 000 characters.

Either way unknown keys are silently ignored, exactly as the vendor does (which is why the
studio must validate its own payload: the wrong dialect drops a user's materials unnoticed).
Every problem is reported as {path, message} in one 400.
"""

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from sandbox import pricing

DOCS, MODELS = "docs", "models"
DIALECTS = (DOCS, MODELS)
ASPECT_RATIOS = ("16:9", "9:16", "1:1", "3:4", "4:3", "21:9")
MODES = ("keyframe", "reference")
MAX_PROMPT_LENGTH = {DOCS: 4000, MODELS: 10_000}
MAX_URL_LENGTH = 2048
# The model's published limits on materials (counts here; sizes and durations in materials.py).
MAX_FILES = 12
MAX_PER_KIND = {"image": 9, "video": 3, "audio": 3}
MAX_KEYFRAME_IMAGES = 2
URL_KEYS = {"imageUrls": "image", "videoUrls": "video", "audioUrls": "audio"}
MAX_SEED = 4_294_967_295


class InvalidInputs(Exception):
    def __init__(self, errors: list[dict]):
        super().__init__("Invalid parameters.")
        self.errors = errors


@dataclass(frozen=True)
class CreateInputs:
    model: str
    prompt: str
    duration: int
    aspect_ratio: str
    mode: str
    resolution: str  # 480p, 720p or 1080p: the tier that is priced and rendered
    upscale_4k: bool  # docs: upscaleResolution "4k"; models: outputResolution "4k" (native)
    callback_url: str
    raw_inputs: dict
    dialect: str = DOCS
    # [{"url": ..., "kind": "image"|"video"|"audio"|None}] in order; the kind is None where the
    # request does not say it (docs' single `urls` array) and the fetched file decides.
    urls: list = field(default_factory=list)
    seed: int | None = None
    generate_audio: bool = True

    @property
    def reference_video_declared(self) -> bool:
        return any(item["kind"] == "video" for item in self.urls)


class _Errors(list):
    def __call__(self, path: str, message: str) -> None:
        self.append({"path": path, "message": message})

    def has(self, path: str) -> bool:
        return any(error["path"] == path for error in self)


def parse(body, *, dialect: str = DOCS) -> CreateInputs:
    """The request's inputs, or InvalidInputs listing every problem; `body` is parsed JSON."""
    errors = _Errors()
    model = body.get("model")
    if model is None:
        errors("model", "model is required.")
    elif model not in pricing.MODELS:
        errors("model", "model must be seedance-20 or seedance2-fast.")
    callback_url = _callback_url(body.get("callBackUrl"), errors)
    inputs = body.get("inputs")
    if not isinstance(inputs, dict):
        errors("inputs", "inputs is required and must be an object.")
        inputs = {}
    mode = inputs.get("mode", "keyframe")
    if mode not in MODES:
        errors("inputs.mode", "mode must be keyframe or reference.")
    aspect_ratio = inputs.get("aspectRatio", "16:9")
    if aspect_ratio not in ASPECT_RATIOS:
        errors("inputs.aspectRatio", f"aspectRatio must be one of {', '.join(ASPECT_RATIOS)}.")
    if dialect == MODELS:
        urls = _models_urls(inputs, mode, errors)
        duration = _int_duration(inputs.get("duration", 5), errors)
        resolution, upscale = _models_resolution(inputs, model, errors)
        seed, audio = _seed(inputs.get("seed"), errors), _flag(inputs, "generate_audio", errors)
    else:
        urls = _docs_urls(inputs, mode, errors)
        duration = _str_duration(inputs.get("duration", "5"), errors)
        resolution, upscale = _docs_resolution(inputs, model, errors)
        seed, audio = None, True
    prompt = _prompt(inputs, mode=mode, urls=urls, dialect=dialect, errors=errors)
    if errors:
        raise InvalidInputs(list(errors))
    return CreateInputs(
        model=model,
        prompt=prompt,
        duration=duration,
        aspect_ratio=aspect_ratio,
        mode=mode,
        resolution=resolution,
        upscale_4k=upscale,
        callback_url=callback_url,
        raw_inputs=inputs,
        dialect=dialect,
        urls=urls,
        seed=seed,
        generate_audio=audio,
    )


def _callback_url(value, errors: _Errors) -> str:
    if value in (None, ""):
        return ""
    if not isinstance(value, str) or len(value) > MAX_URL_LENGTH:
        errors("callBackUrl", "callBackUrl must be a URL.")
        return ""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        errors("callBackUrl", "callBackUrl must be an http or https URL.")
        return ""
    return value


def _prompt(inputs: dict, *, mode: str, urls: list, dialect: str, errors: _Errors) -> str:
    prompt = inputs.get("prompt")
    limit = MAX_PROMPT_LENGTH[dialect]
    # Image-to-video needs no words: the first frame says what to animate.
    optional = mode == "keyframe" and bool(urls)
    if prompt is None and optional:
        return ""
    if not isinstance(prompt, str) or (not prompt.strip() and not optional):
        if not errors.has("inputs"):
            errors("inputs.prompt", "prompt is required.")
        return ""
    if len(prompt) > limit:
        errors("inputs.prompt", f"prompt must be at most {limit} characters.")
    return prompt


def _str_duration(value, errors: _Errors) -> int:
    if not isinstance(value, str) or not value.isdigit() or not 4 <= int(value) <= 15:
        errors("inputs.duration", 'duration must be a string from "4" to "15".')
        return 0
    return int(value)


def _int_duration(value, errors: _Errors) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 4 <= value <= 15:
        errors("inputs.duration", "duration must be an integer from 4 to 15.")
        return 0
    return value


def _check_tier(model, resolution: str, errors: _Errors) -> None:
    if model in pricing.MODELS and resolution not in pricing.resolutions(model):
        errors(
            "inputs.outputResolution",
            f"{model} does not offer {resolution}; "
            f"choose {' or '.join(pricing.resolutions(model))}.",
        )


def _default_tier(model) -> str:
    # The API's default is 1080p; the fast model has none, so it gets its best, 720p.
    return pricing.resolutions(model)[-1] if model in pricing.MODELS else "1080p"


def _docs_resolution(inputs: dict, model, errors: _Errors) -> tuple[str, bool]:
    resolution = inputs.get("outputResolution")
    if resolution is None:
        resolution = _default_tier(model)
    elif resolution not in ("480p", "720p", "1080p"):
        errors("inputs.outputResolution", "outputResolution must be 480p, 720p or 1080p.")
    else:
        _check_tier(model, resolution, errors)
    upscale = inputs.get("upscaleResolution")
    if upscale not in (None, "4k"):
        errors("inputs.upscaleResolution", 'upscaleResolution can only be "4k".')
    return resolution, upscale == "4k"


def _models_resolution(inputs: dict, model, errors: _Errors) -> tuple[str, bool]:
    resolution = inputs.get("outputResolution")
    if resolution is None:
        return _default_tier(model), False
    if resolution not in ("480p", "720p", "1080p", "4k"):
        errors("inputs.outputResolution", "outputResolution must be 480p, 720p, 1080p or 4k.")
        return "1080p", False
    if resolution == "4k":
        # Native 4K is priced as the model's 1080p tier plus the 4K surcharge.
        _check_tier(model, "1080p", errors)
        return "1080p", True
    _check_tier(model, resolution, errors)
    return resolution, False


def _seed(value, errors: _Errors) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not -1 <= value <= MAX_SEED:
        errors("inputs.seed", f"seed must be an integer from 0 to {MAX_SEED}, or -1 for random.")
        return None
    return None if value == -1 else value


def _flag(inputs: dict, key: str, errors: _Errors) -> bool:
    value = inputs.get(key, True)
    if not isinstance(value, bool):
        errors(f"inputs.{key}", f"{key} must be true or false.")
        return True
    return value


def _url_list(value, path: str, errors: _Errors) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        errors(path, f"{path.removeprefix('inputs.')} must be an array of URLs.")
        return []
    good = []
    for index, url in enumerate(value):
        parts = urlsplit(url) if isinstance(url, str) and len(url) <= MAX_URL_LENGTH else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            errors(f"{path}[{index}]", "each URL must be a public http or https URL.")
        else:
            good.append(url)
    return good


def _docs_urls(inputs: dict, mode: str, errors: _Errors) -> list[dict]:
    urls = _url_list(inputs.get("urls"), "inputs.urls", errors)
    if len(urls) > MAX_FILES:
        errors("inputs.urls", f"at most {MAX_FILES} files in all.")
    if mode == "keyframe" and len(urls) > MAX_KEYFRAME_IMAGES:
        errors(
            "inputs.urls",
            "keyframe mode takes 1 image (first frame) or 2 (first and last frame); "
            "use mode reference for more materials.",
        )
    return [{"url": url, "kind": None} for url in urls]


def _models_urls(inputs: dict, mode: str, errors: _Errors) -> list[dict]:
    found = {}
    for key, kind in URL_KEYS.items():
        found[kind] = _url_list(inputs.get(key), f"inputs.{key}", errors)
        if len(found[kind]) > MAX_PER_KIND[kind]:
            errors(f"inputs.{key}", f"at most {MAX_PER_KIND[kind]} {kind} URLs.")
    if sum(len(urls) for urls in found.values()) > MAX_FILES:
        errors("inputs", f"at most {MAX_FILES} files in all.")
    if mode == "keyframe" and (found["video"] or found["audio"]):
        errors("inputs.mode", "videos and audio are references: use mode reference.")
    if mode == "keyframe" and len(found["image"]) > MAX_KEYFRAME_IMAGES:
        errors("inputs.imageUrls", "keyframe mode takes 1 or 2 images (first and last frame).")
    if found["audio"] and not (found["image"] or found["video"]):
        errors("inputs.audioUrls", "audio cannot be the only reference.")
    return [{"url": url, "kind": kind} for kind, urls in found.items() for url in urls]
