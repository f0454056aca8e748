"""Fixtures for the lock-order and retry tests: the lifecycle area's cast and helpers."""

from tests.lifecycle.conftest import (  # noqa: F401 - re-exported for this folder
    bob_membership,
    inline_jobs,
    make_key,
)
