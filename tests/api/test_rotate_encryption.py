"""The webhook secrets follow a change of FIELD_ENCRYPTION_KEYS like the Kinovi keys do."""

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command

from api import webhooks
from api.models import WebhookSecret

pytestmark = pytest.mark.django_db


def test_secrets_are_re_encrypted_with_the_new_first_key(team, settings):
    old = settings.FIELD_ENCRYPTION_KEYS[0]
    secret = webhooks.secret_for(team)
    before = WebhookSecret.objects.get().secret_ciphertext
    new_key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [new_key, old]

    call_command("rotate_api_encryption")

    after = WebhookSecret.objects.get().secret_ciphertext
    assert after != before
    assert Fernet(new_key).decrypt(after.encode()).decode() == secret
    settings.FIELD_ENCRYPTION_KEYS = [new_key]  # the old key dropped: still readable
    assert webhooks.secret_for(team) == secret


def test_a_secret_no_key_opens_is_reported(team, settings):
    webhooks.secret_for(team)
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(CommandError, match=f"workspace\\(s\\) {team.pk}"):
        call_command("rotate_api_encryption")
