"""The Kinovi client against the sandbox over real HTTP (pytest-django's live server)."""

import time

import pytest
import requests

import kinovi
from sandbox.models import SandboxAccount, SandboxTask
from sandbox.services import inject_faults
from tests.kinovi.conftest import CANARY
from tests.sandbox.conftest import later

ASK = dict(
    model="seedance-20",
    prompt="A red kite over the dunes",
    duration=5,
    aspect_ratio="16:9",
    mode="keyframe",
    upscale_4k=False,
    # The studio always names a resolution; 1080p is also what Kinovi assumes without one.
    output_resolution="1080p",
)


def test_create_then_poll_to_success(make_account, make_client, clock):
    key, account = make_account(credits=1000)
    client = make_client(key)
    task_id = client.create_task(**ASK)
    assert task_id.startswith("task_")
    # 1080p standard: 83 credits a second.
    assert SandboxAccount.objects.get(pk=account.pk).credits == 1000 - 415  # charged at create

    info = client.record_info(task_id)
    assert (info.task_id, info.status, info.model) == (task_id, "waiting", "seedance-20")
    assert info.output is None and info.completed_at is None
    later(clock, 11)
    assert client.record_info(task_id).status == "generating"
    later(clock, 50)
    info = client.record_info(task_id)
    assert info.status == "success" and info.is_terminal
    assert info.credits_used == 415
    assert (info.output.width, info.output.height, info.output.media_type) == (
        1920,
        1080,
        "video/mp4",
    )
    assert info.output.url.startswith(client.base_url.removesuffix("/api/v1"))
    assert info.output.last_frame_url.endswith("/last-frame.png")
    assert info.output.seed > 0
    assert info.created_at.tzinfo is not None
    assert round((info.completed_at - info.created_at).total_seconds()) == 60
    video = requests.get(info.output.url, timeout=10)
    assert video.status_code == 200 and video.headers["Content-Type"] == "video/mp4"


def test_real_time_lifecycle_with_tiny_timings(make_account, make_client, settings):
    settings.KINOVI_SANDBOX_WAIT_SECONDS = 0.2
    settings.KINOVI_SANDBOX_GENERATE_SECONDS = 0.3
    key, _ = make_account()
    client = make_client(key)
    task_id = client.create_task(**{**ASK, "duration": 4, "aspect_ratio": "9:16"})
    seen = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status = client.record_info(task_id).status
        if not seen or seen[-1] != status:
            seen.append(status)
        if status == "success":
            break
        time.sleep(0.05)
    assert seen[0] == "waiting" and seen[-1] == "success"
    assert client.record_info(task_id).output.height == 1920


@pytest.mark.parametrize(
    "marker, code",
    [("[sandbox:fail]", "2038"), ("[sandbox:error]", "500")],
)
def test_poll_to_fail_refunds(make_account, make_client, clock, marker, code):
    key, account = make_account(credits=1000)
    client = make_client(key)
    task_id = client.create_task(**{**ASK, "prompt": f"A riot {marker}", "upscale_4k": True})
    assert SandboxAccount.objects.get(pk=account.pk).credits == 1000 - 555  # (83 + 28) x 5
    later(clock, 61)
    info = client.record_info(task_id)
    assert info.status == "fail"
    assert info.error.code == code and info.error.message
    assert info.credits_used == 555  # recordInfo still shows the original amount
    assert info.output is None
    assert SandboxAccount.objects.get(pk=account.pk).credits == 1000  # refunded once
    client.record_info(task_id)
    assert SandboxAccount.objects.get(pk=account.pk).credits == 1000


def test_moderation_fails_when_generation_would_start(make_account, make_client, clock):
    key, _ = make_account()
    client = make_client(key)
    task_id = client.create_task(**{**ASK, "prompt": "[sandbox:fail] nope"})
    later(clock, 10.5)
    assert client.record_info(task_id).status == "fail"


def test_wrong_key_is_authentication_failed(make_client):
    with pytest.raises(kinovi.AuthenticationFailed) as caught:
        make_client("sk_sandbox_wrong").create_task(**ASK)
    assert caught.value.status_code == 401
    with pytest.raises(kinovi.AuthenticationFailed):
        make_client("sk_sandbox_wrong").record_info("task_x")


def test_account_without_api_access_is_access_not_enabled(make_account, make_client):
    key, account = make_account()
    SandboxAccount.objects.filter(pk=account.pk).update(api_enabled=False)
    with pytest.raises(kinovi.AccessNotEnabled):
        make_client(key).create_task(**ASK)
    assert not SandboxTask.objects.exists()


def test_another_accounts_task_is_403_and_unknown_is_404(make_account, make_client):
    key_a, _ = make_account()
    key_b, _ = make_account()
    task_id = make_client(key_a).create_task(**ASK)
    with pytest.raises(kinovi.AccessNotEnabled):
        make_client(key_b).record_info(task_id)
    with pytest.raises(kinovi.NotFound):
        make_client(key_a).record_info("task_doesnotexist")


def test_a_task_id_the_vendor_refuses_is_invalid_request(make_account, make_client):
    key, _ = make_account()
    with pytest.raises(kinovi.InvalidRequest) as caught:
        make_client(key).record_info("task_" + "x" * 100)
    assert not isinstance(caught.value, kinovi.InvalidInput)  # the server said so
    assert caught.value.errors == [{"path": "taskId", "message": "taskId is required."}]


def test_insufficient_credits_carries_required_and_available(make_account, make_client):
    key, account = make_account(credits=500)
    with pytest.raises(kinovi.InsufficientCredits) as caught:
        make_client(key).create_task(**{**ASK, "duration": 15})
    assert (caught.value.required, caught.value.available) == (1245, 500)
    assert SandboxAccount.objects.get(pk=account.pk).credits == 500
    assert not SandboxTask.objects.exists()


def test_concurrency_limit_carries_limit_current_and_retry_after(make_account, make_client, clock):
    key, _ = make_account(concurrency_limit=1)
    client = make_client(key)
    client.create_task(**ASK)
    later(clock, 20)
    with pytest.raises(kinovi.ConcurrencyLimited) as caught:
        client.create_task(**ASK)
    assert (caught.value.limit, caught.value.current) == (1, 1)
    assert 39 <= caught.value.retry_after <= 41  # until the running task ends
    assert client.sleep == []  # createTask never retries a 429 by itself
    later(clock, 41)
    assert client.create_task(**ASK).startswith("task_")  # the slot freed up


def test_server_error_on_create_is_unknown_outcome(make_account, make_client):
    key, _ = make_account()
    inject_faults(status=500, count=1, endpoint="createTask")
    with pytest.raises(kinovi.UnknownOutcome) as caught:
        make_client(key).create_task(**ASK)
    assert caught.value.status_code == 500


def test_record_info_retries_server_errors_then_gives_up(make_account, make_client):
    key, _ = make_account()
    client = make_client(key, retries=2)
    task_id = client.create_task(**ASK)
    inject_faults(status=500, count=2, endpoint="recordInfo")
    assert client.record_info(task_id).status == "waiting"  # third attempt answered
    assert len(client.sleep) == 2
    inject_faults(status=500, count=3, endpoint="recordInfo")
    with pytest.raises(kinovi.ServerError):
        client.record_info(task_id)


def test_record_info_honours_the_sandbox_retry_after(make_account, make_client):
    key, _ = make_account()
    client = make_client(key, backoff=0.01)
    task_id = client.create_task(**ASK)
    inject_faults(status=429, count=1, endpoint="recordInfo", retry_after=2)
    assert client.record_info(task_id).status == "waiting"
    assert client.sleep == [2.0]


def test_canary_key_never_leaks_through_live_errors(make_client, caplog):
    caplog.set_level("DEBUG")
    client = make_client(CANARY, retries=1)
    errors = []
    for call in (lambda: client.create_task(**ASK), lambda: client.record_info("task_1")):
        with pytest.raises(kinovi.KinoviError) as caught:
            call()
        errors.append(caught.value)
    inject_faults(status=500, count=4)
    for call in (lambda: client.create_task(**ASK), lambda: client.record_info("task_1")):
        with pytest.raises(kinovi.KinoviError) as caught:
            call()
        errors.append(caught.value)
    import traceback

    for error in errors:
        assert CANARY not in "".join(traceback.format_exception(error))
        assert CANARY not in repr(error.body)
    assert CANARY not in caplog.text and CANARY not in repr(client)
    # Only a hash of sandbox keys is stored, and the canary never reached the database.
    assert not SandboxAccount.objects.filter(key_hash__contains=CANARY).exists()
