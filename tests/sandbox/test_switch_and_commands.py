"""The sandbox is mounted only when KINOVI_SANDBOX is on; its management commands work."""

import importlib

import pytest
from django.core.management import CommandError, call_command
from django.urls import clear_url_caches

from sandbox.models import SandboxAccount, SandboxFault, hash_key
from sandbox.services import create_account


@pytest.fixture
def reload_urls(settings):
    import kinovi_site.urls

    def reload(enabled: bool):
        settings.KINOVI_SANDBOX = enabled
        importlib.reload(kinovi_site.urls)
        clear_url_caches()

    yield reload
    settings.KINOVI_SANDBOX = True
    importlib.reload(kinovi_site.urls)
    clear_url_caches()


def test_the_sandbox_is_404_when_off(client, reload_urls, db):
    key = create_account(label="x")
    headers = {"Authorization": f"Bearer {key}"}
    reload_urls(True)
    on = client.get("/sandbox/api/v1/jobs/recordInfo?taskId=t", headers=headers)
    assert on.status_code == 404 and on.json() == {"message": "Task not found."}
    assert client.get("/sandbox/api/v1/jobs/recordInfo?taskId=t").status_code == 401
    reload_urls(False)
    for path in (
        "/sandbox/api/v1/jobs/recordInfo?taskId=t",
        "/sandbox/api/v1/jobs/createTask",
        "/sandbox/media/task_1/video.mp4",
    ):
        off = client.get(path, headers=headers)
        assert off.status_code == 404 and b"Task not found" not in off.content
    assert client.post("/sandbox/api/v1/jobs/createTask", headers=headers).status_code == 404


def test_create_account_keeps_only_a_hash(db):
    key = create_account(label="Demo", credits=500, concurrency_limit=3)
    assert key.startswith("sk_sandbox_") and len(key) > 30
    account = SandboxAccount.objects.get()
    assert account.key_hash == hash_key(key) and key not in account.key_hash
    assert (account.label, account.credits, account.concurrency_limit) == ("Demo", 500, 3)
    assert account.key_last4 == key[-4:] and key not in str(account)
    assert create_account(label="Demo") != key


def test_create_account_refuses_nonsense(db):
    with pytest.raises(ValueError):
        create_account(label="x", credits=-1)
    with pytest.raises(ValueError):
        create_account(label="x", concurrency_limit=0)
    assert not SandboxAccount.objects.exists()


def test_account_command_prints_a_working_key(db, capsys):
    call_command("sandbox_account", "--label", "CLI", "--credits", "42")
    key = capsys.readouterr().out.strip()
    assert SandboxAccount.objects.get(key_hash=hash_key(key)).credits == 42
    with pytest.raises(CommandError):
        call_command("sandbox_account", "--concurrency", "0")


def test_faults_command(db, capsys):
    call_command("sandbox_faults", "--status", "429", "--count", "3", "--endpoint", "recordInfo")
    fault = SandboxFault.objects.get()
    assert (fault.status, fault.remaining, fault.endpoint) == (429, 3, "recordInfo")
    call_command("sandbox_faults", "--clear")
    assert SandboxFault.objects.get().remaining == 0
    with pytest.raises(CommandError):
        call_command("sandbox_faults", "--count", "0")
