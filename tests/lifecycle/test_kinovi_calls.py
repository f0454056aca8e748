"""How many Kinovi calls a generation costs, counted where they land (the sandbox's server).

Time is scaled: the sandbox's default life (10 s waiting + 50 s generating = 60 s) and our
poll cadence are both multiplied by SCALE, so the counts are those of a real 60-second task.
"""

import pytest

from generations.models import Status
from tests.lifecycle.conftest import history, submit, wait_for_status

pytestmark = [pytest.mark.cluster]

SCALE = 0.1
# The vendor's sample client polls every 2 s: 30 recordInfo calls for a 60 s task.
VENDOR_SAMPLE_CALLS = 1 + 60 // 2


@pytest.fixture
def sixty_second_task(sandbox_server, settings):
    settings.KINOVI_POLL_TIME_SCALE = SCALE
    settings.KINOVI_SANDBOX_WAIT_SECONDS = 10 * SCALE
    settings.KINOVI_SANDBOX_GENERATE_SECONDS = 50 * SCALE


def test_with_a_callback_url_at_most_four_calls(
    sixty_second_task, start_q_cluster, settings, sandbox_server, team, bob_membership, kinovi_calls
):
    settings.KINOVI_CALLBACKS = True
    start_q_cluster()
    generation = submit(bob_membership, sandbox_server.api_key(team))

    done = wait_for_status(generation, {Status.SUCCESS, Status.FAIL}, timeout=60)

    assert done.status == Status.SUCCESS, history(done)
    calls = kinovi_calls.creates + kinovi_calls.for_task(done.task_id)
    print(f"\nKinovi calls for a 60 s task with a callback URL: {calls}")
    assert kinovi_calls.creates == 1
    assert calls <= 4
    # Our own record agrees with what the server saw.
    assert done.submit_attempts + done.poll_count == calls


def test_without_a_callback_polling_stays_sparse(
    sixty_second_task, start_q_cluster, sandbox_server, team, bob_membership, kinovi_calls
):
    start_q_cluster()
    generation = submit(bob_membership, sandbox_server.api_key(team))

    done = wait_for_status(generation, {Status.SUCCESS, Status.FAIL}, timeout=60)

    assert done.status == Status.SUCCESS, history(done)
    calls = kinovi_calls.creates + kinovi_calls.for_task(done.task_id)
    print(f"\nKinovi calls for a 60 s task, polling only: {calls}")
    assert kinovi_calls.creates == 1
    # Sparse early, dense near the expected end: a handful, a fraction of the sample client's.
    assert calls <= 7 < VENDOR_SAMPLE_CALLS
    assert done.submit_attempts + done.poll_count == calls
