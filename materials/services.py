"""Adding a file to a workspace's library and deleting one: probed, checked, deduplicated,
audited. Each refuses with `MaterialRefused` (a message for the user) and then stores nothing.
"""

import hashlib
import io
import tempfile
from pathlib import Path

import requests
from django.core.files.base import ContentFile, File
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, transaction
from PIL import Image

from accounts.models import Membership, log_action
from generations.models import Generation, Status
from materials import rules
from materials.models import Material
from mediakit import MediaError, MediaInfo, extract_frame, probe

THUMBNAIL_SIZE = (320, 320)
MAX_NAME = 200
CHUNK = 64 * 1024


class MaterialRefused(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _display_name(name: str) -> str:
    name = Path(name or "file").name.replace("\x00", "")
    return name[:MAX_NAME] or "file"


def _copy(uploaded, destination) -> tuple[str, int]:
    """Copy the upload to a file we can probe, hashing it on the way; (sha256, bytes)."""
    digest, size = hashlib.sha256(), 0
    for chunk in uploaded.chunks(CHUNK):
        size += len(chunk)
        if size > rules.MAX_UPLOAD_BYTES:
            raise MaterialRefused("The file is larger than 50 MB, more than Kinovi takes.")
        digest.update(chunk)
        destination.write(chunk)
    destination.flush()
    return digest.hexdigest(), size


def upload(*, membership: Membership, uploaded) -> tuple[Material, bool]:
    """Add `uploaded` (a Django UploadedFile) to the membership's workspace. Returns the
    material and whether it is new (an identical file already there is returned instead)."""
    if not membership.can_generate:
        raise MaterialRefused("Viewers can look at the materials but not add any.")
    name = _display_name(getattr(uploaded, "name", ""))
    with tempfile.NamedTemporaryFile(prefix="material-", suffix=".upload") as temporary:
        sha256, size = _copy(uploaded, temporary)
        if size == 0:
            raise MaterialRefused(f"{name} is empty.")
        existing = Material.objects.filter(workspace=membership.workspace, sha256=sha256).first()
        if existing is not None:
            return existing, False
        try:
            info = probe(temporary.name)
        except MediaError as error:
            reason = str(error).split(": ", 1)[-1]
            raise MaterialRefused(
                f"{name} is not an image, video or audio file Kinovi can use: {reason}"
            ) from None
        try:
            rules.check_file(_facts(info), name)
        except rules.Refused as refused:
            raise MaterialRefused(str(refused)) from None
        return _store(membership, name, sha256, info, Path(temporary.name)), True


def _facts(info: MediaInfo) -> rules.Facts:
    return rules.Facts(kind=info.kind, format=info.format, bytes=info.bytes, duration=info.duration)


def _thumbnail(info: MediaInfo, path: Path) -> bytes | None:
    """A small JPEG for the picker: the image itself, or a video's first frame."""
    try:
        if info.kind == "image":
            source = Image.open(path)
        elif info.kind == "video":
            source = Image.open(io.BytesIO(extract_frame(path, "first")))
        else:
            return None
        source.thumbnail(THUMBNAIL_SIZE)
        out = io.BytesIO()
        source.convert("RGB").save(out, "JPEG", quality=82)
        return out.getvalue()
    except (OSError, MediaError, ValueError):
        return None  # a picker without a preview beats a refused upload


def _store(membership: Membership, name: str, sha256: str, info: MediaInfo, path: Path):
    material = Material(
        workspace=membership.workspace,
        uploaded_by=membership.user,
        name=name,
        kind=info.kind,
        format=info.format,
        sha256=sha256,
        bytes=info.bytes,
        width=info.width,
        height=info.height,
        duration=info.duration,
        video_codec=info.video_codec or "",
        audio_codec=info.audio_codec or "",
    )
    thumbnail = _thumbnail(info, path)
    try:
        with transaction.atomic():
            with path.open("rb") as handle:
                material.file.save("upload", File(handle), save=False)
            if thumbnail:
                material.thumbnail.save("thumb", ContentFile(thumbnail), save=False)
            material.save()
            log_action(
                actor=membership.user,
                action="material.uploaded",
                workspace=membership.workspace,
                target=material.public_id,
                name=name,
                kind=material.kind,
                bytes=material.bytes,
                sha256=sha256,
            )
    except IntegrityError:
        # The same file uploaded twice at once: the other upload's row stands.
        _remove_files(material)
        return Material.objects.get(workspace=membership.workspace, sha256=sha256)
    except Exception:
        _remove_files(material)
        raise
    return material


def _remove_files(material: Material) -> None:
    for field in (material.file, material.thumbnail):
        if field:
            field.storage.delete(field.name)


def delete(*, membership: Membership, material: Material) -> None:
    if not membership.can_generate:
        raise MaterialRefused("Viewers can look at the materials but not delete any.")
    if material.workspace_id != membership.workspace_id:
        raise MaterialRefused("That file belongs to another workspace.")
    with transaction.atomic():
        if material.uses.exists():
            raise MaterialRefused(
                f"{material.name} is used by {material.uses.count()} video(s) and stays, so "
                "their requests can be explained."
            )
        log_action(
            actor=membership.user,
            action="material.deleted",
            workspace=membership.workspace,
            target=material.public_id,
            name=material.name,
            kind=material.kind,
            sha256=material.sha256,
        )
        material.delete()
        transaction.on_commit(lambda: _remove_files(material))


FETCH_TIMEOUT = (3.0, 15.0)


def _download(url: str) -> bytes:
    """Kinovi's last-frame image, read up to the image limit."""
    try:
        with requests.get(url, stream=True, timeout=FETCH_TIMEOUT) as response:
            if response.status_code != 200:
                raise MaterialRefused(
                    f"Kinovi's last frame could not be downloaded (HTTP {response.status_code}); "
                    "Kinovi keeps a video's files for 14 days."
                )
            data = b""
            for chunk in response.iter_content(CHUNK):
                data += chunk
                if len(data) >= rules.MAX_IMAGE_BYTES:
                    raise MaterialRefused("Kinovi's last frame is larger than an image may be.")
            return data
    except requests.RequestException as error:
        raise MaterialRefused(
            f"Kinovi's last frame could not be downloaded ({type(error).__name__})."
        ) from None


def continue_from(*, membership: Membership, generation: Generation) -> Material:
    """The finished video's last frame, added to the library to start the next shot from."""
    if not membership.can_generate:
        raise MaterialRefused("Viewers can look but not generate.")
    if generation.workspace_id != membership.workspace_id:
        raise MaterialRefused("That video belongs to another workspace.")
    if generation.status != Status.SUCCESS or not generation.last_frame_url:
        raise MaterialRefused("Only a finished video with a last frame can be continued.")
    data = _download(generation.last_frame_url)
    name = f"last frame of {str(generation.public_id)[:8]}.png"
    material, _ = upload(membership=membership, uploaded=SimpleUploadedFile(name, data))
    return material
