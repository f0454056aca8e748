"""The sandbox fetches a task's materials as the vendor does: over HTTP, then checks each file.

Every URL is downloaded (timeouts, a size cap, redirects only to http/https, at most a few),
probed with mediakit for what it really is, and the whole set is checked against the model's
published limits. Any problem raises MaterialError with a vendor-like {code, message} naming
the material, and the task ends in `fail` (refunded) — see services.check_materials.
"""

import shutil
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import requests

from mediakit import AUDIO, IMAGE, VIDEO, MediaError, MediaInfo, probe
from sandbox.inputs import MAX_FILES, MAX_KEYFRAME_IMAGES, MAX_PER_KIND

FETCH_FAILED = "4001"
MATERIAL_REFUSED = "4002"
TIMEOUT = (3.0, 15.0)
MAX_REDIRECTS = 3
# No single allowed file is larger than the videos' 50 MB in all; stop reading beyond that.
MAX_DOWNLOAD_BYTES = 50 * 1024 * 1024
CHUNK = 64 * 1024
MB = 1024 * 1024
FORMATS = {IMAGE: ("jpeg", "png", "webp"), VIDEO: ("mp4", "mov"), AUDIO: ("mp3", "wav")}
MAX_IMAGE_BYTES = 30 * MB  # each
MAX_VIDEO_BYTES = 50 * MB  # in all
MAX_AUDIO_BYTES = 15 * MB  # in all
VIDEO_SECONDS = (2.0, 15.0)  # combined
MAX_AUDIO_SECONDS = 15.0  # combined
# A little slack on durations: containers round, and a "15 s" clip may probe as 15.02 s.
DURATION_SLACK = 0.05


class MaterialError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def fetch(url: str, dest: Path, *, session: requests.Session) -> None:
    """Download `url` to `dest`, following at most MAX_REDIRECTS http(s) redirects."""
    for _ in range(MAX_REDIRECTS + 1):
        try:
            response = session.get(url, stream=True, timeout=TIMEOUT, allow_redirects=False)
        except requests.RequestException as exc:
            raise MaterialError(
                FETCH_FAILED, f"could not be downloaded ({type(exc).__name__})."
            ) from None
        with response:
            if response.is_redirect:
                url = urljoin(url, response.headers.get("Location", ""))
                if urlsplit(url).scheme not in ("http", "https"):
                    raise MaterialError(FETCH_FAILED, "redirects to a URL that is not http(s).")
                continue
            if response.status_code != 200:
                raise MaterialError(
                    FETCH_FAILED, f"could not be downloaded (HTTP {response.status_code})."
                )
            _save(response, dest)
            return
    raise MaterialError(
        FETCH_FAILED, f"could not be downloaded (more than {MAX_REDIRECTS} redirects)."
    )


def _save(response: requests.Response, dest: Path) -> None:
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > MAX_DOWNLOAD_BYTES:
        raise MaterialError(MATERIAL_REFUSED, f"is larger than {MAX_DOWNLOAD_BYTES // MB} MB.")
    written = 0
    try:
        with dest.open("wb") as out:
            for chunk in response.iter_content(CHUNK):
                written += len(chunk)
                if written > MAX_DOWNLOAD_BYTES:
                    raise MaterialError(
                        MATERIAL_REFUSED, f"is larger than {MAX_DOWNLOAD_BYTES // MB} MB."
                    )
                out.write(chunk)
    except requests.RequestException as exc:
        raise MaterialError(
            FETCH_FAILED, f"could not be downloaded whole ({type(exc).__name__})."
        ) from None


def _label(index: int, url: str) -> str:
    shown = url if len(url) <= 120 else url[:117] + "..."
    return f"Material {index + 1} ({shown})"


def fetch_all(urls: list[dict], directory: Path) -> list[dict]:
    """Download and probe every material; the facts of each, in order, or MaterialError."""
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True, exist_ok=True)
    found = []
    with requests.Session() as session:
        for index, item in enumerate(urls):
            path = directory / f"{index + 1:02d}"
            try:
                fetch(item["url"], path, session=session)
                info = probe(path)
            except MaterialError as exc:
                raise MaterialError(
                    exc.code, f"{_label(index, item['url'])} {exc.message}"
                ) from None
            except MediaError as exc:
                raise MaterialError(
                    MATERIAL_REFUSED,
                    f"{_label(index, item['url'])} is not a usable image, video or audio file: "
                    f"{str(exc).split(': ', 1)[-1]}",
                ) from None
            _check_one(index, item, info)
            found.append(_facts(index, item, info, path))
    return found


def _check_one(index: int, item: dict, info: MediaInfo) -> None:
    label = _label(index, item["url"])
    if item["kind"] and info.kind != item["kind"]:
        raise MaterialError(
            MATERIAL_REFUSED,
            f"{label} was given as {item['kind']} but is {info.kind} ({info.format}).",
        )
    if info.format not in FORMATS[info.kind]:
        allowed = ", ".join(FORMATS[info.kind])
        raise MaterialError(
            MATERIAL_REFUSED, f"{label} is {info.format}; {info.kind} must be {allowed}."
        )
    if info.kind == IMAGE and info.bytes >= MAX_IMAGE_BYTES:
        raise MaterialError(MATERIAL_REFUSED, f"{label}: images must be under 30 MB each.")


def _facts(index: int, item: dict, info: MediaInfo, path: Path) -> dict:
    return {
        "url": item["url"],
        "kind": info.kind,
        "format": info.format,
        "bytes": info.bytes,
        "width": info.width,
        "height": info.height,
        "duration": info.duration,
        "file": path.name,
    }


def check_set(materials: list[dict], *, mode: str) -> None:
    """The limits on the whole set: counts, combined sizes and durations, and mode rules."""
    by_kind = {kind: [m for m in materials if m["kind"] == kind] for kind in FORMATS}
    if len(materials) > MAX_FILES:
        raise MaterialError(MATERIAL_REFUSED, f"At most {MAX_FILES} materials in all.")
    if mode == "keyframe":
        if by_kind[VIDEO] or by_kind[AUDIO]:
            raise MaterialError(
                MATERIAL_REFUSED,
                "Keyframe mode takes images only (first and last frame); videos and audio are "
                "references: use mode reference.",
            )
        if len(by_kind[IMAGE]) > MAX_KEYFRAME_IMAGES:
            raise MaterialError(MATERIAL_REFUSED, "Keyframe mode takes 1 or 2 images.")
        return
    for kind, items in by_kind.items():
        if len(items) > MAX_PER_KIND[kind]:
            raise MaterialError(
                MATERIAL_REFUSED,
                f"At most {MAX_PER_KIND[kind]} {kind} materials; got {len(items)}.",
            )
    if by_kind[AUDIO] and not (by_kind[IMAGE] or by_kind[VIDEO]):
        raise MaterialError(MATERIAL_REFUSED, "Audio cannot be the only reference.")
    _check_totals(by_kind)


def _check_totals(by_kind: dict) -> None:
    videos, audio = by_kind[VIDEO], by_kind[AUDIO]
    video_seconds = sum(m["duration"] for m in videos)
    if videos and not (
        VIDEO_SECONDS[0] - DURATION_SLACK <= video_seconds <= VIDEO_SECONDS[1] + DURATION_SLACK
    ):
        raise MaterialError(
            MATERIAL_REFUSED,
            f"Reference videos must last 2 to 15 s combined; these last {video_seconds:.1f} s.",
        )
    if sum(m["bytes"] for m in videos) >= MAX_VIDEO_BYTES:
        raise MaterialError(MATERIAL_REFUSED, "Reference videos must be under 50 MB in all.")
    audio_seconds = sum(m["duration"] for m in audio)
    if audio_seconds > MAX_AUDIO_SECONDS + DURATION_SLACK:
        raise MaterialError(
            MATERIAL_REFUSED,
            f"Reference audio must last at most 15 s combined; these last {audio_seconds:.1f} s.",
        )
    if sum(m["bytes"] for m in audio) >= MAX_AUDIO_BYTES:
        raise MaterialError(MATERIAL_REFUSED, "Reference audio must be under 15 MB in all.")
