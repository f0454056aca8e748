"""The budget page (owners and admins), the budget service, and warnings e-mailed once."""

from datetime import UTC, datetime

import pytest
import time_machine
from django.core import mail
from django.urls import reverse

from accounts.models import AuditEntry, Membership, Workspace
from generations import budget
from generations.models import BudgetWarning, CreditEntry, Generation, Status

from .conftest import make_key

URL = "/workspace/budget/"
NOW = datetime(2026, 5, 14, 12, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _clock():
    with time_machine.travel(NOW, tick=False):
        yield


def test_the_url_is_named():
    assert reverse("workspace_budget") == URL


@pytest.mark.parametrize(
    ("who", "status"),
    [("alice", 200), ("adam", 200), ("bob", 403), ("vera", 403)],
)
def test_role_matrix(cast, team, login_as, who, status):
    client = login_as(cast[who], team)
    assert client.get(URL).status_code == status
    response = client.post(URL, {"monthly_budget_credits": "500"})
    assert response.status_code in ({200: 302}.get(status, status),)
    team.refresh_from_db()
    assert team.monthly_budget_credits == (500 if status == 200 else None)
    if status == 403:
        assert "Only owners and admins" in response.content.decode()


def test_anonymous_is_sent_to_log_in(client):
    response = client.get(URL)
    assert response.status_code == 302
    assert reverse("login") in response["Location"]


def test_a_stranger_only_ever_sees_their_own_workspace(cast, team, login_as):
    client = login_as(cast["charlie"])
    response = client.get(URL)
    assert response.status_code == 200
    assert "Acme Films" not in response.content.decode()
    client.post(URL, {"monthly_budget_credits": "7"})
    team.refresh_from_db()
    assert team.monthly_budget_credits is None


def spend(workspace, user, key, credits, *, status=Status.SUCCESS):
    generation = Generation.objects.create(
        workspace=workspace,
        creator=user,
        api_key=key,
        prompt="spend",
        status=status,
        estimated_credits=credits,
        credits_used=credits,
        task_id=f"task_{Generation.objects.count()}",
    )
    CreditEntry.objects.create(
        generation=generation,
        workspace=workspace,
        user=user,
        api_key=key,
        model=generation.model,
        kind="reserve",
        credits=-credits,
        dollars_per_credit=generation.dollars_per_credit,
    )
    return generation


@pytest.fixture
def key(team):
    return make_key(team, "Main", "sk-budget-test-0001", is_default=True)


def test_page_shows_use_and_caps_and_saves_them_with_an_audit_trail(cast, team, key, login_as):
    spend(team, cast["bob"], key, 300)
    spend(team, cast["alice"], key, 100)
    bob = Membership.objects.get(user=cast["bob"], workspace=team)
    adam = Membership.objects.get(user=cast["adam"], workspace=team)
    client = login_as(cast["adam"], team)
    page = client.get(URL).content.decode()
    assert "400 credits" in page and "bob@example.com" in page

    response = client.post(
        URL,
        {"monthly_budget_credits": "1000", f"cap_{bob.pk}": "250", f"cap_{adam.pk}": ""},
    )
    assert response.status_code == 302
    team.refresh_from_db()
    bob.refresh_from_db()
    assert team.monthly_budget_credits == 1000 and bob.monthly_cap_credits == 250
    entries = {e.action: e for e in AuditEntry.objects.filter(workspace=team)}
    assert entries["budget.changed"].actor == cast["adam"]
    assert entries["budget.changed"].data == {"old_credits": None, "new_credits": 1000}
    assert entries["budget.member_cap_changed"].target == "bob@example.com"
    assert entries["budget.member_cap_changed"].data == {"old_credits": None, "new_credits": 250}
    page = client.get(URL).content.decode()
    assert "(40%)" in page


@pytest.mark.parametrize("bad", ["-5", "lots", "1.5", "99999999999"])
def test_bad_input_is_explained_and_changes_nothing(cast, team, login_as, bad):
    team.monthly_budget_credits = 900
    team.save()
    bob = Membership.objects.get(user=cast["bob"], workspace=team)
    client = login_as(cast["alice"], team)
    for data in ({"monthly_budget_credits": bad}, {f"cap_{bob.pk}": bad}):
        response = client.post(URL, data)
        assert response.status_code == 400
        assert 'class="error"' in response.content.decode()
    team.refresh_from_db()
    bob.refresh_from_db()
    assert team.monthly_budget_credits == 900 and bob.monthly_cap_credits is None
    assert not AuditEntry.objects.exists()


def test_the_service_refuses_a_cap_for_someone_of_another_workspace(cast, team):
    charlie_personal = Membership.objects.get(user=cast["charlie"])
    with pytest.raises(budget.BudgetError, match="not a member"):
        budget.update_budget(
            actor=cast["alice"], workspace=team, member_caps={charlie_personal.pk: 5}
        )
    charlie_personal.refresh_from_db()
    assert charlie_personal.monthly_cap_credits is None


def test_spent_by_member_agrees_with_the_lifecycle_definition(cast, team, key):
    spend(team, cast["bob"], key, 300)
    spend(team, cast["bob"], key, 50, status=Status.FAIL)
    spend(team, cast["alice"], key, 100)
    Generation.objects.create(
        workspace=team, creator=cast["adam"], api_key=key, prompt="queued", estimated_credits=70
    )
    by_member = budget.spent_by_member(workspace=team)
    for name in ("alice", "adam", "bob", "vera"):
        user = cast[name]
        assert by_member.get(user.pk, 0) == budget.spent(workspace=team, user=user)
    assert by_member[cast["adam"].pk] == 70


def test_budget_page_queries_do_not_grow_with_members(
    cast, team, key, login_as, make_user, django_assert_max_num_queries
):
    from accounts.models import Role

    for n in range(20):
        Membership.objects.create(
            user=make_user(f"m{n}@example.com"), workspace=team, role=Role.MEMBER
        )
    client = login_as(cast["alice"], team)
    client.get(URL)
    with django_assert_max_num_queries(12):
        assert client.get(URL).status_code == 200


# --- warnings -------------------------------------------------------------------------------


@pytest.fixture
def budgeted(cast, team, key):
    Workspace.objects.filter(pk=team.pk).update(monthly_budget_credits=1000)
    team.refresh_from_db()
    return team


def test_warnings_are_emailed_once_per_threshold_to_owners_only(cast, budgeted, key):
    spend(budgeted, cast["bob"], key, 799)
    assert budget.send_due_budget_warnings() == 0
    assert mail.outbox == []

    spend(budgeted, cast["bob"], key, 1)  # 800 of 1000: 80%
    assert budget.send_due_budget_warnings() == 1
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["alice@example.com"]
    assert "80%" in mail.outbox[0].subject
    assert "800 of its 1000 credits" in mail.outbox[0].body
    assert "/workspace/budget/" in mail.outbox[0].body

    # Again, and again after more spending below 100%: nothing new.
    assert budget.send_due_budget_warnings() == 0
    spend(budgeted, cast["bob"], key, 150)
    assert budget.send_due_budget_warnings() == 0
    assert len(mail.outbox) == 1

    spend(budgeted, cast["alice"], key, 50)  # 1000: 100%
    assert budget.send_due_budget_warnings() == 1
    assert len(mail.outbox) == 2 and "whole monthly budget" in mail.outbox[1].subject
    assert budget.send_due_budget_warnings() == 0
    assert len(mail.outbox) == 2
    assert set(BudgetWarning.objects.values_list("threshold", flat=True)) == {80, 100}


def test_jumping_past_both_thresholds_sends_one_email(cast, budgeted, key):
    spend(budgeted, cast["bob"], key, 1200)
    assert budget.check_budget_warnings(workspace=budgeted) == [80, 100]
    assert len(mail.outbox) == 1 and "whole monthly budget" in mail.outbox[0].subject
    assert budget.check_budget_warnings(workspace=budgeted) == []
    assert len(mail.outbox) == 1


def test_a_new_month_warns_again(cast, budgeted, key):
    spend(budgeted, cast["bob"], key, 900)
    budget.send_due_budget_warnings()
    assert len(mail.outbox) == 1
    with time_machine.travel(datetime(2026, 6, 2, 9, tzinfo=UTC), tick=False):
        assert budget.send_due_budget_warnings() == 0  # June has no spending yet
        spend(budgeted, cast["bob"], key, 850)
        assert budget.send_due_budget_warnings() == 1
    assert len(mail.outbox) == 2
    assert [w.month.month for w in BudgetWarning.objects.order_by("month")] == [5, 6]


def test_a_failed_send_is_retried_by_the_next_sweep(cast, budgeted, key, monkeypatch):
    spend(budgeted, cast["bob"], key, 850)

    def broken(*args, **kwargs):
        raise OSError("mail server down")

    monkeypatch.setattr(budget, "send_mail", broken)
    assert budget.send_due_budget_warnings() == 0
    assert not BudgetWarning.objects.exists()
    monkeypatch.undo()
    assert budget.send_due_budget_warnings() == 1
    assert len(mail.outbox) == 1


def test_lowering_the_budget_below_spending_warns_at_once(
    cast, team, key, login_as, django_capture_on_commit_callbacks
):
    spend(team, cast["bob"], key, 500)
    client = login_as(cast["alice"], team)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(URL, {"monthly_budget_credits": "400"})
    assert len(mail.outbox) == 1 and "whole monthly budget" in mail.outbox[0].subject


def test_the_sweep_is_scheduled(db):
    from django_q.models import Schedule

    schedule = Schedule.objects.get(name="budget warnings")
    assert schedule.func == "generations.tasks.send_due_budget_warnings"
    assert schedule.minutes == 5


def test_a_mail_server_down_does_not_break_saving_the_budget(
    cast, team, key, login_as, monkeypatch, django_capture_on_commit_callbacks
):
    spend(team, cast["bob"], key, 500)

    def broken(*args, **kwargs):
        raise OSError("mail server down")

    monkeypatch.setattr(budget, "send_mail", broken)
    client = login_as(cast["alice"], team)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(URL, {"monthly_budget_credits": "400"})
    assert response.status_code == 302
    team.refresh_from_db()
    assert team.monthly_budget_credits == 400
    assert not BudgetWarning.objects.exists()  # the sweep will send it
    monkeypatch.undo()
    assert budget.send_due_budget_warnings() == 2  # 80% and 100%, in one e-mail
    assert len(mail.outbox) == 1
