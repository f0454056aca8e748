"""Encryption of stored secrets (Kinovi API keys) with MultiFernet from FIELD_ENCRYPTION_KEYS."""

from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver


class DecryptionError(Exception):
    """A stored secret that none of the configured keys can open. Never carries the value."""

    def __init__(self) -> None:
        super().__init__(
            "A stored secret could not be decrypted with any key in FIELD_ENCRYPTION_KEYS."
        )


@cache
def _multifernet() -> MultiFernet:
    # The first key encrypts; every key is tried for decryption, so old keys keep working
    # until `manage.py rotate_encryption` has re-encrypted everything with the new one.
    return MultiFernet([Fernet(key) for key in settings.FIELD_ENCRYPTION_KEYS])


@receiver(setting_changed)
def _forget_keys(*, setting: str, **kwargs) -> None:
    if setting == "FIELD_ENCRYPTION_KEYS":
        _multifernet.cache_clear()


def encrypt(plaintext: str) -> str:
    return _multifernet().encrypt(plaintext.encode()).decode()


def decrypt(ciphertext: str) -> str:
    try:
        return _multifernet().decrypt(ciphertext.encode()).decode()
    except (InvalidToken, ValueError, TypeError):
        raise DecryptionError() from None


def rotate(ciphertext: str) -> str:
    """Re-encrypt with the first key; raises DecryptionError if no key opens it."""
    try:
        return _multifernet().rotate(ciphertext.encode()).decode()
    except (InvalidToken, ValueError, TypeError):
        raise DecryptionError() from None


def mask(secret: str) -> str:
    return "••••" + secret[-4:] if len(secret) >= 8 else "••••"
