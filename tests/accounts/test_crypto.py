"""Encryption of stored keys: round trip, rotation with an old key, a wrong key refused."""

import pytest
from cryptography.fernet import Fernet

from accounts import crypto
from accounts.models import ApiKey

from .conftest import CANARY


def test_it_round_trips(settings):
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    ciphertext = crypto.encrypt(CANARY)
    assert CANARY not in ciphertext
    assert crypto.decrypt(ciphertext) == CANARY


def test_it_stores_the_key_encrypted(make_key, team):
    key = make_key(team, secret=CANARY)
    key.refresh_from_db()
    assert CANARY not in key.secret_ciphertext
    assert key.secret == CANARY
    assert key.masked == "••••7890"
    assert CANARY not in str(key) and CANARY not in repr(key)


def test_an_old_key_still_decrypts_after_a_new_one_comes_first(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [old]
    ciphertext = crypto.encrypt(CANARY)
    settings.FIELD_ENCRYPTION_KEYS = [new, old]
    assert crypto.decrypt(ciphertext) == CANARY
    rotated = crypto.rotate(ciphertext)
    settings.FIELD_ENCRYPTION_KEYS = [new]
    assert crypto.decrypt(rotated) == CANARY
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(ciphertext)


def test_a_wrong_key_raises_without_the_value(settings, make_key, team):
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    key = make_key(team, secret=CANARY)
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    key = ApiKey.objects.get(pk=key.pk)
    with pytest.raises(crypto.DecryptionError) as caught:
        key.secret  # noqa: B018 - reading is the operation under test
    assert CANARY not in str(caught.value)
    assert key.secret_ciphertext not in str(caught.value)
    assert "could not be decrypted" in str(caught.value)


def test_garbage_ciphertext_raises():
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt("not a fernet token")
