"""Sandbox outputs a browser really plays: an H.264 MP4 and its last frame as PNG.

The picture shows what the task was given: it starts on the first-frame image and crossfades
to the last-frame image (keyframe mode), or plays the test pattern with the reference images
as a strip of thumbnails on top (reference mode), so a person sees their materials were used.
"""

import logging
import os
import re
import subprocess
import tempfile
from pathlib import Path

import imageio_ffmpeg
from django.conf import settings
from PIL import Image, ImageOps

from mediakit import MediaError, extract_frame
from sandbox.models import SandboxTask

logger = logging.getLogger(__name__)

# Few frames and a high CRF keep the files small; a test video needs no smooth motion.
FPS = 5
CROSSFADE = 1.0
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


def _fit(source: Path, size: tuple[int, int], dest: Path) -> Path:
    """The image cropped to cover `size` (centred), as the frame of a video of that size."""
    with Image.open(source) as img:
        ImageOps.fit(img.convert("RGB"), size, Image.Resampling.LANCZOS).save(dest, "PNG")
    return dest


def _strip(sources: list[Path], size: tuple[int, int], dest: Path) -> Path:
    """Reference images as a row of thumbnails (a fifth of the height), left to right."""
    width, height = size
    thumb_h = max(16, height // 5)
    margin = max(4, height // 40)
    strip = Image.new("RGBA", size, (0, 0, 0, 0))
    x = margin
    for source in sources:
        with Image.open(source) as img:
            thumb = ImageOps.contain(img.convert("RGB"), (width, thumb_h))
        if x + thumb.width > width - margin:
            break  # the row is full; the rest would fall off the picture
        strip.paste(
            (255, 255, 255, 255), (x - 2, margin - 2, x + thumb.width + 2, margin + thumb_h + 2)
        )
        strip.paste(thumb, (x, margin + (thumb_h - thumb.height) // 2))
        x += thumb.width + margin
    strip.save(dest, "PNG")
    return dest


def _materials(task: SandboxTask, kind: str) -> list[Path]:
    base = media_dir(task)
    return [base / item["file"] for item in task.materials if item["kind"] == kind]


def _scene(task: SandboxTask, scratch: str) -> tuple[list[str], str, bool]:
    """ffmpeg inputs and the filter graph (ending in [bg]) of the picture before the caption:
    the first-frame image crossfading to the last-frame image, else the test pattern, with
    reference images as a strip on top. The flag says the first frame is an uploaded image."""
    size, seconds = (task.width, task.height), task.duration
    images = _materials(task, "image")
    if task.mode == "keyframe" and images:
        first = _fit(images[0], size, Path(scratch) / "first.png")
        args = ["-loop", "1", "-framerate", str(FPS), "-t", str(seconds), "-i", str(first)]
        graph = "[0:v]format=yuv420p,setsar=1[bg]"
        if len(images) > 1:
            last = _fit(images[1], size, Path(scratch) / "last.png")
            args += ["-loop", "1", "-framerate", str(FPS), "-t", str(CROSSFADE + 0.5)]
            args += ["-i", str(last)]
            graph = (
                "[0:v]format=yuv420p,setsar=1[a];[1:v]format=yuv420p,setsar=1[b];"
                f"[a][b]xfade=transition=fade:duration={CROSSFADE}:"
                f"offset={seconds - CROSSFADE - 0.5}[bg]"
            )
        return args, graph, True
    source = f"testsrc2=size={task.width}x{task.height}:rate={FPS}:duration={seconds}"
    args, graph = ["-f", "lavfi", "-i", source], "[0:v]null[bg]"
    if images:
        strip = _strip(images, size, Path(scratch) / "strip.png")
        args += ["-i", str(strip)]
        graph = "[0:v][1:v]overlay=0:0:format=auto,format=yuv420p[bg]"
    return args, graph, False


def _caption_filter(task: SandboxTask, text_file: str, *, from_image: bool) -> str | None:
    font = _font()
    if not font or not _SAFE_PATH.match(text_file):
        return None
    size = max(12, task.height // 14)
    # Over an uploaded first (and last) frame the caption stays off the first and last second,
    # so those frames are the person's own pictures.
    enable = f":enable='between(t,1,{task.duration - CROSSFADE - 0.6})'" if from_image else ""
    return (
        f"drawtext=fontfile={font}:textfile={text_file}:fontcolor=white:"
        f"fontsize={size}:box=1:boxcolor=black@0.6:boxborderw={size // 3}:"
        f"x=(w-text_w)/2:y=h-text_h-h/8{enable}"
    )


def render(task: SandboxTask, video: Path, last_frame: Path) -> None:
    """Write the MP4 (requested duration, the task's width x height) and its last frame."""
    encode = ["-t", str(task.duration), "-r", str(FPS), "-c:v", "libx264", "-preset"]
    encode += ["ultrafast", "-crf", "32", "-pix_fmt", "yuv420p", "-movflags", "+faststart"]
    encode += ["-an", "-f", "mp4", str(video)]
    with tempfile.TemporaryDirectory(prefix="kinovi-render-") as scratch:
        inputs, graph, from_image = _scene(task, scratch)
        text_file = os.path.join(scratch, "caption.txt")
        Path(text_file).write_text(caption(task.prompt), encoding="utf-8")
        draw = _caption_filter(task, text_file, from_image=from_image)
        rendered = False
        if draw:
            try:
                _run(
                    [*inputs, "-filter_complex", f"{graph};[bg]{draw}[out]", "-map", "[out]"]
                    + encode
                )
                rendered = True
            except RenderFailed as exc:
                # No freetype or an unreadable font: a plain picture beats no video at all.
                logger.warning("Sandbox caption skipped: %s", exc)
        if not rendered:
            _run([*inputs, "-filter_complex", graph, "-map", "[bg]", *encode])
    try:
        last_frame.write_bytes(extract_frame(video, at="last"))
    except MediaError as exc:
        raise RenderFailed(str(exc)) from None


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
