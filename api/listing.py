"""GET /api/v1/jobs: a workspace's tasks newest first, filtered, with an opaque cursor.

The cursor is the last row's (created_at, id) in base64: keyset pagination, so a page is
found by the gallery's index however deep it is, and rows made meanwhile shift nothing.
"""

import base64
import binascii
import json
from datetime import datetime

from django.db.models import Q

from api import vendor
from generations.models import Generation, Model

PARAMETERS = frozenset({"status", "model", "creator", "limit", "cursor"})
DEFAULT_LIMIT = 20
MAX_LIMIT = 100


class BadFilter(Exception):
    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path, self.message = path, message


def encode_cursor(generation: Generation) -> str:
    raw = json.dumps([generation.created_at.isoformat(), generation.pk]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        moment, pk = json.loads(raw)
        moment = datetime.fromisoformat(moment)
        if moment.tzinfo is None or not isinstance(pk, int) or isinstance(pk, bool):
            raise ValueError
        if not 0 < pk < 2**63:  # a bigint, or the database refuses the comparison
            raise ValueError
        return moment, pk
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise BadFilter("cursor", "cursor is not one this API gave out.") from None


def _limit(raw) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    # ASCII digits only: "²" is a digit to str.isdigit() but not to int().
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_LIMIT:
        raise BadFilter("limit", f"limit must be a whole number from 1 to {MAX_LIMIT}.")
    return int(raw)


def _filtered(queryset, params, user_id: int):
    # A parameter given empty is refused like a wrong one: it would otherwise match everything.
    raw = params.get("status")
    statuses = raw.split(",") if raw is not None else []
    for status in statuses:
        if status not in vendor.STUDIO_STATUSES:
            raise BadFilter("status", "status must be waiting, generating, success or fail.")
    if statuses:
        queryset = queryset.filter(
            status__in=[s for v in statuses for s in vendor.STUDIO_STATUSES[v]]
        )
    model = params.get("model")
    if model is not None:
        if model not in Model.values:
            raise BadFilter("model", f"model must be one of {', '.join(Model.values)}.")
        queryset = queryset.filter(model=model)
    creator = params.get("creator")
    if creator is not None:
        if creator != "me":
            raise BadFilter("creator", "creator may only be me.")
        queryset = queryset.filter(creator_id=user_id)
    return queryset


def page(*, workspace_id: int, user_id: int, params) -> dict:
    """One page of the workspace's tasks as {data: [recordInfo…], nextCursor}."""
    limit = _limit(params.get("limit"))
    queryset = _filtered(Generation.objects.filter(workspace_id=workspace_id), params, user_id)
    cursor = params.get("cursor")
    if cursor:
        moment, pk = decode_cursor(cursor)
        queryset = queryset.filter(Q(created_at__lt=moment) | Q(created_at=moment, id__lt=pk))
    rows = list(queryset.order_by("-created_at", "-id")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "data": [vendor.record_info(g) for g in rows],
        "nextCursor": encode_cursor(rows[-1]) if more else None,
    }
