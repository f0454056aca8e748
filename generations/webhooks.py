"""The Kinovi callback view: store every delivery, answer fast, leave the rest to deliveries.py.

Kinovi signs nothing, so the per-generation URL token only says the sender knew the URL;
deliveries.py decides what a stored delivery means and confirms it with recordInfo.
"""

import hmac
import logging

from django.db.models import F
from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from accounts.models import hash_token
from generations.deliveries import finish, judge, keep_late, storable
from generations.models import Generation, Heartbeat, WebhookDelivery

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
# Headers worth keeping for the audit; anything that could carry a credential is masked.
SECRET_HEADERS = {"authorization", "cookie", "proxy-authorization"}
Outcome = WebhookDelivery.Outcome


def _count(name: str) -> None:
    beat, _ = Heartbeat.objects.get_or_create(name=name)
    Heartbeat.objects.filter(pk=beat.pk).update(count=F("count") + 1, beat_at=timezone.now())


def _token_matches(generation: Generation | None, token: str) -> bool:
    if generation is None or not generation.callback_token_hash:
        return False
    return hmac.compare_digest(hash_token(token), generation.callback_token_hash)


@csrf_exempt
@require_POST
def kinovi_callback(request, public_id, token: str):
    generation = (
        Generation.objects.filter(public_id=public_id)
        .only("pk", "status", "callback_token_hash", "confirmed_at")
        .first()
    )
    if not _token_matches(generation, token):
        _count(Heartbeat.BAD_WEBHOOK_TOKEN)
        return JsonResponse({"error": "Not found."}, status=404)

    body = request.read(MAX_BODY_BYTES + 1)
    truncated = len(body) > MAX_BODY_BYTES
    fields = {
        "headers": {
            storable(name): ("••••" if name.lower() in SECRET_HEADERS else storable(value[:500]))
            for name, value in request.headers.items()
        },
        "body": storable(body[:MAX_BODY_BYTES].decode("utf-8", errors="replace")),
        "body_truncated": truncated,
        "remote_addr": request.META.get("REMOTE_ADDR") or None,
    }
    if generation.is_terminal:
        # Kinovi repeats and delays deliveries and retries anything but a 2xx: its own late
        # delivery is answered as a duplicate for as long as the generation exists, without
        # judging or confirming it (nothing can change any more), and counted.
        keep_late(generation, fields)
        _count(Heartbeat.LATE_WEBHOOK)
        return JsonResponse({"received": True, "outcome": Outcome.DUPLICATE})
    delivery = WebhookDelivery.objects.create(generation=generation, **fields)
    if truncated:
        finish(delivery, Outcome.REJECTED, f"Body larger than {MAX_BODY_BYTES} bytes.")
        return HttpResponse("Payload too large.", status=413)
    judge(delivery)
    if delivery.outcome == Outcome.REJECTED and delivery.error.startswith("Not the documented"):
        return JsonResponse({"error": delivery.error}, status=400)
    return JsonResponse({"received": True, "outcome": delivery.outcome})
