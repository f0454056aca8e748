"""Re-encrypt every workspace's webhook signing secret with the first FIELD_ENCRYPTION_KEYS key.

The companion of accounts' `rotate_encryption` (which covers the Kinovi keys; accounts never
imports the API app): run both after putting a new key first in FIELD_ENCRYPTION_KEYS.
"""

from django.core.management.base import BaseCommand, CommandError

from accounts import crypto
from api.models import WebhookSecret


class Command(BaseCommand):
    help = "Re-encrypt every webhook signing secret with the first FIELD_ENCRYPTION_KEYS key."

    def handle(self, *args, **options):
        rotated, failures = 0, []
        for pk, workspace_id, ciphertext in WebhookSecret.objects.order_by("pk").values_list(
            "pk", "workspace_id", "secret_ciphertext"
        ):
            try:
                new = crypto.rotate(ciphertext)
            except crypto.DecryptionError:
                failures.append(workspace_id)
                continue
            # Conditional on the old value: a secret rotated meanwhile is not overwritten.
            rotated += WebhookSecret.objects.filter(pk=pk, secret_ciphertext=ciphertext).update(
                secret_ciphertext=new
            )
        self.stdout.write(
            f"Re-encrypted {rotated} webhook secret(s); {len(failures)} could not be decrypted."
        )
        if failures:
            raise CommandError(
                "No configured key opens the webhook secret of workspace(s) "
                + ", ".join(str(w) for w in failures)
            )
