"""The lock order of docs/LOCKS.md, held by real PostgreSQL transactions in threads.

The cycle a fresh clone once met (`deadlock detected` at the COMMIT of a submission): a
submission held its workspace and, at COMMIT, its new rows' foreign-key check wanted the key;
a duplicate submit job held the key (claiming) and wanted the generation; the first submit
job held the generation (recording Kinovi's task id and its reserve) and, at COMMIT, its
ledger row's check wanted the workspace. Each transaction here is stopped exactly where it
stood in that cycle, then let go.
"""

import ast
import threading
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from accounts import services as accounts_services
from accounts.models import ApiKey, Membership, Role
from generations import budget, queue, services, slots, submission
from generations.models import CreditEntry, Generation, Status
from tests.lifecycle.conftest import ledger, submit

pytestmark = pytest.mark.django_db(transaction=True)


class Step(threading.Thread):
    """One transaction's work on its own connection; remembers its result or its error."""

    def __init__(self, name: str, work) -> None:
        super().__init__(name=name, daemon=True)
        self.work = work
        self.result = None
        self.error: BaseException | None = None
        self.pid: int | None = None
        self.started_work = threading.Event()

    def run(self) -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                self.pid = cursor.fetchone()[0]
            self.started_work.set()
            self.result = self.work()
        except BaseException as exc:  # the test reports what each transaction ran into
            self.error = exc
        finally:
            connection.close()


def blocked_or_done(step: Step, timeout: float = 10.0) -> str:
    """Waits until `step` waits for a row lock (PostgreSQL says so) or has finished."""
    step.started_work.wait(timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not step.is_alive():
            return "done"
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [step.pid]
            )
            row = cursor.fetchone()
        if row and row[0] == "Lock":
            return "blocked"
        time.sleep(0.02)
    raise AssertionError(f"{step.name} neither finished nor waited for a lock")


def pause_at(monkeypatch, module, name: str):
    """Makes `module.name` stop (the first time it is called) until released; returns
    (reached, release) events. Whatever locks the caller holds stay held meanwhile."""
    original = getattr(module, name)
    reached, release = threading.Event(), threading.Event()

    def paused(*args, **kwargs):
        if not reached.is_set():
            reached.set()
            assert release.wait(30), f"{name} was never released"
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, paused)
    return reached, release


def test_the_old_three_way_cycle_now_completes(monkeypatch, team, bob_membership, make_key):
    monkeypatch.setattr(queue, "enqueue", lambda *args: None)  # no jobs: each step is run here
    key = make_key(team)  # concurrency limit not known yet: a claim always has its turn
    generation = submit(bob_membership, key, prompt="The first video")
    stale = Generation.objects.get(pk=generation.pk)  # a duplicate job read it while queued
    assert submission._claim(generation)[0]  # the first job claimed it and called Kinovi
    generation.refresh_from_db()

    submitted, let_submission_commit = pause_at(monkeypatch, queue, "after_commit")
    claiming, let_claim_go_on = pause_at(monkeypatch, slots, "has_turn")

    # 1. A member submits another video: the workspace is locked, the rows are in.
    t1 = Step("submission", lambda: submit(bob_membership, key, prompt="The second video"))
    t1.start()
    assert submitted.wait(10)
    # 2. The duplicate submit job claims: the key is locked.
    t2 = Step("duplicate claim", lambda: submission._claim(stale))
    t2.start()
    assert claiming.wait(10)
    # 3. The first job records Kinovi's answer: the generation is locked, a reserve written.
    #    Before, its COMMIT waited for the workspace (the ledger row's foreign-key check).
    t3 = Step("answer", lambda: submission._create_accepted(generation, "task-cycle-1"))
    t3.start()
    blocked_or_done(t3)
    # 4. The claim goes on to the generation's lock; 5. the submission commits.
    let_claim_go_on.set()
    blocked_or_done(t2)
    let_submission_commit.set()
    for step in (t1, t2, t3):
        step.join(30)
        assert not step.is_alive(), f"{step.name} is still waiting"
    errors = {step.name: repr(step.error) for step in (t1, t2, t3) if step.error}
    assert errors == {}

    generation.refresh_from_db()
    assert (generation.status, generation.task_id) == (Status.WAITING, "task-cycle-1")
    assert ledger(generation) == {CreditEntry.Kind.RESERVE: -generation.estimated_credits}
    assert t2.result == (False, None) or t2.result[0] is False  # it found the video claimed
    second = t1.result
    assert Generation.objects.get(pk=second.pk).status == Status.QUEUED


def test_a_submission_never_waits_for_a_claim_holding_its_key(
    monkeypatch, team, bob_membership, make_key
):
    """The key's lock a claim holds is FOR NO KEY UPDATE: a new video's foreign-key check
    (FOR KEY SHARE) shares it, so a submission does not queue behind the dispatcher."""
    monkeypatch.setattr(queue, "enqueue", lambda *args: None)
    key = make_key(team)
    generation = submit(bob_membership, key, prompt="The first video")
    claiming, let_claim_go_on = pause_at(monkeypatch, slots, "has_turn")
    claim = Step("claim", lambda: submission._claim(generation))
    claim.start()
    assert claiming.wait(10)
    try:
        other = Step("submission", lambda: submit(bob_membership, key, prompt="Another"))
        other.start()
        assert blocked_or_done(other) == "done"
        assert other.error is None and other.result.status == Status.QUEUED
    finally:
        let_claim_go_on.set()
        claim.join(30)
    assert claim.error is None and claim.result[0] is True


APPS = ["accounts", "generations"]


def test_every_row_lock_of_the_apps_is_for_no_key_update():
    """FOR UPDATE would block the foreign-key checks (FOR KEY SHARE) of every insert pointing
    at the row, late, at COMMIT: the cycle of the first test. docs/LOCKS.md."""
    plain = []
    for app in APPS:
        for path in (Path(settings.BASE_DIR) / app).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "select_for_update"
                    and not any(
                        k.arg == "no_key" and getattr(k.value, "value", None) is True
                        for k in node.keywords
                    )
                ):
                    plain.append(f"{path.relative_to(settings.BASE_DIR)}:{node.lineno}")
    assert plain == []


def test_a_vanished_key_refuses_the_submission(team, bob_membership, make_key, monkeypatch):
    monkeypatch.setattr(queue, "enqueue", lambda *args: None)
    key = make_key(team)
    ApiKey.objects.filter(pk=key.pk).update(is_default=False)
    gone = make_key(team)
    gone_pk = gone.pk
    gone.delete()
    gone.pk = gone_pk
    with pytest.raises(services.SubmissionRefused, match="no longer exists"):
        submit(bob_membership, gone)
    assert not Generation.objects.filter(api_key_id=gone_pk).exists()
    assert submit(bob_membership, key).status == Status.QUEUED


def test_a_role_change_and_a_budget_change_take_the_team_in_one_order(monkeypatch, team, cast):
    """Both lock the workspace before its memberships: before, a demotion held the member and
    waited for the other owners while a cap change held the owners and waited for the member."""
    alice = Membership.objects.get(user=cast["alice"], workspace=team)
    adam = Membership.objects.get(user=cast["adam"], workspace=team)
    Membership.objects.filter(pk=adam.pk).update(role=Role.OWNER)
    adam.refresh_from_db()
    counting, let_count = pause_at(monkeypatch, accounts_services, "_owner_count")

    demotion = Step(
        "demotion",
        lambda: accounts_services.change_role(actor=alice, target=adam, role=Role.ADMIN),
    )
    demotion.start()
    assert counting.wait(10)  # the member to demote is locked
    caps = Step(
        "caps",
        lambda: budget.update_budget(
            actor=cast["alice"], workspace=team, member_caps={alice.pk: 100, adam.pk: 300}
        ),
    )
    caps.start()
    blocked_or_done(caps)
    let_count.set()
    for step in (demotion, caps):
        step.join(30)
        assert not step.is_alive(), f"{step.name} is still waiting"
    assert {s.name: repr(s.error) for s in (demotion, caps) if s.error} == {}
    adam.refresh_from_db()
    alice.refresh_from_db()
    assert (adam.role, adam.monthly_cap_credits, alice.monthly_cap_credits) == (
        Role.ADMIN,
        300,
        100,
    )
