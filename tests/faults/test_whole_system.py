"""The whole system under faults: a real cluster, webhooks on, the sandbox as Kinovi behind a
faulty link (the scripted server forwarding to it). Answers lost after the sandbox created
and charged a task, a 500 before it did, a 429, and recordInfo failing every other call: each
generation ends in its right state or a visible `unknown`, createTask reaches the sandbox
once per generation at most, and the ledger matches what the sandbox charged."""

from collections import Counter

import pytest
from django.urls import reverse
from django_q.models import Task

from generations.models import CreditEntry, Generation, Status, StatusEvent, WebhookDelivery
from sandbox.models import SandboxAccount, SandboxTask
from sandbox.services import settle_finished
from tests.faults.scripted import CREATE, RECORD, Reply, ScriptedKinovi
from tests.lifecycle.conftest import history, ledger, submit, wait_for

pytestmark = [pytest.mark.cluster]

CREDITS = 50_000
# prompt → (what the link does to its createTask, the state it must end in, its ledger)
PLAN = {
    "Plain: a heron fishing at dawn": (None, Status.SUCCESS, {"reserve": -200}),
    "Plain: rain on a tin roof, macro": (None, Status.SUCCESS, {"reserve": -200}),
    # Created and charged at the sandbox, the answer lost: unknown, then its callback comes.
    "Lost answer: a kite festival": ("lost", Status.SUCCESS, {"reserve": -200}),
    "Lost answer: a riot [sandbox:fail]": (
        "lost",
        Status.FAIL,
        {"reserve": -200, "refund": 200},
    ),
    # A 500 before anything reached the sandbox: nothing exists there, but nobody here can
    # know that, so it stays unknown with its reserve, visibly, and is never resent.
    "Refused: a lighthouse in fog": ("500", Status.UNKNOWN, {"reserve": -200}),
    # A 429 first, then it goes through.
    "Busy first: children on a slide": ("429", Status.SUCCESS, {"reserve": -200}),
}


@pytest.fixture
def link(sandbox_server, settings):
    """The scripted server in front of the sandbox; the project (and its cluster) use it."""
    with ScriptedKinovi(upstream=sandbox_server.api_url) as server:
        settings.KINOVI_BASE_URL = server.url
        settings.KINOVI_READ_TIMEOUT = 5.0
        yield server


def test_faults_everywhere_and_every_generation_still_ends_right(
    link, start_q_cluster, sandbox_server, settings, team, bob_membership, cast, login_as
):
    settings.KINOVI_CALLBACKS = True
    seen: set[str] = set()
    asked: Counter = Counter()

    def createtask(endpoint, body, task_id):
        if endpoint != CREATE:
            return None
        prompt = body["inputs"]["prompt"]
        fault = PLAN[prompt][0]
        first_time = prompt not in seen
        seen.add(prompt)
        if fault == "lost":
            return Reply(forward=True, reset=True)
        if fault == "500":
            return Reply(500, {"message": "Upstream connect error"})
        if fault == "429" and first_time:
            return Reply(429, {"message": "Busy"}, headers={"Retry-After": "1"})
        return None  # forwarded as it is

    def recordinfo(endpoint, body, task_id):
        # Every other recordInfo of each task fails (500, 200, 500, ...): the client's retry
        # carries each poll and confirmation through.
        if endpoint != RECORD:
            return None
        asked[task_id] += 1
        return Reply(500, {"message": "Internal server error"}) if asked[task_id] % 2 else None

    link.rules += [createtask, recordinfo]
    cluster = start_q_cluster()
    key = sandbox_server.api_key(team, credits=CREDITS, concurrency_limit=10)

    generations = {prompt: submit(bob_membership, key, prompt=prompt) for prompt in PLAN}

    def settled():
        current = {p: Generation.objects.get(pk=g.pk) for p, g in generations.items()}
        return current if all(g.status == PLAN[p][1] for p, g in current.items()) else None

    try:
        final = wait_for(settled, timeout=60, interval=0.5, what="every generation to end")
    except AssertionError:
        raise AssertionError(
            {p: history(Generation.objects.get(pk=g.pk)) for p, g in generations.items()}
        ) from None

    for prompt, generation in final.items():
        assert ledger(generation) == PLAN[prompt][2], (prompt, history(generation))
    lost = [g for p, g in final.items() if PLAN[p][0] == "lost"]
    for generation in lost:
        # It really passed through unknown, and its callback (confirmed) resolved it.
        steps = [to for _, to, _ in history(generation)]
        assert steps[:3] == ["queued", "submitting", "unknown"], history(generation)
        assert history(generation)[-1][2] == "webhook"
        assert generation.webhook_deliveries.filter(outcome="applied").exists()
    refused = next(g for p, g in final.items() if PLAN[p][0] == "500")
    assert refused.task_id is None and "may have been created" in refused.error_message

    # createTask: once per prompt, plus the one 429; the sandbox created one task per prompt
    # the link let through, never two.
    assert len(link.calls_to(CREATE)) == len(PLAN) + 1
    created = list(SandboxTask.objects.values_list("prompt", flat=True))
    assert sorted(created) == sorted(p for p in PLAN if PLAN[p][0] != "500")
    for prompt, generation in final.items():
        if PLAN[prompt][0] != "500":
            assert SandboxTask.objects.get(prompt=prompt).task_id == generation.task_id

    # Money: what the sandbox charged is exactly our ledger, except the unknown one's reserve
    # (held because nobody can tell whether Kinovi charged it; an operator releases it).
    settle_finished()
    charged = CREDITS - SandboxAccount.objects.get().credits
    ours = -sum(CreditEntry.objects.values_list("credits", flat=True))
    assert charged == 200 * 4  # four successes
    assert ours == charged + 200
    assert link.calls_to(RECORD) and any(c.answer == "500" for c in link.calls_to(RECORD))

    # Visible: the unknown one says so on its page, and the gallery shows every one.
    client = login_as(cast["bob"], team)
    page = client.get(reverse("generation_detail", args=[refused.public_id]))
    assert page.status_code == 200
    assert "Outcome unknown" in page.content.decode()
    gallery = client.get(reverse("home")).content.decode()
    assert all(str(g.public_id) in gallery for g in final.values())

    # Whatever failed, the key is in no job row, delivery, event, error or log line.
    secret = key.secret
    stored = [
        *Task.objects.values_list("args", "kwargs", "result"),
        *WebhookDelivery.objects.values_list("headers", "body", "error"),
        *StatusEvent.objects.values_list("detail", flat=True),
        *Generation.objects.values_list("error_message", "error_detail"),
    ]
    assert secret not in repr(stored)
    assert secret not in cluster.log_path.read_text()
