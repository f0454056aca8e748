"""Re-encrypt every stored API key with the first key of FIELD_ENCRYPTION_KEYS.

Run after putting a new key first in FIELD_ENCRYPTION_KEYS (old keys still listed after it);
once it reports no failures, the old keys can be dropped from the setting.
"""

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts import crypto
from accounts.models import ApiKey


class Command(BaseCommand):
    help = "Re-encrypt every stored Kinovi API key with the first FIELD_ENCRYPTION_KEYS key."

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args, batch_size: int, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        primary = Fernet(settings.FIELD_ENCRYPTION_KEYS[0])
        rotated = current = 0
        failures: list[tuple[int, str]] = []
        last_pk = 0
        while True:
            batch = list(
                ApiKey.objects.filter(pk__gt=last_pk)
                .order_by("pk")
                .values_list("pk", "label", "secret_ciphertext")[:batch_size]
            )
            if not batch:
                break
            last_pk = batch[-1][0]
            for pk, label, ciphertext in batch:
                try:
                    primary.decrypt(ciphertext.encode())
                except (InvalidToken, ValueError, TypeError):
                    pass
                else:
                    current += 1
                    continue
                try:
                    new = crypto.rotate(ciphertext)
                except crypto.DecryptionError:
                    failures.append((pk, label))
                    continue
                # Conditional on the old value: a key re-added meanwhile is not overwritten.
                rotated += ApiKey.objects.filter(pk=pk, secret_ciphertext=ciphertext).update(
                    secret_ciphertext=new
                )
        self.stdout.write(
            f"Re-encrypted {rotated} key(s); {current} already used the first key; "
            f"{len(failures)} could not be decrypted."
        )
        for pk, label in failures:
            self.stderr.write(f"  key id {pk} ({label!r}): no configured key opens it")
        if failures:
            raise CommandError(
                f"{len(failures)} stored key(s) could not be decrypted with any key in "
                "FIELD_ENCRYPTION_KEYS; add the key they were encrypted with and run again."
            )
