"""Bad configuration is a clear start-up error, not a silent default."""

import os
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet
from django.conf import settings


def _check(**env):
    environment = {
        **os.environ,
        "DEBUG": "false",
        "SECRET_KEY": "a-long-random-production-secret-key-for-this-test-0123456789",
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "ALLOWED_HOSTS": "studio.example.com",
        "SITE_URL": "https://studio.example.com",
        **env,
    }
    return subprocess.run(  # noqa: S603 - our own manage.py with a fixed argument list
        [sys.executable, "manage.py", "check"],
        cwd=settings.BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_good_production_environment_starts():
    result = _check()
    assert result.returncode == 0, result.stderr


# A fixed valid key keeps the test ids stable, which pytest-xdist needs.
VALID_KEY = "wJ6H3y8QyJ0m2Qk0y7mJmS7mWJt7YmM1bXbmSx9Xk2s="


@pytest.mark.parametrize(
    "keys, position",
    [("not-a-fernet-key", 1), (f"{VALID_KEY},short", 2)],
    ids=["first-malformed", "second-malformed"],
)
def test_a_malformed_encryption_key_is_a_clear_error(keys, position):
    result = _check(FIELD_ENCRYPTION_KEYS=keys)
    assert result.returncode != 0
    assert f"FIELD_ENCRYPTION_KEYS: key number {position} is not a valid Fernet key" in (
        result.stderr
    )
    assert "short" not in result.stderr.split("ImproperlyConfigured")[-1]


def test_missing_encryption_keys_without_debug_is_a_clear_error():
    result = _check(FIELD_ENCRYPTION_KEYS="")
    assert result.returncode != 0
    assert "FIELD_ENCRYPTION_KEYS must be set when DEBUG is off" in result.stderr


def test_a_missing_secret_key_without_debug_is_a_clear_error():
    result = _check(SECRET_KEY="")
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr


def _callbacks(**env) -> str:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("KINOVI_")}
    environment.update({"DEBUG": "true", "SITE_URL": "http://127.0.0.1:8000", **env})
    code = "from django.conf import settings; print(settings.KINOVI_CALLBACKS)"
    result = subprocess.run(  # noqa: S603 - our own settings, a fixed program
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=settings.BASE_DIR,
        env={**environment, "DJANGO_SETTINGS_MODULE": "kinovi_site.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "True"),  # make run: the sandbox is this site, so it reaches the callbacks
        ({"KINOVI_SANDBOX": "false"}, "False"),  # the real API cannot reach 127.0.0.1
        ({"KINOVI_BASE_URL": "http://127.0.0.1:9000/api/v1"}, "False"),  # another local double
        ({"KINOVI_CALLBACKS": "off"}, "False"),
        ({"SITE_URL": "https://studio.example.com", "KINOVI_SANDBOX": "false"}, "True"),
    ],
)
def test_callbacks_are_on_where_kinovi_can_reach_the_site(env, expected):
    assert _callbacks(**env) == expected
