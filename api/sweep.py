"""The API's minute job (a django-q2 schedule, registered in apps.py): the webhook net and
the idempotency records past their window."""

from api import idempotency, webhooks


def run() -> dict:
    return {"webhooks_due": webhooks.sweep(), "idempotency_pruned": idempotency.prune()}
