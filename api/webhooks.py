"""Outbound webhooks: when a task made with a callBackUrl ends, the studio POSTs the vendor's
envelope to it, signed per the Standard Webhooks specification (`webhook-id`,
`webhook-timestamp`, `webhook-signature`; the workspace's `whsec_…` secret).

Delivery: a 2xx ends it; anything else (an error status, a timeout, a refused connection) is
retried on Standard Webhooks' schedule (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h: about a
day), then it gives up. Waits of a few seconds are waited in the job; longer ones are picked
up by the minute sweep. Redirects are not followed.

SSRF guard: the target's host is resolved and refused when any of its addresses is not a
public one (loopback, private, link-local, reserved, multicast…) unless
API_WEBHOOK_ALLOW_PRIVATE is on. Known limit: the name is resolved again by the HTTP client,
so a DNS server that answers differently the second time (rebinding) is not caught here;
block private ranges at the egress too.
"""

import base64
import ipaddress
import json
import logging
import secrets
import socket
import time
import uuid
from datetime import timedelta
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_save
from django.utils import timezone
from django_q.tasks import async_task
from standardwebhooks.webhooks import Webhook

from accounts import crypto
from accounts.models import log_action
from api import vendor
from api.models import Attempt, Callback, Delivery, WebhookSecret
from generations.models import TERMINAL_STATUSES, Generation

logger = logging.getLogger(__name__)
BODY_KEPT = 2000
INLINE_WAIT_SECONDS = 10
SWEEP_BATCH = 100


# --- the secret ---------------------------------------------------------------------------------


def _new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def secret_for(workspace) -> str:
    """The workspace's signing secret, made on first use."""
    row, _ = WebhookSecret.objects.get_or_create(
        workspace=workspace, defaults={"secret_ciphertext": crypto.encrypt(_new_secret())}
    )
    return crypto.decrypt(row.secret_ciphertext)


def rotate_secret(*, membership) -> str:
    secret = _new_secret()
    WebhookSecret.objects.update_or_create(
        workspace=membership.workspace,
        defaults={
            "secret_ciphertext": crypto.encrypt(secret),
            "created_at": timezone.now(),
            "rotated_by": membership.user,
        },
    )
    log_action(
        actor=membership.user, action="webhook_secret.rotated", workspace=membership.workspace
    )
    return secret


# --- the SSRF guard -----------------------------------------------------------------------------


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def refusal(url: str, *, resolve: bool = True) -> str | None:
    """Why the studio will not POST to `url`, or None. Without `resolve`, only literal
    addresses and localhost are judged (the quick check at createTask)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "only http(s) URLs can receive webhooks"
    if settings.API_WEBHOOK_ALLOW_PRIVATE:
        return None
    host = parts.hostname
    if host == "localhost" or host.endswith(".localhost"):
        return "loopback targets are not allowed"
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        if not resolve:
            return None
        try:
            infos = socket.getaddrinfo(host, parts.port or 443, proto=socket.IPPROTO_TCP)
        except (socket.gaierror, UnicodeError):
            return "the host name does not resolve"
        addresses = [info[4][0] for info in infos]
    if not all(_public(a) for a in addresses):
        return "private, loopback and other non-public addresses are not allowed"
    return None


# --- the envelope -------------------------------------------------------------------------------


def envelope(generation: Generation) -> dict:
    """The vendor's webhook body: recordInfo's fields under `data`, `state` for `status`."""
    info = vendor.record_info(generation)
    state = info["status"]
    data = {
        "taskId": info["taskId"],
        "model": info["model"],
        "state": state,
        "creditsUsed": info["creditsUsed"] if state == "success" else 0,
        "output": info["output"],
        "error": info["error"],
        "createTime": info["createTime"],
        "completeTime": info["completeTime"],
        "updateTime": int(timezone.now().timestamp() * 1000),
    }
    return {"code": 200, "message": "success" if state == "success" else "fail", "data": data}


# --- starting and sending -----------------------------------------------------------------------


def retry_delays() -> list[float]:
    """Seconds to wait before each retry (the first send is immediate)."""
    return [float(s) for s in settings.API_WEBHOOK_RETRY_SECONDS]


def start(generation_id: int) -> Delivery | None:
    """The delivery of a finished generation that has a callback (made once), or None."""
    callback = (
        Callback.objects.select_related("generation").filter(generation_id=generation_id).first()
    )
    if callback is None or callback.generation.status not in TERMINAL_STATUSES:
        return None
    delivery, _ = Delivery.objects.get_or_create(
        generation_id=generation_id,
        defaults={
            "workspace_id": callback.generation.workspace_id,
            "url": callback.url,
            "message_id": f"msg_{uuid.uuid4().hex}",
            "payload": envelope(callback.generation),
            "next_attempt_at": timezone.now(),
        },
    )
    return delivery


def _post(delivery: Delivery, secret: str) -> Attempt:
    """One signed POST; the attempt row says what happened (never raises for the network)."""
    body = json.dumps(delivery.payload, separators=(",", ":"))
    now = timezone.now()
    signature = Webhook(secret).sign(delivery.message_id, now, body)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "KinoviStudio-Webhooks/1",
        "webhook-id": delivery.message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }
    attempt = Attempt(delivery=delivery, attempted_at=now)
    reason = refusal(delivery.url)
    if reason:
        attempt.error = f"Not sent: {reason}."
        return attempt
    started = time.monotonic()
    try:
        response = requests.post(
            delivery.url,
            data=body.encode(),
            headers=headers,
            timeout=(settings.API_WEBHOOK_CONNECT_TIMEOUT, settings.API_WEBHOOK_READ_TIMEOUT),
            allow_redirects=False,
        )
        attempt.status_code = response.status_code
        attempt.response_body = response.text[:BODY_KEPT]
    except requests.RequestException as exc:
        attempt.error = f"{type(exc).__name__}: the receiver did not answer"[:300]
    attempt.duration_ms = int((time.monotonic() - started) * 1000)
    return attempt


def _record(delivery: Delivery, attempt: Attempt) -> float | None:
    """Stores the attempt and the delivery's new state; the wait before the next, or None."""
    attempt.save()
    delivery.attempts += 1
    delays = retry_delays()
    ok = attempt.status_code is not None and 200 <= attempt.status_code < 300
    refused = attempt.status_code is None and attempt.error.startswith("Not sent")
    if ok or refused or delivery.attempts > len(delays):
        delivery.state = Delivery.State.DELIVERED if ok else Delivery.State.FAILED
        delivery.finished_at = attempt.attempted_at
        delivery.next_attempt_at = None
        wait = None
    else:
        wait = delays[delivery.attempts - 1]
        delivery.next_attempt_at = timezone.now() + timedelta(seconds=wait)
    delivery.save(update_fields=["attempts", "state", "finished_at", "next_attempt_at"])
    return wait


def deliver(delivery_id: int) -> str:
    """The job: send while due, waiting here for short retries; the sweep takes long ones."""
    while True:
        with transaction.atomic():
            delivery = (
                Delivery.objects.select_for_update(skip_locked=True)
                .select_related("workspace")
                .filter(pk=delivery_id, state=Delivery.State.PENDING)
                .first()
            )
            if delivery is None:
                return "not pending (or being sent)"
            if delivery.next_attempt_at and delivery.next_attempt_at > timezone.now():
                return "not due"
            wait = _record(delivery, _post(delivery, secret_for(delivery.workspace)))
        if wait is None:
            return delivery.state
        if wait > INLINE_WAIT_SECONDS:
            return f"retry in {wait:.0f} s"
        time.sleep(wait)


def enqueue(generation_id: int) -> None:
    delivery = start(generation_id)
    if delivery is not None and delivery.state == Delivery.State.PENDING:
        async_task("api.webhooks.deliver", delivery.pk, task_name=f"webhook {delivery.pk}")


def _on_saved(sender, instance: Generation, update_fields=None, **kwargs) -> None:
    """A generation's status was saved: if it ended and has a callback, deliver on commit."""
    if update_fields is not None and "status" not in update_fields:
        return
    if instance.status not in TERMINAL_STATUSES:
        return
    if not Callback.objects.filter(generation_id=instance.pk).exists():
        return
    transaction.on_commit(lambda pk=instance.pk: enqueue(pk), robust=True)


def connect() -> None:
    post_save.connect(_on_saved, sender=Generation, dispatch_uid="api-webhooks")


def sweep() -> int:
    """The net (every minute): deliveries whose start was missed, and retries now due."""
    missed = Callback.objects.filter(
        generation__status__in=list(TERMINAL_STATUSES), generation__api_delivery__isnull=True
    ).values_list("generation_id", flat=True)[:SWEEP_BATCH]
    for generation_id in missed:
        start(generation_id)
    due = Delivery.objects.filter(
        state=Delivery.State.PENDING, next_attempt_at__lte=timezone.now()
    ).values_list("pk", flat=True)[:SWEEP_BATCH]
    due = list(due)
    for pk in due:
        async_task("api.webhooks.deliver", pk, task_name=f"webhook {pk}")
    return len(due)


def resend(*, delivery: Delivery, membership) -> Delivery:
    """ "Send again": the same message (same webhook-id, so receivers can deduplicate), now."""
    Delivery.objects.filter(pk=delivery.pk).update(
        state=Delivery.State.PENDING, next_attempt_at=timezone.now(), finished_at=None, attempts=0
    )
    log_action(
        actor=membership.user,
        action="webhook.resent",
        workspace=membership.workspace,
        target=delivery.message_id,
    )
    transaction.on_commit(
        lambda: async_task("api.webhooks.deliver", delivery.pk, task_name=f"webhook {delivery.pk}")
    )
    delivery.refresh_from_db()
    return delivery
