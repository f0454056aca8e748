"""The chaos soak, bounded (bench/soak.py runs it longer, with worker kills): three members
submit through the service and the page for SOAK_SECONDS while two clusters on Redis run;
the sandbox answers 429s and 500s; webhooks arrive twice, late, and early (a claim made
before the task ended). At the end the studio's promises hold: every generation ended or is
visibly unknown, none has two tasks, every ledger is exact and matches what the sandbox
charged, the budget was never overdrawn, no page answered 500, no key appears in any log."""

import json
import os
import random
import time
from pathlib import Path

import pytest
import requests
from django.db.models import Count, Sum
from django.urls import reverse

from accounts.models import Membership
from bench.soak import Report, kill_a_worker
from generations import budget
from generations.models import (
    DOUBTFUL_STATUSES,
    TERMINAL_STATUSES,
    CreditEntry,
    Generation,
    Status,
)
from sandbox.models import SandboxAccount, SandboxTask
from sandbox.services import inject_faults, settle_finished, webhook_body
from tests.lifecycle.conftest import submit, wait_for

pytestmark = [pytest.mark.cluster]

SECONDS = float(os.environ.get("SOAK_SECONDS", "20"))
KILLS = os.environ.get("SOAK_KILLS", "") == "1"
CREDITS = 1_000_000
BUDGET = 200 * 40  # forty 5-second standard videos; the soak asks for more


def ledger_is_exact(generation: Generation) -> str | None:
    rows = dict(CreditEntry.objects.filter(generation=generation).values_list("kind", "credits"))
    estimate = generation.estimated_credits
    net = sum(rows.values())
    wanted = {
        Status.SUCCESS: -(generation.credits_used or estimate),
        Status.FAIL: 0,
        Status.REJECTED: 0,
        Status.CANCELED: 0,
        Status.UNKNOWN: -estimate,
        Status.STALLED: -estimate,
    }.get(generation.status)
    if wanted is None or net != wanted:
        return f"{generation.pk} {generation.status}: {rows}"
    return None


def invariants(report: Report, secret: str, logs: list[Path]) -> dict:
    found = {}
    stuck = Generation.objects.exclude(status__in=[*TERMINAL_STATUSES, *DOUBTFUL_STATUSES])
    found["every generation ended or is visibly doubtful"] = list(stuck.values_list("pk", "status"))
    twice = SandboxTask.objects.values("prompt").annotate(n=Count("id")).filter(n__gt=1)
    found["no generation with two Kinovi tasks"] = list(twice)
    found["every ledger exact"] = [
        broken for g in Generation.objects.all() if (broken := ledger_is_exact(g))
    ]
    settle_finished()
    charged = CREDITS - SandboxAccount.objects.get().credits
    captured = -(
        CreditEntry.objects.filter(generation__status=Status.SUCCESS).aggregate(t=Sum("credits"))[
            "t"
        ]
        or 0
    )
    found["the ledger matches what the sandbox charged for successes"] = (
        [] if captured <= charged else [f"captured {captured}, sandbox charged {charged}"]
    )
    workspace = Generation.objects.first().workspace
    spent = budget.spent(workspace=workspace)
    found["the budget never overdrawn"] = [] if spent <= BUDGET else [f"spent {spent}"]
    found["no 500 anywhere"] = [
        f"{kind} {status}"
        for kind, statuses in (("page", report.pages), ("webhook", report.webhook_statuses))
        for status in statuses
        if status >= 500
    ]
    found["no key in any log"] = [str(p) for p in logs if secret in p.read_text(errors="replace")]
    return {name: broken or "holds" for name, broken in found.items()}


class Chaos:
    """One soak step at a time: a submission, a page, a webhook trick, a fault."""

    def __init__(self, members, key, client_for, rng, report):
        self.members, self.key, self.client_for = members, key, client_for
        self.rng, self.report = rng, report
        self.count = 0

    def step(self) -> None:
        self.count += 1
        choice = self.rng.random()
        if choice < 0.35:
            self.by_service()
        elif choice < 0.6:
            self.by_page()
        elif choice < 0.85:
            self.webhook_trick()
        else:
            self.fault()

    def prompt(self) -> str:
        marker = self.rng.choice(["", "", "", " [sandbox:fail]", " [sandbox:error]"])
        return f"Soak {self.count}: a tram in the rain{marker}"

    def by_service(self) -> None:
        member = self.rng.choice(self.members)
        try:
            submit(member, self.key, prompt=self.prompt())
            self.report.submitted += 1
        except Exception as exc:  # a refusal in words (over budget) is fine, nothing else
            assert type(exc).__name__ == "SubmissionRefused", repr(exc)

    def by_page(self) -> None:
        member = self.rng.choice(self.members)
        response = self.client_for(member).post(
            reverse("generation_new"),
            {
                "prompt": self.prompt(),
                "model": "seedance-20",
                "duration": "5",
                "aspect_ratio": "16:9",
                "mode": "keyframe",
                "api_key": self.key.pk,
            },
        )
        self.report.pages[response.status_code] += 1
        if response.status_code == 302:
            self.report.submitted += 1

    def webhook_trick(self) -> None:
        tasks = list(SandboxTask.objects.exclude(callback_url="").order_by("-id")[:20])
        if not tasks:
            return
        task = self.rng.choice(tasks)
        body = webhook_body(task)
        kind = "duplicate" if task.webhook_attempts else "early"
        if kind == "early":
            body["data"]["state"] = "success"  # a claim made before the task ended
        answer = requests.post(task.callback_url, json=body, timeout=10)
        self.report.webhooks[kind] += 1
        self.report.webhook_statuses[answer.status_code] += 1

    def fault(self) -> None:
        status, endpoint = self.rng.choice(
            [(429, "createTask"), (500, "createTask"), (500, "recordInfo"), (429, "recordInfo")]
        )
        inject_faults(status=status, count=1, endpoint=endpoint, retry_after=1)
        self.report.faults[f"{status} {endpoint}"] += 1


def test_the_studio_keeps_its_promises_under_chaos(
    sandbox_server,
    start_q_cluster,
    redis_broker,
    settings,
    team,
    cast,
    bob_membership,
    client,
    tmp_path,
):
    settings.KINOVI_CALLBACKS = True
    team.monthly_budget_credits = BUDGET
    team.save()
    key = sandbox_server.api_key(team, credits=CREDITS, concurrency_limit=4)
    secret = key.secret
    clusters = [start_q_cluster(), start_q_cluster()]
    members = [bob_membership] + [
        Membership.objects.get(user=cast[name], workspace=team) for name in ("alice", "adam")
    ]

    def client_for(member):
        client.force_login(member.user, backend="django.contrib.auth.backends.ModelBackend")
        session = client.session
        session["workspace_id"] = team.pk
        session.save()
        return client

    rng = random.Random(13)
    report = Report()
    chaos = Chaos(members, key, client_for, rng, report)
    started = time.monotonic()
    kill_at = started + SECONDS / 2
    while time.monotonic() - started < SECONDS:
        chaos.step()
        if KILLS and time.monotonic() > kill_at:
            if kill_a_worker(rng.choice(clusters).pid, rng):
                report.kills += 1
            kill_at = float("inf")
        time.sleep(rng.uniform(0.05, 0.3))
    report.seconds = time.monotonic() - started

    def drained():
        return not Generation.objects.exclude(
            status__in=[*TERMINAL_STATUSES, *DOUBTFUL_STATUSES]
        ).exists()

    drain = time.monotonic()
    wait_for(drained, timeout=90 if not KILLS else 900, interval=0.5, what="the studio to drain")
    report.drained_in = time.monotonic() - drain
    report.outcomes.update(dict(Generation.objects.values_list("status").annotate(n=Count("id"))))
    logs = [c.log_path for c in clusters]
    report.invariants = invariants(report, secret, logs)
    if os.environ.get("SOAK_REPORT"):
        Path(os.environ["SOAK_REPORT"]).write_text(json.dumps(report.as_dict(), indent=2))
    assert report.submitted >= 5
    assert sum(report.webhooks.values()) >= 1 and sum(report.faults.values()) >= 1
    assert report.invariants == dict.fromkeys(report.invariants, "holds"), report.as_dict()
