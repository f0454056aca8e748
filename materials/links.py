"""URLs Kinovi can fetch a material from: signed, time-limited, served by the studio (or,
with MATERIAL_LINKS=storage, a presigned GET from S3-compatible storage).

A link names the material and its workspace and when it stops working, signed with the site's
SECRET_KEY (django.core.signing, its own salt): it cannot be made up, stretched or pointed at
another workspace's file, and after its window (MATERIAL_LINK_SECONDS, 24 h by default) it
answers 404 like any unknown path. There is no index: only a link handed out opens a file.
"""

import ipaddress
import time
import uuid
from urllib.parse import urlsplit

from django.conf import settings
from django.core import signing
from django.urls import reverse

from materials.models import Material

SALT = "materials.link"


def link_for(material: Material, *, now: float | None = None) -> str:
    if settings.MATERIAL_LINKS == "storage":
        # S3-compatible storage (django-storages' S3Storage) presigns a GET for the window.
        return material.file.storage.url(material.file.name, expire=settings.MATERIAL_LINK_SECONDS)
    expires = int((now or time.time()) + settings.MATERIAL_LINK_SECONDS)
    token = signing.dumps(
        {"m": material.public_id.hex, "w": material.workspace_id, "x": expires},
        salt=SALT,
        compress=True,
    )
    path = reverse("material_file", args=[token, f"{material.kind}.{material.format}"])
    return f"{settings.SITE_URL}{path}"


def material_for(token: str, *, now: float | None = None) -> Material | None:
    """The material a link opens, or None (forged, expired, deleted, workspace mismatch)."""
    try:
        claims = signing.loads(token, salt=SALT)
    except signing.BadSignature:
        return None
    if not isinstance(claims, dict) or not isinstance(claims.get("x"), int):
        return None
    if claims["x"] < (now or time.time()):
        return None
    try:
        public_id = uuid.UUID(hex=str(claims.get("m")))
    except ValueError:
        return None
    return Material.objects.filter(public_id=public_id, workspace_id=claims.get("w")).first()


def _is_public_host(host: str) -> bool:
    if host in {"localhost", "testserver"} or host.endswith(".local"):
        return False
    try:
        return ipaddress.ip_address(host).is_global
    except ValueError:
        return True  # a DNS name: the deployment is trusted to have made it reachable


def unreachable_reason() -> str | None:
    """Why Kinovi could not fetch our links, or None when it can. The built-in sandbox runs on
    this site, so it can fetch from a local address; the real Kinovi cannot."""
    if settings.MATERIAL_LINKS == "storage":
        return None  # the bucket's presigned URLs are reachable wherever the bucket is
    site = settings.SITE_URL
    kinovi_is_our_sandbox = settings.KINOVI_BASE_URL.startswith(f"{site}/sandbox/")
    if kinovi_is_our_sandbox or _is_public_host(urlsplit(site).hostname or ""):
        return None
    return (
        f"Kinovi downloads attached files from this studio, but SITE_URL ({site}) is not "
        "reachable from the internet. Set SITE_URL to the studio's public address to attach "
        "files (the sandbox can fetch from here)."
    )
