"""The one seam through which another app adds files (images, videos, audio) to a generation.

generations never imports the app that stores those files (materials/): that app registers an
InputProvider in its AppConfig.ready(), and the form, the submission service and the
createTask job ask it through the functions below. Without a provider a generation simply has
no materials. The rules of the vendor's modes (which role belongs to which mode) are checked
here, once, whatever the provider; the provider checks what only it knows (the files exist in
this workspace, their real kinds, sizes and durations) and makes the URLs Kinovi fetches.
"""

import re
from dataclasses import dataclass
from typing import Protocol

from kinovi.schema import Mode

FIRST_FRAME, LAST_FRAME, REFERENCE = "first_frame", "last_frame", "reference"
ROLES = (FIRST_FRAME, LAST_FRAME, REFERENCE)


# How a prompt names a reference: @image1, @video2, @audio1 (numbered per kind, in order).
REFERENCE_NAME = re.compile(r"@(image|video|audio)(\d+)\b")


class MaterialsRefused(Exception):
    """The attached files cannot go with this request; the message says why, for the user."""


@dataclass(frozen=True)
class Item:
    ref: int  # the provider's id for the file
    kind: str  # image | video | audio
    role: str  # first_frame | last_frame | reference


@dataclass(frozen=True)
class Selection:
    """The files attached to a request, in the order they are sent."""

    items: tuple[Item, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.items)

    @property
    def has_video(self) -> bool:
        return any(item.kind == "video" and item.role == REFERENCE for item in self.items)


class InputProvider(Protocol):
    def parse(self, data, *, workspace_id: int) -> Selection: ...
    def check(self, selection: Selection, *, workspace_id: int) -> None: ...
    def attach(self, generations: list, selection: Selection) -> None: ...
    def attached(self, generation) -> Selection: ...
    def urls(self, selection: Selection) -> list[dict]: ...


_provider: InputProvider | None = None


def register(provider: InputProvider) -> None:
    """Called once by the materials app's AppConfig.ready()."""
    global _provider
    _provider = provider


def parse(data, *, workspace_id: int) -> Selection:
    """The files a submitted form attaches (the provider reads its own fields), or
    MaterialsRefused for an id that is not one of this workspace's files."""
    if _provider is None:
        return Selection()
    return _provider.parse(data, workspace_id=workspace_id)


def check(selection: Selection, *, mode: str, workspace_id: int) -> None:
    """MaterialsRefused unless the selection fits the mode and the provider accepts it."""
    if not selection:
        return
    if _provider is None:
        raise MaterialsRefused("This installation cannot attach files to a video.")
    roles = [item.role for item in selection.items]
    if mode == Mode.KEYFRAME:
        if REFERENCE in roles:
            raise MaterialsRefused(
                "References belong to Omni Reference: choose that mode, or use the images as "
                "first and last frames."
            )
        if roles not in ([FIRST_FRAME], [FIRST_FRAME, LAST_FRAME]):
            raise MaterialsRefused(
                "Start from an image takes a first frame and, optionally, a last frame."
            )
        if any(item.kind != "image" for item in selection.items):
            raise MaterialsRefused("First and last frames must be images.")
    elif any(role != REFERENCE for role in roles):
        raise MaterialsRefused(
            "First and last frames belong to keyframe mode; in Omni Reference every file is a "
            "reference."
        )
    _provider.check(selection, workspace_id=workspace_id)


def attach(generations: list, selection: Selection) -> None:
    if selection and _provider is not None:
        _provider.attach(generations, selection)


def attached(generation) -> Selection:
    return _provider.attached(generation) if _provider is not None else Selection()


def urls(selection: Selection) -> list[dict]:
    """[{"kind", "url"}] in order, each a URL Kinovi can fetch now (signed, time-limited)."""
    if not selection or _provider is None:
        return []
    return _provider.urls(selection)


def urls_for(generation) -> list[dict]:
    """What createTask sends for this generation's attached files."""
    return urls(attached(generation))


def unattached_names(prompt: str, selection: Selection, *, mode: str) -> list[str]:
    """The @image1-style names the prompt uses that no attached reference answers to."""
    counts: dict[str, int] = {}
    if mode == Mode.REFERENCE:
        for item in selection.items:
            counts[item.kind] = counts.get(item.kind, 0) + 1
    missing = []
    for kind, number in REFERENCE_NAME.findall(prompt or ""):
        name = f"@{kind}{number}"
        if not 1 <= int(number) <= counts.get(kind, 0) and name not in missing:
            missing.append(name)
    return missing
