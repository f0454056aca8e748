"""What each createTask answer does to a generation, its events, its ledger and its key.

The sandbox answers for real over HTTP (and its fault switch makes the next call a 500 or a
429); `responses` stands in only for what a server cannot do on cue (a read timeout).
"""

import socket

import pytest
import requests
import responses

import kinovi
from accounts.models import ApiKey
from generations import services, slots, tasks, vendor
from generations.models import Generation, Status
from sandbox.services import inject_faults
from tests.lifecycle.conftest import history, ledger, statuses, submit, wait_for


def test_accepted_task_waits_with_a_reserve(sandbox_server, inline_jobs, team, bob_membership):
    key = sandbox_server.api_key(team)

    generation = submit(bob_membership, key)

    generation.refresh_from_db()
    assert history(generation) == [
        ("", "queued", "submit"),
        ("queued", "submitting", "submit"),
        ("submitting", "waiting", "submit"),
    ]
    assert generation.task_id.startswith("task_")
    assert generation.submitted_at is not None and generation.next_poll_at is not None
    assert ledger(generation) == {"reserve": -200}
    key.refresh_from_db()
    assert key.last_used_at is not None


def test_createtask_500_is_unknown_and_never_resent(
    sandbox_server, inline_jobs, team, bob_membership, kinovi_calls
):
    key = sandbox_server.api_key(team)
    inject_faults(status=500, count=1, endpoint="createTask")

    generation = submit(bob_membership, key)

    generation.refresh_from_db()
    assert generation.status == Status.UNKNOWN
    assert statuses(generation) == ["queued", "submitting", "unknown"]
    assert generation.task_id is None
    # It may have been charged: the reserve stays until a callback or an operator resolves it.
    assert ledger(generation) == {"reserve": -200}
    assert kinovi_calls.creates == 1
    # Nothing sends it again: not the dispatcher, not the sweeper, not a re-check.
    assert slots.dispatch() == []
    tasks.sweep()
    assert kinovi_calls.creates == 1
    with pytest.raises(services.ActionRefused, match="never resubmitted automatically"):
        services.recheck(generation=generation, source="user")
    assert statuses(Generation.objects.get(pk=generation.pk)) == ["queued", "submitting", "unknown"]


@responses.activate
def test_read_timeout_on_createtask_is_unknown_after_one_call(
    settings, inline_jobs, team, bob_membership, make_key, django_capture_on_commit_callbacks
):
    settings.KINOVI_BASE_URL = "https://kinovi.test/api/v1"
    responses.add(
        responses.POST,
        "https://kinovi.test/api/v1/jobs/createTask",
        body=requests.exceptions.ReadTimeout("read timed out"),
    )

    with django_capture_on_commit_callbacks(execute=True):
        generation = submit(bob_membership, make_key(team))

    generation.refresh_from_db()
    assert len(responses.calls) == 1
    assert generation.status == Status.UNKNOWN
    assert ledger(generation) == {"reserve": -200}
    assert "may have been created" in generation.error_message


def test_429_goes_back_to_the_queue_then_is_submitted(
    sandbox_server, inline_jobs, team, bob_membership, kinovi_calls
):
    key = sandbox_server.api_key(team)
    inject_faults(status=429, count=1, endpoint="createTask")

    generation = submit(bob_membership, key)

    generation.refresh_from_db()
    assert statuses(generation) == ["queued", "submitting", "queued"]
    assert generation.next_poll_at is not None
    assert ledger(generation) == {}
    key.refresh_from_db()
    assert key.status == ApiKey.Status.VERIFIED  # a 429 never marks a key invalid

    # After the back-off the dispatcher hands it to a submit job again.
    picked = wait_for(slots.dispatch, timeout=10, what="the dispatcher to pick it up")
    assert picked == [generation.pk]
    tasks.submit_generation(generation.pk)
    generation.refresh_from_db()
    assert statuses(generation) == ["queued", "submitting", "queued", "submitting", "waiting"]
    assert ledger(generation) == {"reserve": -200}
    assert kinovi_calls.creates == 2
    assert generation.submit_attempts == 2


def test_429_teaches_the_key_its_limit_and_the_dispatcher_respects_it(
    sandbox_server, inline_jobs, team, bob_membership
):
    key = sandbox_server.api_key(team, concurrency_limit=1)

    first = submit(bob_membership, key, prompt="First [sandbox:fail]")
    second = submit(bob_membership, key, prompt="Second")

    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == Status.WAITING
    assert statuses(second) == ["queued", "submitting", "queued"]
    key.refresh_from_db()
    assert key.concurrency_limit == 1
    assert key.status == ApiKey.Status.VERIFIED
    # While the first holds the only slot, the second is not sent again, however due it is.
    Generation.objects.filter(pk=second.pk).update(next_poll_at=first.created_at)
    assert slots.dispatch() == []
    tasks.submit_generation(second.pk)
    assert Generation.objects.get(pk=second.pk).status == Status.QUEUED

    # The first fails at the sandbox; once a poll sees it, the slot is free again.
    def first_finished():
        tasks.poll_generation(first.pk)
        return Generation.objects.get(pk=first.pk).status == Status.FAIL

    wait_for(first_finished, timeout=10, interval=0.3, what="the first to fail")
    assert slots.dispatch() == [second.pk]
    tasks.submit_generation(second.pk)
    assert Generation.objects.get(pk=second.pk).status == Status.WAITING


def test_402_is_rejected_with_required_and_available(
    sandbox_server, inline_jobs, team, bob_membership
):
    key = sandbox_server.api_key(team, credits=150)

    generation = submit(bob_membership, key)

    generation.refresh_from_db()
    assert statuses(generation) == ["queued", "submitting", "rejected"]
    assert generation.error_code == "402"
    assert generation.error_detail == {"required": 200, "available": 150}
    assert "needs 200 credits and the account has 150" in generation.error_message
    assert ledger(generation) == {}
    assert generation.charged_credits == 0
    key.refresh_from_db()
    assert key.status == ApiKey.Status.VERIFIED


def test_401_rejects_and_marks_the_key_invalid(sandbox_server, inline_jobs, team, bob_membership):
    key = ApiKey(workspace=team, label="Stale", is_default=True, status=ApiKey.Status.VERIFIED)
    key.secret = "sk_sandbox_this_key_was_never_issued"
    key.save()

    generation = submit(bob_membership, key)

    generation.refresh_from_db()
    assert statuses(generation) == ["queued", "submitting", "rejected"]
    assert generation.error_code == "401"
    assert ledger(generation) == {}
    key.refresh_from_db()
    assert key.status == ApiKey.Status.INVALID
    assert "401" in key.status_detail
    assert "never_issued" not in generation.error_message + key.status_detail
    # The next submission on that key is refused before anything is saved or sent.
    with pytest.raises(services.SubmissionRefused, match="Kinovi refused that API key"):
        submit(bob_membership, key)
    assert Generation.objects.count() == 1


@responses.activate
def test_400_is_rejected_with_the_vendors_field_errors(
    settings, inline_jobs, team, bob_membership, make_key, django_capture_on_commit_callbacks
):
    settings.KINOVI_BASE_URL = "https://kinovi.test/api/v1"
    errors = [{"path": "inputs.prompt", "message": "Prompt contains unsupported characters."}]
    responses.add(
        responses.POST,
        "https://kinovi.test/api/v1/jobs/createTask",
        status=400,
        json={"message": "Invalid parameters", "errors": errors},
    )

    with django_capture_on_commit_callbacks(execute=True):
        generation = submit(bob_membership, make_key(team))

    generation.refresh_from_db()
    assert generation.status == Status.REJECTED
    assert generation.error_detail == {"errors": errors}
    assert ledger(generation) == {}


def test_connect_errors_are_retried_later_and_nothing_is_charged(
    settings,
    inline_jobs,
    team,
    bob_membership,
    make_key,
    monkeypatch,
    django_capture_on_commit_callbacks,
):
    # A port nobody listens on: the connection is refused before anything is sent.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.KINOVI_BASE_URL = f"http://127.0.0.1:{port}/api/v1"
    monkeypatch.setattr(vendor, "client_for", lambda secret: kinovi.KinoviClient(secret, retries=0))

    with django_capture_on_commit_callbacks(execute=True):
        generation = submit(bob_membership, make_key(team))

    generation.refresh_from_db()
    assert statuses(generation) == ["queued", "submitting", "queued"]
    assert generation.next_poll_at > generation.submitted_at
    assert ledger(generation) == {}


def test_403_rejects_and_marks_the_key_invalid(sandbox_server, inline_jobs, team, bob_membership):
    from sandbox.models import SandboxAccount

    key = sandbox_server.api_key(team)
    SandboxAccount.objects.update(api_enabled=False)

    generation = submit(bob_membership, key)

    generation.refresh_from_db()
    assert statuses(generation) == ["queued", "submitting", "rejected"]
    assert generation.error_code == "403"
    assert "API access is not enabled" in generation.error_message
    assert ledger(generation) == {}
    key.refresh_from_db()
    assert key.status == ApiKey.Status.INVALID
