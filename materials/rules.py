"""The model's published limits on materials (Seedance 2.0), as the studio checks them.

One upload is checked when it arrives (what it really is, its format, its own size and
length); a set of attached files when a video is submitted (counts, combined sizes and
durations, audio never alone). Written here independently of the sandbox's copy, which plays
the vendor: a disagreement shows up as a refused task in the end-to-end tests.
"""

from dataclasses import dataclass

MB = 1024 * 1024
FORMATS = {"image": ("jpeg", "png", "webp"), "video": ("mp4", "mov"), "audio": ("mp3", "wav")}
MAX_PER_KIND = {"image": 9, "video": 3, "audio": 3}
MAX_FILES = 12
MAX_IMAGE_BYTES = 30 * MB  # each, under
MAX_VIDEO_BYTES = 50 * MB  # all videos together, under
MAX_AUDIO_BYTES = 15 * MB  # all audio together, under
VIDEO_SECONDS = (2.0, 15.0)  # all videos together
MAX_AUDIO_SECONDS = 15.0  # all audio together
# Containers round: a "15 s" clip may probe as 15.02 s.
SLACK = 0.05
# No single acceptable file is larger than the videos' 50 MB in all (plus the form's fields).
MAX_UPLOAD_BYTES = MAX_VIDEO_BYTES + MB


class Refused(Exception):
    """A file or a set of files outside the limits; the message says why, for a person."""


@dataclass(frozen=True)
class Facts:
    kind: str
    format: str
    bytes: int
    duration: float | None = None


def check_file(facts: Facts, name: str) -> None:
    """One upload on its own: format, size, length."""
    allowed = FORMATS.get(facts.kind, ())
    if facts.format not in allowed:
        raise Refused(
            f"{name} is a {facts.format} {facts.kind}; Kinovi takes {facts.kind}s as "
            f"{', '.join(allowed) or 'nothing'}."
        )
    if facts.kind == "image" and facts.bytes >= MAX_IMAGE_BYTES:
        raise Refused(f"{name} is {_mb(facts.bytes)}; images must be under 30 MB each.")
    if facts.kind == "video":
        if facts.bytes >= MAX_VIDEO_BYTES:
            raise Refused(f"{name} is {_mb(facts.bytes)}; videos must be under 50 MB in all.")
        if (facts.duration or 0) > VIDEO_SECONDS[1] + SLACK:
            raise Refused(f"{name} lasts {facts.duration:.1f} s; videos may last 15 s in all.")
    if facts.kind == "audio":
        if facts.bytes >= MAX_AUDIO_BYTES:
            raise Refused(f"{name} is {_mb(facts.bytes)}; audio must be under 15 MB in all.")
        if (facts.duration or 0) > MAX_AUDIO_SECONDS + SLACK:
            raise Refused(f"{name} lasts {facts.duration:.1f} s; audio may last 15 s in all.")


def check_set(items: list[Facts]) -> None:
    """Files used together as references."""
    by_kind = {kind: [f for f in items if f.kind == kind] for kind in FORMATS}
    for kind, found in by_kind.items():
        if len(found) > MAX_PER_KIND[kind]:
            raise Refused(
                f"{len(found)} {kind}s are attached; Kinovi takes at most {MAX_PER_KIND[kind]}."
            )
    if len(items) > MAX_FILES:
        raise Refused(f"{len(items)} files are attached; Kinovi takes at most {MAX_FILES} in all.")
    if by_kind["audio"] and not (by_kind["image"] or by_kind["video"]):
        raise Refused("Audio cannot be the only reference: add an image or a video.")
    videos, audio = by_kind["video"], by_kind["audio"]
    seconds = sum(f.duration or 0 for f in videos)
    if videos and not VIDEO_SECONDS[0] - SLACK <= seconds <= VIDEO_SECONDS[1] + SLACK:
        raise Refused(f"The videos last {seconds:.1f} s together; Kinovi takes 2 to 15 s.")
    if sum(f.bytes for f in videos) >= MAX_VIDEO_BYTES:
        raise Refused("The videos are 50 MB or more together; Kinovi takes under 50 MB.")
    seconds = sum(f.duration or 0 for f in audio)
    if seconds > MAX_AUDIO_SECONDS + SLACK:
        raise Refused(f"The audio lasts {seconds:.1f} s together; Kinovi takes at most 15 s.")
    if sum(f.bytes for f in audio) >= MAX_AUDIO_BYTES:
        raise Refused("The audio files are 15 MB or more together; Kinovi takes under 15 MB.")


def _mb(size: int) -> str:
    return f"{size / MB:.1f} MB"
