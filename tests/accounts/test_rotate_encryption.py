"""manage.py rotate_encryption."""

import io

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command

from accounts.models import ApiKey


def _run(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command("rotate_encryption", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_it_reencrypts_every_key_with_the_first_key(settings, make_key, team):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [old]
    keys = [make_key(team, label=f"k{i}", secret=f"sk_test_secret_{i:04d}") for i in range(5)]
    keys[0].revoked_at = keys[0].created_at
    keys[0].save()
    settings.FIELD_ENCRYPTION_KEYS = [new, old]

    out, _ = _run("--batch-size", "2")

    assert "Re-encrypted 5 key(s); 0 already used the first key; 0 could not" in out
    settings.FIELD_ENCRYPTION_KEYS = [new]  # the old key can now be dropped
    for i, key in enumerate(keys):
        assert ApiKey.objects.get(pk=key.pk).secret == f"sk_test_secret_{i:04d}"
    out, _ = _run()
    assert "Re-encrypted 0 key(s); 5 already used the first key" in out


def test_it_reports_a_key_nothing_opens_and_exits_non_zero(settings, make_key, team):
    lost, old, new = (Fernet.generate_key().decode() for _ in range(3))
    settings.FIELD_ENCRYPTION_KEYS = [lost]
    orphan = make_key(team, label="Orphan", secret="sk_live_ORPHAN_SECRET_9999")
    settings.FIELD_ENCRYPTION_KEYS = [old]
    good = make_key(team, label="Good", secret="sk_live_GOOD_SECRET_1111")
    settings.FIELD_ENCRYPTION_KEYS = [new, old]
    out, err = io.StringIO(), io.StringIO()

    with pytest.raises(CommandError, match="1 stored key"):
        call_command("rotate_encryption", stdout=out, stderr=err)

    assert f"key id {orphan.pk} ('Orphan')" in err.getvalue()
    assert "ORPHAN_SECRET" not in out.getvalue() + err.getvalue()
    assert "Re-encrypted 1 key(s)" in out.getvalue()
    settings.FIELD_ENCRYPTION_KEYS = [new]
    assert ApiKey.objects.get(pk=good.pk).secret == "sk_live_GOOD_SECRET_1111"
    orphan_row = ApiKey.objects.get(pk=orphan.pk)
    assert orphan_row.secret_ciphertext == orphan.secret_ciphertext


def test_it_refuses_a_silly_batch_size(db):
    with pytest.raises(CommandError, match="at least 1"):
        _run("--batch-size", "0")
