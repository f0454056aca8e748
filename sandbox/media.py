"""Sandbox outputs a browser really plays: an H.264 test-pattern MP4 and its last frame as PNG."""

import logging
import os
import re
import subprocess
import tempfile
from pathlib import Path

import imageio_ffmpeg
from django.conf import settings

from sandbox.models import SandboxTask

logger = logging.getLogger(__name__)

FPS = 10
FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
)
# Paths go into an ffmpeg filter graph unquoted; anything beyond these characters is skipped
# rather than escaped, because a wrong escape would fail the render.
_SAFE_PATH = re.compile(r"^[\w/.\-]+$")
_MARKER = re.compile(r"\[sandbox:[a-z]+\]")


class RenderFailed(Exception):
    pass


def media_dir(task: SandboxTask) -> Path:
    return Path(settings.MEDIA_ROOT) / "sandbox" / task.task_id


def _font() -> str | None:
    for candidate in FONT_CANDIDATES:
        if os.path.isfile(candidate) and _SAFE_PATH.match(candidate):
            return candidate
    return None


def caption(prompt: str, *, words: int = 6, limit: int = 48) -> str:
    text = " ".join(_MARKER.sub(" ", prompt).split()[:words])
    return text[:limit] or "Kinovi sandbox"


def _run(args: list[str]) -> None:
    result = subprocess.run(  # noqa: S603 - fixed binary, arguments built here, no shell
        [imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-y", "-hide_banner", "-loglevel", "error"]
        + args,
        capture_output=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise RenderFailed(result.stderr.decode(errors="replace")[-500:])


def render(task: SandboxTask, video: Path, last_frame: Path) -> None:
    """Write the MP4 (requested duration, the task's width x height) and its last frame."""
    source = f"testsrc2=size={task.width}x{task.height}:rate={FPS}:duration={task.duration}"
    encode = [
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-crf",
        "30",
        "-pix_fmt",
        "yuv420p",
        "-movflags",
        "+faststart",
        "-an",
        "-f",
        "mp4",
        str(video),
    ]
    font = _font()
    drawn = False
    if font:
        with tempfile.TemporaryDirectory(prefix="kinovi-caption-") as scratch:
            text_file = os.path.join(scratch, "caption.txt")
            Path(text_file).write_text(caption(task.prompt), encoding="utf-8")
            if _SAFE_PATH.match(text_file):
                size = max(12, task.height // 14)
                draw = (
                    f"drawtext=fontfile={font}:textfile={text_file}:fontcolor=white:"
                    f"fontsize={size}:box=1:boxcolor=black@0.6:boxborderw={size // 3}:"
                    "x=(w-text_w)/2:y=h-text_h-h/8"
                )
                try:
                    _run(["-f", "lavfi", "-i", source, "-vf", draw, *encode])
                    drawn = True
                except RenderFailed as exc:
                    # No freetype or an unreadable font: a plain pattern beats no video at all.
                    logger.warning("Sandbox caption skipped: %s", exc)
    if not drawn:
        _run(["-f", "lavfi", "-i", source, *encode])
    # Decode the last second and keep overwriting one image: what remains is the last frame.
    _run(
        [
            "-sseof",
            "-1",
            "-i",
            str(video),
            "-update",
            "1",
            "-c:v",
            "png",
            "-f",
            "image2",
            str(last_frame),
        ]
    )


def ensure_rendered(task: SandboxTask) -> tuple[Path, Path]:
    """The task's files, rendered on first need and cached under MEDIA_ROOT/sandbox/."""
    directory = media_dir(task)
    video, last_frame = directory / "video.mp4", directory / "last-frame.png"
    if video.is_file() and last_frame.is_file():
        return video, last_frame
    directory.mkdir(parents=True, exist_ok=True)
    # Render under unique names and move into place, so two first requests racing each other
    # never serve a half-written file.
    suffix = f".{os.getpid()}.{os.urandom(4).hex()}.tmp"
    tmp_video = directory / f"video{suffix}"
    tmp_frame = directory / f"last-frame{suffix}"
    try:
        render(task, tmp_video, tmp_frame)
        os.replace(tmp_video, video)
        os.replace(tmp_frame, last_frame)
    finally:
        for leftover in (tmp_video, tmp_frame):
            leftover.unlink(missing_ok=True)
    root = Path(settings.MEDIA_ROOT)
    SandboxTask.objects.filter(pk=task.pk).update(
        video_path=str(video.relative_to(root)), last_frame_path=str(last_frame.relative_to(root))
    )
    return video, last_frame
