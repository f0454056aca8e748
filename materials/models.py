"""A workspace's materials (uploaded images, videos and audio) and which generation uses which."""

import uuid

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone

from accounts.models import Workspace


class Kind(models.TextChoices):
    IMAGE = "image", "Image"
    VIDEO = "video", "Video"
    AUDIO = "audio", "Audio"


class Role(models.TextChoices):
    FIRST_FRAME = "first_frame", "First frame"
    LAST_FRAME = "last_frame", "Last frame"
    REFERENCE = "reference", "Reference"


def material_path(material: "Material", filename: str) -> str:
    # Named by content, not by the uploader's filename: nothing of the name reaches storage.
    return f"materials/{material.workspace_id}/{material.sha256}.{material.format}"


def thumbnail_path(material: "Material", filename: str) -> str:
    return f"materials/{material.workspace_id}/thumbs/{material.sha256}.jpg"


class Material(models.Model):
    """One file of a workspace's library, with what probing it found (never its name's say)."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    workspace = models.ForeignKey(Workspace, models.CASCADE, related_name="materials")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, related_name="+"
    )
    name = models.CharField(max_length=200, help_text="The uploader's filename, for display.")
    kind = models.CharField(max_length=5, choices=Kind.choices)
    format = models.CharField(max_length=10)  # jpeg, png, webp, mp4, mov, mp3, wav
    file = models.FileField(upload_to=material_path, max_length=300)
    thumbnail = models.FileField(upload_to=thumbnail_path, max_length=300, blank=True)
    sha256 = models.CharField(max_length=64)
    bytes = models.PositiveBigIntegerField()
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    duration = models.FloatField(null=True, blank=True)
    video_codec = models.CharField(max_length=40, blank=True)
    audio_codec = models.CharField(max_length=40, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "sha256"], name="one_copy_per_workspace")
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"

    def as_card(self) -> dict:
        """What the picker shows of it (also the upload's JSON answer)."""
        thumbnail = reverse("material_thumbnail", args=[self.public_id]) if self.thumbnail else None
        return {
            "id": self.public_id.hex,
            "kind": self.kind,
            "name": self.name,
            "thumbnail": thumbnail,
        }

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES.get(self.format, "application/octet-stream")


CONTENT_TYPES = {
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "mp4": "video/mp4",
    "mov": "video/quicktime",
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
}


class GenerationMaterial(models.Model):
    """A material attached to a generation, in the order it is sent (Kinovi numbers them)."""

    generation = models.ForeignKey(
        "generations.Generation", models.CASCADE, related_name="material_links"
    )
    # PROTECT: a material a generation used stays, so its createTask can be explained.
    material = models.ForeignKey(Material, models.PROTECT, related_name="uses")
    role = models.CharField(max_length=12, choices=Role.choices)
    position = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["generation", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["generation", "position"], name="one_material_per_position"
            )
        ]

    def __str__(self) -> str:
        return f"{self.role} {self.position}: material {self.material_id}"
