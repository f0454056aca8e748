"""Fixtures for the fault suite: a scripted Kinovi on a real socket, and the lifecycle helpers."""

import pytest

from tests.faults.scripted import ScriptedKinovi

# The lifecycle area's fixtures, shared rather than copied: jobs run inline, no real sleeps
# between client retries, Bob's membership and keys with any secret.
from tests.lifecycle.conftest import (  # noqa: F401 - fixtures re-exported for this folder
    bob_membership,
    inline_jobs,
    kinovi_calls,
    make_key,
    no_sleep,
)

# Short enough that a scripted "no answer" costs the suite well under a second.
READ_TIMEOUT = 0.5


@pytest.fixture
def kinovi(settings):
    """A scripted Kinovi the project is pointed at; stopped (and its holds released) after."""
    with ScriptedKinovi() as server:
        settings.KINOVI_BASE_URL = server.url
        settings.KINOVI_CONNECT_TIMEOUT = 1.0
        settings.KINOVI_READ_TIMEOUT = READ_TIMEOUT
        settings.KINOVI_CALLBACKS = False
        yield server
