"""Media facts shared by the sandbox and the studio: what a file really is, whatever its name.

`probe(path)` answers a `MediaInfo` (kind, format, codecs, duration, pixel size, bytes) or
raises `MediaError` with a message fit to show a person. `extract_frame(video, at=...)` gives
the first or last frame of a video as PNG bytes. Images are read with Pillow; video and audio
with the ffmpeg that imageio-ffmpeg bundles (or an ffprobe found on PATH is not needed: the
`ffmpeg -i` banner carries everything used here). No Django in here on purpose.
"""

from mediakit.probe import (
    AUDIO,
    IMAGE,
    VIDEO,
    MediaError,
    MediaInfo,
    extract_frame,
    ffmpeg_exe,
    probe,
)

__all__ = [
    "AUDIO",
    "IMAGE",
    "VIDEO",
    "MediaError",
    "MediaInfo",
    "extract_frame",
    "ffmpeg_exe",
    "probe",
]
