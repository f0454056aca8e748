"""Attacks on `/hooks/kinovi/<public_id>/<token>/` by someone who is not Kinovi.

Whatever is posted, a generation's status and the ledger stay as they are, nothing but the
delivery log is written (for a wrong token not even that: only the bad-token counter moves),
and the answer is never a 500. Where the attack needs Kinovi's word (a forged success, a task
of another workspace), the real sandbox answers over HTTP from the live server.
"""

import json
import secrets

import pytest
from django.utils import timezone

from accounts.models import hash_token
from generations import deliveries, queue
from generations.models import CreditEntry, Generation, Heartbeat, Status, WebhookDelivery
from tests.security.conftest import snapshot

TASK_ID = "task-of-workspace-a"


def bad_token_count() -> int:
    beat = Heartbeat.objects.filter(name=Heartbeat.BAD_WEBHOOK_TOKEN).first()
    return beat.count if beat else 0


def arm(generation, *, status=Status.WAITING, task_id=TASK_ID) -> str:
    """Gives a generation a callback token (as the submit job does) and its reserve."""
    token = secrets.token_urlsafe(32)
    Generation.objects.filter(pk=generation.pk).update(
        status=status,
        task_id=task_id,
        callback_token_hash=hash_token(token),
        submitted_at=timezone.now(),
    )
    CreditEntry.objects.get_or_create(
        generation=generation,
        kind=CreditEntry.Kind.RESERVE,
        defaults={
            "workspace_id": generation.workspace_id,
            "user_id": generation.creator_id,
            "api_key_id": generation.api_key_id,
            "model": generation.model,
            "credits": -generation.estimated_credits,
            "dollars_per_credit": generation.dollars_per_credit,
        },
    )
    return f"/hooks/kinovi/{generation.public_id}/{token}/"


def success_body(task_id=TASK_ID) -> dict:
    return {
        "code": 200,
        "message": "success",
        "data": {
            "taskId": task_id,
            "state": "success",
            "creditsUsed": 1,
            "output": [{"url": "https://evil.example/video.mp4", "width": 1, "height": 1}],
        },
    }


def without_deliveries(state: dict) -> dict:
    return {k: v for k, v in state.items() if k != "deliveries"}


@pytest.fixture
def armed(world, client):
    client.raise_request_exception = False
    return arm(world["generation"])


@pytest.fixture
def other_generation(world, make_user):
    """A generation of another workspace (Charlie's personal one), with its own token."""
    from accounts.models import ApiKey

    charlie = world["cast"]["charlie"]
    workspace = charlie.memberships.get().workspace
    key = ApiKey(workspace=workspace, label="Charlie's key", is_default=True)
    key.secret = "sk_live_charlie_key_0001"
    key.save()
    generation = Generation.objects.create(
        workspace=workspace,
        creator=charlie,
        api_key=key,
        prompt="Charlie's video",
        estimated_credits=200,
    )
    return generation, arm(generation, task_id="task-of-workspace-b")


# --- tokens -------------------------------------------------------------------------------------


def test_a_wrong_token_is_404_and_only_counted(world, armed, client):
    generation = world["generation"]
    before = snapshot()
    paths = [
        f"/hooks/kinovi/{generation.public_id}/{'A' * 43}/",
        f"/hooks/kinovi/{generation.public_id}/{armed.split('/')[-2][:-1]}/",  # one char short
        f"/hooks/kinovi/{generation.public_id}/{armed.split('/')[-2]}x/",
        "/hooks/kinovi/00000000-0000-0000-0000-000000000000/" + armed.split("/")[-2] + "/",
    ]
    for path in paths:
        response = client.post(path, success_body(), content_type="application/json")
        assert response.status_code == 404, path
        assert generation.task_id not in response.content.decode()

    assert snapshot() == before  # not even a delivery row
    assert bad_token_count() == len(paths)


def test_the_right_token_for_another_generation_is_404(world, armed, other_generation, client):
    other, other_path = other_generation
    token = other_path.split("/")[-2]
    before = snapshot()

    mixed = f"/hooks/kinovi/{world['generation'].public_id}/{token}/"
    response = client.post(mixed, success_body(), content_type="application/json")

    assert response.status_code == 404
    assert snapshot() == before
    assert bad_token_count() == 1


def test_a_generation_without_a_callback_has_no_working_token(world, client):
    # Polling-only generations store no hash: no token, even an empty-looking one, opens it.
    generation = world["generation"]
    Generation.objects.filter(pk=generation.pk).update(status=Status.WAITING, task_id=TASK_ID)
    before = snapshot()
    for token in ("x", "None", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"):
        response = client.post(
            f"/hooks/kinovi/{generation.public_id}/{token}/",
            success_body(),
            content_type="application/json",
        )
        assert response.status_code == 404
    assert snapshot() == before


def test_a_replay_after_the_confirmed_end_is_a_cheap_duplicate(world, armed, client, monkeypatch):
    """The vendor repeats and delays its deliveries and retries anything but a 2xx: after the
    confirmed end its token still gets 200 "duplicate", changes nothing, is never judged or
    confirmed, is not a bad token, and only DELIVERIES_KEPT of them are stored."""
    generation = world["generation"]
    Generation.objects.filter(pk=generation.pk).update(
        status=Status.SUCCESS, confirmed_at=timezone.now(), credits_used=200
    )
    confirmations = []
    monkeypatch.setattr(queue, "confirm", confirmations.append)
    before = snapshot()

    replays = deliveries.DELIVERIES_KEPT + 5
    for _ in range(replays):
        response = client.post(armed, success_body(), content_type="application/json")
        assert response.status_code == 200
        assert response.json() == {"received": True, "outcome": "duplicate"}

    assert without_deliveries(snapshot()) == without_deliveries(before)
    stored = WebhookDelivery.objects.filter(generation=generation)
    assert stored.count() == deliveries.DELIVERIES_KEPT
    assert set(stored.values_list("outcome", flat=True)) == {"duplicate"}
    assert confirmations == []
    assert bad_token_count() == 0
    late = Heartbeat.objects.get(name=Heartbeat.LATE_WEBHOOK)
    assert late.count == replays


def test_get_and_other_methods_are_refused(armed, client):
    before = snapshot()
    assert client.get(armed).status_code == 405
    assert client.put(armed, "{}", content_type="application/json").status_code == 405
    assert client.delete(armed).status_code == 405
    assert snapshot() == before


# --- what the body claims -----------------------------------------------------------------------


def test_a_body_naming_another_workspaces_task_is_rejected(
    world, armed, other_generation, client, monkeypatch
):
    enqueued = []
    monkeypatch.setattr(queue, "enqueue", lambda *args, **kwargs: enqueued.append(args))
    before = snapshot()

    response = client.post(
        armed, success_body("task-of-workspace-b"), content_type="application/json"
    )

    assert response.status_code == 200
    delivery = WebhookDelivery.objects.get()
    assert delivery.outcome == WebhookDelivery.Outcome.REJECTED
    assert delivery.generation_id == world["generation"].pk
    # Nothing asked of Kinovi, nothing of either workspace changed.
    assert enqueued == []
    assert without_deliveries(snapshot()) == without_deliveries(before)
    # What the requester learns is about its own delivery only.
    assert "Charlie" not in response.content.decode()


@pytest.mark.parametrize(
    ("case", "body", "content_type"),
    [
        ("not JSON", b"this is not json", "application/json"),
        ("empty", b"", "application/json"),
        ("a JSON array", b"[1, 2, 3]", "application/json"),
        ("JSON null", b"null", "application/json"),
        ("a JSON string", b'"success"', "application/json"),
        ("deeply nested arrays", b"[" * 30_000 + b"]" * 30_000, "application/json"),
        ("deeply nested objects", b'{"a":' * 10_000 + b"1" + b"}" * 10_000, "application/json"),
        ("deep inside data", b'{"data":' * 6_000 + b"{}" + b"}" * 6_000, "application/json"),
        ("a form body", b"code=200&data.taskId=task-of-workspace-a&state=success", "form"),
        ("multipart", b"--x\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--x--", "multi"),
        ("XML", b"<task><state>success</state></task>", "application/xml"),
        ("invalid UTF-8", b"\xff\xfe\xfd\x80\x81 {\xc3\x28}", "application/json"),
        ("NUL bytes", b'{"code": 200, "data": {"taskId": "\x00\x00", "state": "\x00"}}', "json"),
        ("an escaped NUL in the task id", success_body("task\\u0000").__repr__().encode(), "json"),
        ("JSON escaped NUL", json.dumps(success_body("task-\u0000-a")).encode(), "json"),
        ("a lone surrogate", b'{"data": {"taskId": "\\ud800", "state": "success"}}', "json"),
        ("emoji and RTL", json.dumps(success_body("\u202e🎬" * 40)).encode(), "json"),
        ("an unknown state", json.dumps({"data": {"taskId": TASK_ID, "state": "x"}}).encode(), ""),
        ("a list as state", json.dumps({"data": {"taskId": TASK_ID, "state": [1]}}).encode(), ""),
        ("a number as task", json.dumps({"data": {"taskId": 12, "state": "success"}}).encode(), ""),
        ("a huge number", b'{"data": {"taskId": "t", "creditsUsed": 1' + b"0" * 5000 + b"}}", ""),
        ("an infinite number", b'{"data": {"taskId": "t", "creditsUsed": 1e999}}', ""),
        ("NaN", b'{"data": {"taskId": "task-of-workspace-a", "state": NaN}}', ""),
        ("a task id of 10 000 chars", json.dumps(success_body("t" * 10_000)).encode(), ""),
    ],
)
def test_a_malformed_body_changes_nothing(world, armed, client, case, body, content_type):
    content_type = {
        "json": "application/json",
        "": "application/json",
        "form": "application/x-www-form-urlencoded",
        "multi": "multipart/form-data; boundary=x",
    }.get(content_type, content_type)
    before = snapshot()

    response = client.post(armed, data=body, content_type=content_type)

    assert response.status_code in (200, 400), (case, response.status_code)
    after = snapshot()
    assert without_deliveries(after) == without_deliveries(before), case
    assert after["deliveries"] == before["deliveries"] + 1  # stored, then judged
    delivery = WebhookDelivery.objects.get()
    assert delivery.outcome == WebhookDelivery.Outcome.REJECTED, (case, delivery.error)
    assert delivery.processed_at is not None
    assert bad_token_count() == 0


def test_a_10_mb_body_is_413_and_stored_capped(world, armed, client):
    before = snapshot()
    filler = "x" * (10 * 1024 * 1024)
    body = json.dumps({"data": {"taskId": TASK_ID, "state": "success", "pad": filler}})

    response = client.post(armed, data=body, content_type="application/json")

    assert response.status_code == 413
    assert without_deliveries(snapshot()) == without_deliveries(before)
    delivery = WebhookDelivery.objects.get()
    assert delivery.body_truncated and len(delivery.body) <= 64 * 1024
    assert delivery.outcome == WebhookDelivery.Outcome.REJECTED


def test_credential_headers_are_masked_and_odd_headers_stored_safely(world, armed, client):
    response = client.post(
        armed,
        data=b"{}",
        content_type="application/json",
        headers={
            "Authorization": "Bearer sk_live_stolen_0000",
            "Cookie": "sessionid=abc",
            "X-Odd": "caf\u00e9 \u202e" + "y" * 5000,
            "X-Nul": "a\x00b",
        },
    )

    assert response.status_code == 400
    headers = WebhookDelivery.objects.get().headers
    assert headers["Authorization"] == "••••" and headers["Cookie"] == "••••"
    assert len(headers["X-Odd"]) <= 500
    assert headers["X-Nul"] == "a\ufffdb"
    assert "sk_live_stolen_0000" not in json.dumps(headers)


# --- against the real sandbox: Kinovi's word decides ----------------------------------------


@pytest.fixture
def live(world, settings, sandbox_server, monkeypatch):
    """Callbacks on, jobs run inline (the confirmation included), the sandbox as Kinovi."""
    from accounts.models import Membership
    from tests.lifecycle.conftest import InlineJobs

    settings.KINOVI_CALLBACKS = True
    settings.KINOVI_SANDBOX_GENERATE_SECONDS = 60  # it stays "generating" for the whole test
    monkeypatch.setattr(queue, "enqueue", InlineJobs())
    world["key"].is_default = False
    world["key"].save(update_fields=["is_default"])
    membership = Membership.objects.get(user=world["cast"]["bob"], workspace=world["team"])
    return membership, sandbox_server.api_key(world["team"], label="Sandbox A")


def _submit(membership, key):
    from tests.lifecycle.conftest import submit

    generation = submit(membership, key, prompt="A kite over the dunes, slow pan")
    generation.refresh_from_db()
    return generation


def test_a_forged_success_while_kinovi_says_generating_changes_nothing(live, client):
    from sandbox.models import SandboxTask
    from tests.lifecycle.conftest import ledger, wait_for

    membership, key = live
    generation = _submit(membership, key)
    task = SandboxTask.objects.get(task_id=generation.task_id)
    wait_for(lambda: timezone.now() >= task.starts_at, timeout=10, what="generating")
    path = task.callback_url.split("://", 1)[1].split("/", 1)[1]

    response = client.post(
        f"/{path}", success_body(generation.task_id), content_type="application/json"
    )

    assert response.status_code == 200
    generation.refresh_from_db()
    delivery = WebhookDelivery.objects.get()
    assert delivery.outcome == WebhookDelivery.Outcome.IGNORED
    assert "Kinovi says generating" in delivery.error
    # Only Kinovi's own answer (generating) could be applied; the forged output never is.
    assert generation.status == Status.GENERATING
    assert generation.video_url == "" and generation.credits_used is None
    assert ledger(generation) == {"reserve": -generation.estimated_credits}


def test_an_unknown_outcome_cannot_adopt_another_accounts_task(live, client, sandbox_server):
    """A generation whose createTask answer was lost would adopt the task its callback names:
    a body naming a task of another Kinovi account is refused by Kinovi (asked with our key)."""
    import kinovi
    from tests.lifecycle.conftest import ledger

    membership, key = live
    generation = _submit(membership, key)
    Generation.objects.filter(pk=generation.pk).update(status=Status.UNKNOWN, task_id=None)
    token = secrets.token_urlsafe(32)
    Generation.objects.filter(pk=generation.pk).update(callback_token_hash=hash_token(token))
    with kinovi.KinoviClient(sandbox_server.create_secret(label="Workspace B")) as other:
        foreign_task = other.create_task(
            model="seedance-20",
            prompt="Someone else's video",
            duration=5,
            aspect_ratio="16:9",
            mode="keyframe",
            upscale_4k=False,
        )
    before = snapshot()

    response = client.post(
        f"/hooks/kinovi/{generation.public_id}/{token}/",
        success_body(foreign_task),
        content_type="application/json",
    )

    assert response.status_code == 200
    delivery = WebhookDelivery.objects.get()
    assert delivery.outcome == WebhookDelivery.Outcome.REJECTED
    assert "does not know that task" in delivery.error
    generation.refresh_from_db()
    assert generation.status == Status.UNKNOWN and generation.task_id is None
    assert ledger(generation) == {"reserve": -generation.estimated_credits}
    assert without_deliveries(snapshot()) == without_deliveries(before)
