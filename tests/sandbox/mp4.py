"""Reads an MP4's real duration and picture size from its boxes, and a PNG's size."""

import struct
from pathlib import Path


def _boxes(data: bytes, start: int = 0, end: int | None = None):
    end = len(data) if end is None else end
    offset = start
    while offset + 8 <= end:
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        header = 8
        if size == 1:
            size = struct.unpack(">Q", data[offset + 8 : offset + 16])[0]
            header = 16
        elif size == 0:
            size = end - offset
        yield kind.decode("latin-1"), offset + header, offset + size
        offset += size


def mp4_info(path: Path) -> dict:
    data = Path(path).read_bytes()
    top = [kind for kind, _, _ in _boxes(data)]
    info = {"boxes": top}
    for kind, body, end in _boxes(data):
        if kind != "moov":
            continue
        for child, cbody, cend in _boxes(data, body, end):
            if child == "mvhd":
                version = data[cbody]
                if version == 1:
                    timescale, duration = struct.unpack(">IQ", data[cbody + 20 : cbody + 32])
                else:
                    timescale, duration = struct.unpack(">II", data[cbody + 12 : cbody + 20])
                info["duration"] = duration / timescale
            if child == "trak":
                for grand, gbody, _gend in _boxes(data, cbody, cend):
                    if grand == "tkhd":
                        width, height = struct.unpack(">II", data[_tkhd_size(data, gbody)])
                        if width and height:
                            info["width"], info["height"] = width >> 16, height >> 16
    return info


def _tkhd_size(data: bytes, body: int) -> slice:
    # tkhd ends with width and height as 16.16 fixed point; version 1 has 64-bit times.
    offset = body + (96 if data[body] == 1 else 84)
    return slice(offset - 8, offset)


def png_size(path: Path) -> tuple[int, int]:
    data = Path(path).read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])
