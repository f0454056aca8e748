"""Serving a media file over HTTP with one `Range: bytes=a-b`, so a player can seek and a
fetcher can resume: used by the sandbox's videos and the studio's material links alike."""

import re

from django.http import FileResponse, HttpResponse

RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def byte_range(header: str, size: int):
    """(start, end) of a single `bytes=` range, None for the whole file (no or an unreadable
    header, as RFC 9110 allows ignoring it), or "unsatisfiable"."""
    match = RANGE.match(header.strip())
    if not match or (not match.group(1) and not match.group(2)):
        return None
    first, last = match.groups()
    if not first:  # the last N bytes
        length = int(last)
        if length == 0:
            return "unsatisfiable"
        return max(0, size - length), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or (last and int(last) < start):
        return "unsatisfiable"
    return start, end


def ranged_response(request, handle, size: int, content_type: str) -> HttpResponse:
    """The open binary `handle` (`size` bytes) as 200, 206 for the asked range, or 416."""
    wanted = byte_range(request.headers.get("Range", ""), size)
    if wanted == "unsatisfiable":
        handle.close()
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        return response
    if wanted is None:
        response = FileResponse(handle, content_type=content_type)
    else:
        start, end = wanted
        with handle:
            handle.seek(start)
            chunk = handle.read(end - start + 1)
        response = HttpResponse(chunk, status=206, content_type=content_type)
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    response["Accept-Ranges"] = "bytes"
    return response
