"""probe() and extract_frame(): Pillow for images, the bundled ffmpeg for video and audio."""

import os
import re
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg
from PIL import Image, UnidentifiedImageError

IMAGE, VIDEO, AUDIO = "image", "video", "audio"
# Pillow's format names for the images we recognise, and the name we report.
_IMAGE_FORMATS = {"JPEG": "jpeg", "PNG": "png", "WEBP": "webp", "GIF": "gif"}
# ffmpeg's demuxer names (the `Input #0, <name>, from` line) we recognise. Anything else
# (ffmpeg also "opens" plain text as a tty animation) is not a media file for our purposes.
_CONTAINERS = {
    "mov,mp4,m4a,3gp,3g2,mj2": "mp4",
    "matroska,webm": "webm",
    "avi": "avi",
    "mp3": "mp3",
    "wav": "wav",
    "ogg": "ogg",
    "flac": "flac",
    "aac": "aac",
}
_INPUT = re.compile(r"^Input #0, ([^ ]+), from ", re.M)
_DURATION = re.compile(r"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")
_STREAM = re.compile(r"Stream #0:\d+.*?: (Video|Audio): ([A-Za-z0-9_]+)(.*)$", re.M)
_SIZE = re.compile(r"\b(\d{2,5})x(\d{2,5})\b")
# Still-image codecs ffmpeg reports as a "Video" stream (cover art inside an MP3, for one).
_STILL_CODECS = {"png", "mjpeg", "webp", "gif", "bmp"}
# ISO BMFF box types a top-level walk may meet; anything else means we lost the structure.
_TOP_BOXES = {
    b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"uuid", b"moof", b"mfra",
    b"meta", b"pdin", b"styp", b"sidx", b"prft", b"pnot",
}  # fmt: skip
FFMPEG_TIMEOUT = 60


class MediaError(ValueError):
    """The file is not a media file we can use; the message says why, for a person."""


@dataclass(frozen=True)
class MediaInfo:
    kind: str  # image, video or audio
    format: str  # jpeg, png, webp, gif, mp4, mov, webm, mp3, wav, ...
    bytes: int
    width: int | None = None
    height: int | None = None
    duration: float | None = None  # seconds, for video and audio
    video_codec: str | None = None
    audio_codec: str | None = None

    @property
    def has_audio(self) -> bool:
        return self.audio_codec is not None


def ffmpeg_exe() -> str:
    return imageio_ffmpeg.get_ffmpeg_exe()


def probe(path) -> MediaInfo:
    """What `path` really is, from its bytes (never its name); MediaError if it is garbage."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise MediaError(f"{path.name}: the file cannot be read ({exc.strerror}).") from None
    if size == 0:
        raise MediaError(f"{path.name}: the file is empty.")
    image = _probe_image(path, size)
    if image is not None:
        return image
    return _probe_av(path, size)


def _probe_image(path: Path, size: int) -> MediaInfo | None:
    """An image Pillow recognises and can decode whole; None when it is no image at all."""
    try:
        with Image.open(path) as img:
            fmt = img.format
            width, height = img.size
            if fmt not in _IMAGE_FORMATS:
                return None
            # Decoding the pixels is what catches a truncated or corrupt image.
            img.load()
    except UnidentifiedImageError:
        return None
    except Image.DecompressionBombError:
        raise MediaError(f"{path.name}: the image has too many pixels to be safe.") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise MediaError(f"{path.name}: the image is damaged or truncated ({exc}).") from None
    return MediaInfo(kind=IMAGE, format=_IMAGE_FORMATS[fmt], bytes=size, width=width, height=height)


def _ffmpeg_banner(path: Path) -> str:
    result = subprocess.run(  # noqa: S603 - fixed binary, a path argument, no shell
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)],
        capture_output=True,
        timeout=FFMPEG_TIMEOUT,
        check=False,
    )
    # Without an output ffmpeg always exits 1; the banner on stderr is what we read.
    return result.stderr.decode(errors="replace")


def _probe_av(path: Path, size: int) -> MediaInfo:
    banner = _ffmpeg_banner(path)
    match = _INPUT.search(banner)
    container = _CONTAINERS.get(match.group(1)) if match else None
    if container is None:
        raise MediaError(f"{path.name}: not an image, video or audio file we recognise.")
    video_codec = audio_codec = None
    width = height = None
    for kind, codec, rest in _STREAM.findall(banner):
        if kind == "Video" and video_codec is None and codec not in _STILL_CODECS:
            video_codec = codec
            dims = _SIZE.search(rest)
            if dims:
                width, height = int(dims.group(1)), int(dims.group(2))
        elif kind == "Audio" and audio_codec is None:
            audio_codec = codec
    if video_codec is None and audio_codec is None:
        raise MediaError(f"{path.name}: the file holds no video or audio stream.")
    if container == "mp4":
        container = _check_iso_boxes(path, size)
    duration = _duration(banner)
    if duration is None or duration <= 0:
        raise MediaError(f"{path.name}: the file's duration cannot be read.")
    return MediaInfo(
        kind=VIDEO if video_codec else AUDIO,
        format=container,
        bytes=size,
        width=width,
        height=height,
        duration=duration,
        video_codec=video_codec,
        audio_codec=audio_codec,
    )


def _duration(banner: str) -> float | None:
    match = _DURATION.search(banner)
    if not match:
        return None
    hours, minutes, seconds = match.groups()
    return round(int(hours) * 3600 + int(minutes) * 60 + float(seconds), 3)


def _check_iso_boxes(path: Path, size: int) -> str:
    """Walk the top-level boxes of an MP4/MOV: a box that runs past the end of the file means
    the file was cut short (ffmpeg happily reads the header of a truncated download). Returns
    mov for QuickTime's brand, else mp4."""
    brand = b""
    offset = 0
    with path.open("rb") as handle:
        while offset < size:
            handle.seek(offset)
            header = handle.read(16)
            if len(header) < 8:
                raise MediaError(f"{path.name}: the video file is truncated.")
            box_size, box_type = struct.unpack(">I4s", header[:8])
            if box_size == 1 and len(header) == 16:
                box_size = struct.unpack(">Q", header[8:16])[0]
            elif box_size == 0:
                box_size = size - offset
            if box_type not in _TOP_BOXES or box_size < 8:
                raise MediaError(f"{path.name}: the video file is damaged.")
            if box_type == b"ftyp":
                brand = header[8:12]
            if offset + box_size > size:
                raise MediaError(f"{path.name}: the video file is truncated (cut short).")
            offset += box_size
    return "mov" if brand == b"qt  " else "mp4"


def extract_frame(video, at: str = "first") -> bytes:
    """The first or last frame of `video` as PNG bytes (at its own pixel size)."""
    if at not in ("first", "last"):
        raise ValueError('at must be "first" or "last".')
    with tempfile.TemporaryDirectory(prefix="mediakit-") as scratch:
        out = os.path.join(scratch, "frame.png")
        # For the last frame, decode the final second and keep overwriting one image.
        seek = ["-sseof", "-1"] if at == "last" else []
        update = ["-update", "1"] if at == "last" else ["-frames:v", "1"]
        result = subprocess.run(  # noqa: S603 - fixed binary, arguments built here
            [ffmpeg_exe(), "-nostdin", "-y", "-hide_banner", "-loglevel", "error", *seek]
            + ["-i", str(video), *update, "-c:v", "png", "-f", "image2", out],
            capture_output=True,
            timeout=FFMPEG_TIMEOUT,
            check=False,
        )
        if result.returncode != 0 or not os.path.isfile(out):
            message = result.stderr.decode(errors="replace").strip()[-300:]
            raise MediaError(f"{Path(video).name}: no frame could be read ({message}).")
        return Path(out).read_bytes()
