"""An operator resolving an unknown outcome: with the task id from Kinovi, or "never created"."""

import pytest

import kinovi
from generations import services, submission
from generations.models import Generation, Status
from tests.lifecycle.conftest import history, ledger, submit


def unknown(membership, key):
    """A generation whose createTask answer was lost (jobs held, steps taken by hand)."""
    generation = submit(membership, key)
    claimed, _ = submission._claim(generation)
    assert claimed
    submission._create_failed(generation, kinovi.UnknownOutcome("read timed out"))
    generation = Generation.objects.get(pk=generation.pk)
    assert generation.status == Status.UNKNOWN
    return generation


def test_the_task_id_from_kinovi_resolves_it(sandbox_server, inline_jobs, team, bob_membership):
    inline_jobs.paused = True
    key = sandbox_server.api_key(team)
    generation = unknown(bob_membership, key)
    with kinovi.KinoviClient(key.secret) as client:
        task_id = client.create_task(
            model="seedance-20",
            prompt=generation.prompt,
            duration=5,
            aspect_ratio="16:9",
            mode="keyframe",
            upscale_4k=False,
        )

    resolved = services.resolve_unknown(generation=generation, task_id=f"  {task_id} ")

    assert resolved.task_id == task_id
    assert resolved.status == Status.WAITING
    assert history(resolved)[-1] == ("unknown", "waiting", "operator")
    assert ledger(resolved) == {"reserve": -200}
    assert resolved.next_poll_at is not None  # polling takes over from here


def test_a_task_id_kinovi_does_not_know_is_refused(
    sandbox_server, inline_jobs, team, bob_membership
):
    inline_jobs.paused = True
    generation = unknown(bob_membership, sandbox_server.api_key(team))

    with pytest.raises(services.ActionRefused, match="Kinovi knows no task task_nope"):
        services.resolve_unknown(generation=generation, task_id="task_nope")

    generation.refresh_from_db()
    assert generation.status == Status.UNKNOWN and generation.task_id is None


def test_never_created_ends_rejected_and_refunds_the_reserve(
    team, bob_membership, make_key, inline_jobs
):
    inline_jobs.paused = True
    generation = unknown(bob_membership, make_key(team))

    resolved = services.resolve_unknown(generation=generation, task_id="")

    assert resolved.status == Status.REJECTED
    assert history(resolved)[-1] == ("unknown", "rejected", "operator")
    assert ledger(resolved) == {"reserve": -200, "refund": 200}
    assert resolved.charged_credits == 0
    with pytest.raises(services.ActionRefused, match="Only a video whose outcome is unknown"):
        services.resolve_unknown(generation=resolved, task_id=None)


def test_queued_videos_are_canceled_not_hidden(team, bob_membership, make_key):
    generation = submit(bob_membership, make_key(team))
    with pytest.raises(services.ActionRefused, match="cancel it instead"):
        services.hide(generation=generation, membership=bob_membership)
    assert not Generation.objects.get(pk=generation.pk).hidden
