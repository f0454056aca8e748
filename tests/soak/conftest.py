"""Fixtures for the soak: the lifecycle cast, a Redis broker of this run's own."""

from tests.cluster.conftest import redis_broker  # noqa: F401 - re-exported for this folder
from tests.lifecycle.conftest import (  # noqa: F401 - re-exported for this folder
    bob_membership,
    kinovi_calls,
)
