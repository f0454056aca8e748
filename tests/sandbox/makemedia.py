"""Small real media files for tests, made with the bundled ffmpeg and Pillow."""

import subprocess
from pathlib import Path

from PIL import Image, ImageDraw

from mediakit import ffmpeg_exe


def ffmpeg(*args: str) -> None:
    subprocess.run(
        [ffmpeg_exe(), "-nostdin", "-y", "-hide_banner", "-loglevel", "error", *args],
        check=True,
        capture_output=True,
        timeout=120,
    )


def image(path: Path, size=(320, 180), *, colors=("#d62828", "#003049"), fmt=None) -> Path:
    """Two colour blocks and a yellow disc: easy to recognise after a lossy encode."""
    width, height = size
    img = Image.new("RGB", size, colors[0])
    draw = ImageDraw.Draw(img)
    draw.rectangle([width // 2, 0, width, height], fill=colors[1])
    draw.ellipse([width // 3, height // 3, width // 3 + height // 3, 2 * height // 3], "#fcbf49")
    img.save(path, format=fmt)
    return path


def video(path: Path, *, seconds: float = 2, size="320x240", audio=False, fmt=None) -> Path:
    args = ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate=5:duration={seconds}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=duration={seconds}", "-c:a", "aac", "-shortest"]
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    if fmt:
        args += ["-f", fmt]
    ffmpeg(*args, str(path))
    return path


def sound(path: Path, *, seconds: float = 2, fmt=None) -> Path:
    args = ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"]
    if fmt:
        args += ["-f", fmt]
    ffmpeg(*args, str(path))
    return path
