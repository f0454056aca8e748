"""Every admin page renders with data; permissions; read-only money and status; actions."""

import csv
import io
import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import ApiKey, AuditEntry, Invitation, Membership, User, Workspace
from generations.models import (
    BudgetWarning,
    CreditEntry,
    Generation,
    Heartbeat,
    Price,
    Status,
    StatusEvent,
    WebhookDelivery,
)

from .conftest import CANARY_SECRET, grant


@pytest.fixture
def world(ledger, cast, team):
    """The ledger plus one of everything else the admin shows."""
    g6 = ledger.g["g6"]
    StatusEvent.objects.create(generation=g6, from_status="", to_status="queued", source="submit")
    StatusEvent.objects.create(
        generation=g6, from_status="generating", to_status="stalled", source="sweeper"
    )
    delivery = WebhookDelivery.objects.create(
        generation=g6,
        headers={"Content-Type": "application/json", "User-Agent": "Kinovi-Webhook/1"},
        body=json.dumps({"code": 200, "data": {"taskId": "task_other", "state": "success"}}),
        remote_addr="203.0.113.9",
    )
    Invitation.objects.create(
        workspace=team, email="newbie@example.com", token_hash="f" * 64, invited_by=cast["alice"]
    )
    AuditEntry.objects.create(
        actor=cast["alice"],
        workspace=team,
        action="member.role_changed",
        target="bob@example.com",
        data={"old_role": "viewer", "new_role": "member"},
    )
    BudgetWarning.objects.create(
        workspace=team,
        month=timezone.localdate().replace(day=1),
        threshold=80,
        used_credits=800,
        budget_credits=1000,
    )
    Heartbeat.objects.get_or_create(name="ticker", defaults={"beat_at": timezone.now()})
    future = Price.objects.create(
        model="seedance-20",
        credits_per_second=45,
        upscale_4k_credits_per_second=30,
        dollars_per_credit=Decimal("0.005"),
        valid_from=timezone.now() + timedelta(days=30),
    )
    return {"delivery": delivery, "future_price": future, **ledger.g}


def admin_urls(world, ledger, cast, team):
    price = Price.objects.filter(valid_from__lte=timezone.now()).first()
    objects = {
        "generations.generation": ledger.g["g6"],
        "generations.creditentry": ledger.r["r3"],
        "generations.webhookdelivery": world["delivery"],
        "generations.price": price,
        "generations.budgetwarning": BudgetWarning.objects.get(),
        "generations.heartbeat": Heartbeat.objects.first(),
        "accounts.user": cast["alice"],
        "accounts.workspace": team,
        "accounts.membership": Membership.objects.filter(workspace=team).first(),
        "accounts.invitation": Invitation.objects.get(),
        "accounts.apikey": ledger.k1,
        "accounts.auditentry": AuditEntry.objects.first(),
    }
    for label, obj in objects.items():
        app, model = label.split(".")
        yield reverse(f"admin:{app}_{model}_changelist")
        yield reverse(f"admin:{app}_{model}_change", args=[obj.pk])
    yield reverse("admin:accounts_user_add")
    yield reverse("admin:generations_price_add")
    yield reverse("admin:generations_price_change", args=[world["future_price"].pk])


def test_every_admin_page_renders_for_a_superuser_without_secrets(
    world, ledger, cast, team, superuser, login_as
):
    client = login_as(superuser)
    ciphertext = ApiKey.objects.get(pk=ledger.k1.pk).secret_ciphertext
    pages = [reverse("admin:index"), *admin_urls(world, ledger, cast, team)]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        assert CANARY_SECRET not in html, url
        assert ciphertext not in html, url
        assert "f" * 64 not in html, url  # the invitation's token hash
    assert len(pages) == 28


def test_the_key_page_shows_mask_status_use_in_flight_and_limit(ledger, superuser, login_as):
    client = login_as(superuser)
    html = client.get(reverse("admin:accounts_apikey_changelist")).content.decode()
    assert "••••9c" in html or "••••" + CANARY_SECRET[-4:] in html
    keys = client.get(reverse("admin:accounts_apikey_changelist")).context["cl"].result_list
    in_flight = {k.label: k._in_flight for k in keys}
    # K1: g9 unknown (g10 rejected, others finished); K3: g5 unknown and g6 stalled.
    assert in_flight == {"Main": 1, "Second": 0, "Zeta key": 2}
    detail = client.get(reverse("admin:accounts_apikey_change", args=[ledger.k1.pk]))
    html = detail.content.decode()
    assert "secret_ciphertext" not in html and "Verified" in html
    assert 'name="concurrency_limit"' in html and 'name="label"' not in html


def test_a_key_limit_change_is_audited(ledger, superuser, login_as):
    client = login_as(superuser)
    url = reverse("admin:accounts_apikey_change", args=[ledger.k1.pk])
    response = client.post(url, {"concurrency_limit": "5"})
    assert response.status_code == 302
    key = ApiKey.objects.get(pk=ledger.k1.pk)
    assert key.concurrency_limit == 5 and key.secret == CANARY_SECRET
    entry = AuditEntry.objects.get(action="key.concurrency_changed")
    assert entry.data == {"old_limit": 3, "new_limit": 5} and CANARY_SECRET not in entry.target


# --- permissions ----------------------------------------------------------------------------


def test_staff_without_permissions_cannot_see_ledger_keys_or_report(ledger, staff, login_as):
    client = login_as(staff)
    index = client.get(reverse("admin:index")).content.decode()
    assert "Credit entries" not in index and "Api keys" not in index
    assert reverse("admin:generations_credit_report") not in index
    for url in [
        reverse("admin:generations_creditentry_changelist"),
        reverse("admin:generations_creditentry_change", args=[ledger.r["r1"].pk]),
        reverse("admin:accounts_apikey_changelist"),
        reverse("admin:accounts_apikey_change", args=[ledger.k1.pk]),
        reverse("admin:generations_credit_report"),
        reverse("admin:generations_credit_report_csv", args=["workspace"]),
    ]:
        assert client.get(url).status_code == 403, url


def test_the_report_needs_view_creditentry_and_nothing_more(ledger, staff, login_as):
    grant(staff, "generations.view_creditentry")
    client = login_as(staff)
    assert client.get(reverse("admin:generations_credit_report")).status_code == 200
    index = client.get(reverse("admin:index")).content.decode()
    assert reverse("admin:generations_credit_report") in index
    assert client.get(reverse("admin:accounts_apikey_changelist")).status_code == 403


def test_a_signed_in_non_staff_user_is_sent_to_the_admin_login(ledger, cast, login_as):
    response = login_as(cast["alice"]).get(reverse("admin:generations_credit_report"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


@pytest.mark.parametrize("who", ["superuser", "staff_with_all_ledger_perms"])
def test_the_ledger_refuses_add_change_and_delete(ledger, superuser, staff, login_as, who):
    user = superuser
    if who != "superuser":
        user = grant(
            staff,
            "generations.view_creditentry",
            "generations.add_creditentry",
            "generations.change_creditentry",
            "generations.delete_creditentry",
        )
    client = login_as(user)
    entry = ledger.r["r1"]
    change = reverse("admin:generations_creditentry_change", args=[entry.pk])
    assert client.get(reverse("admin:generations_creditentry_add")).status_code == 403
    assert client.post(change, {"credits": "0", "kind": "refund"}).status_code == 403
    delete = reverse("admin:generations_creditentry_delete", args=[entry.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    bulk = client.post(
        reverse("admin:generations_creditentry_changelist"),
        {"action": "delete_selected", "_selected_action": [entry.pk], "post": "yes"},
    )
    assert bulk.status_code in (200, 302)
    entry.refresh_from_db()
    assert entry.credits == -200 and entry.kind == "reserve"
    assert CreditEntry.objects.count() == 11
    page = client.get(change).content.decode()
    assert 'name="credits"' not in page and 'type="submit"' not in page.split('id="content"')[1]


def test_the_ledger_list_shows_the_total_of_the_filtered_rows(
    ledger, superuser, login_as, django_assert_max_num_queries
):
    client = login_as(superuser)
    url = reverse("admin:generations_creditentry_changelist")
    client.get(url)
    with django_assert_max_num_queries(12):
        response = client.get(url, {"kind": "reserve", "workspace__id__exact": ledger.acme.pk})
    # Acme's reserves over all time: r1, r2, r4, r9 and the February g8 reserve.
    assert response.context_data["ledger_totals"]["credits"] == -1744
    assert response.context_data["ledger_totals"]["dollars"] == Decimal("-8.48")
    assert "-$8.48" in response.content.decode()
    everything = client.get(url).context_data["ledger_totals"]
    assert everything["credits"] == -1852 - 60 - 200


# --- generations ----------------------------------------------------------------------------


def test_generations_are_read_only(world, superuser, login_as):
    client = login_as(superuser)
    g = world["g6"]
    url = reverse("admin:generations_generation_change", args=[g.pk])
    page = client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    # Inlines: status events, ledger rows, webhook deliveries; no token hash anywhere.
    assert "stalled" in html and "sweeper" in html and "203.0.113.9" in html
    assert "callback_token_hash" not in html and 'name="status"' not in html
    # The e-mail job's claim is shown, never edited by hand.
    assert "Finished e-mail sent at" in html and 'name="finished_email_sent_at"' not in html
    response = client.post(
        url, {"status": "success", "credits_used": "1", "estimated_credits": "1"}
    )
    assert response.status_code == 403
    assert client.get(reverse("admin:generations_generation_add")).status_code == 403
    delete = reverse("admin:generations_generation_delete", args=[g.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    g.refresh_from_db()
    assert g.status == Status.STALLED and g.estimated_credits == 200


def test_generation_list_filters_search_and_query_count(
    world, superuser, login_as, django_assert_max_num_queries
):
    client = login_as(superuser)
    url = reverse("admin:generations_generation_changelist")
    client.get(url)
    with django_assert_max_num_queries(12):
        response = client.get(url)
    assert len(response.context_data["cl"].result_list) == 10
    stuck = client.get(url, {"status__exact": "stalled"}).context_data["cl"].result_list
    assert [g.pk for g in stuck] == [world["g6"].pk]
    found = client.get(url, {"q": "task_g2"}).context_data["cl"].result_list
    assert [g.pk for g in found] == [world["g2"].pk]
    by_mail = client.get(url, {"q": "zoe@example.com"}).context_data["cl"].result_list
    assert {g.pk for g in by_mail} == {world[n].pk for n in ("g4", "g5", "g6")}
    assert (
        client.get(url, {"created_at__year": "2026", "created_at__month": "3"}).status_code == 200
    )


def test_export_selected_as_csv(world, superuser, login_as):
    client = login_as(superuser)
    chosen = [world["g2"].pk, world["g4"].pk]
    response = client.post(
        reverse("admin:generations_generation_changelist"),
        {"action": "export_csv", "_selected_action": chosen},
    )
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    lines = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert sorted((x["task_id"], x["status"], x["estimated_credits"]) for x in lines) == [
        ("task_g2", "success", "560"),
        ("task_g4", "fail", "600"),
    ]
    assert CANARY_SECRET not in response.content.decode()


def test_recheck_asks_again_or_explains_why_not(
    world, superuser, login_as, django_capture_on_commit_callbacks
):
    client = login_as(superuser)
    url = reverse("admin:generations_generation_changelist")
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(
            url,
            {"action": "recheck", "_selected_action": [world["g6"].pk, world["g5"].pk]},
            follow=True,
        )
    text = response.content.decode()
    assert "Asked Kinovi again about 1 generation(s)." in text
    assert "never answered the request" in text  # g5: unknown without a task id
    assert len(callbacks) == 1  # one poll enqueued, for g6
    entry = AuditEntry.objects.get(action="generation.rechecked")
    assert entry.target == str(world["g6"].public_id) and entry.actor == superuser


def test_recheck_needs_the_change_permission(world, staff, login_as):
    grant(staff, "generations.view_generation")
    client = login_as(staff)
    response = client.get(reverse("admin:generations_generation_changelist"))
    actions = [name for name, _ in response.context_data["action_form"].fields["action"].choices]
    assert "recheck" not in actions and "export_csv" in actions


# --- webhook deliveries ---------------------------------------------------------------------


def test_a_delivery_shows_raw_body_and_headers_and_can_be_processed_again(
    world, superuser, login_as
):
    client = login_as(superuser)
    delivery = world["delivery"]
    html = client.get(
        reverse("admin:generations_webhookdelivery_change", args=[delivery.pk])
    ).content.decode()
    assert "Kinovi-Webhook/1" in html and "task_other" in html
    response = client.post(
        reverse("admin:generations_webhookdelivery_changelist"),
        {"action": "process_again", "_selected_action": [delivery.pk]},
        follow=True,
    )
    assert "Sent 1 delivery(ies) through confirmation again." in response.content.decode()
    delivery.refresh_from_db()
    # The same judging path as a new delivery: it names another task, so it is rejected.
    assert delivery.outcome == WebhookDelivery.Outcome.REJECTED
    assert "task_other" in delivery.error
    assert AuditEntry.objects.filter(action="webhook.reprocessed").count() == 1


# --- prices ---------------------------------------------------------------------------------


def price_form(**overrides):
    data = {
        "model": "seedance2-fast",
        "output_resolution": "720p",
        "credits_per_second": "30",
        "upscale_4k_credits_per_second": "28",
        "reference_video_credits_per_second": "6",
        "dollars_per_credit": "0.005",
        "valid_from_0": (timezone.now() + timedelta(days=1)).strftime("%Y-%m-%d"),
        "valid_from_1": "00:00:00",
    }
    data.update(overrides)
    return data


def test_a_superuser_adds_a_price_from_a_date_and_old_estimates_stay(ledger, superuser, login_as):
    from generations import pricing

    client = login_as(superuser)
    response = client.post(reverse("admin:generations_price_add"), price_form())
    assert response.status_code == 302
    price = Price.objects.get(model="seedance2-fast", credits_per_second=30)
    entry = AuditEntry.objects.get(action="price.added")
    assert entry.actor == superuser and entry.data["credits_per_second"] == 30
    # Stored estimates do not move; new generations after valid_from get the new rate.
    assert Generation.objects.get(pk=ledger.g["g2"].pk).estimated_credits == 560
    later = price.valid_from + timedelta(hours=1)
    assert (
        pricing.estimate(model="seedance2-fast", duration=10, upscale_4k=False, at=later).credits
        == 300
    )
    assert pricing.estimate(model="seedance2-fast", duration=10, upscale_4k=False).credits == 280


def test_a_price_cannot_start_in_the_past(superuser, login_as):
    client = login_as(superuser)
    before = Price.objects.count()
    response = client.post(
        reverse("admin:generations_price_add"),
        price_form(valid_from_0="2026-01-02"),
    )
    assert response.status_code == 200
    assert "cannot start in the past" in response.content.decode()
    assert Price.objects.count() == before and not AuditEntry.objects.exists()


def test_a_price_in_effect_cannot_be_edited_or_deleted_but_a_future_one_can(
    world, superuser, login_as
):
    client = login_as(superuser)
    old = Price.objects.filter(valid_from__lte=timezone.now(), output_resolution="720p").first()
    url = reverse("admin:generations_price_change", args=[old.pk])
    assert client.post(url, price_form(credits_per_second="1")).status_code == 403
    delete = reverse("admin:generations_price_delete", args=[old.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    old.refresh_from_db()
    assert old.credits_per_second in (40, 28)

    future = world["future_price"]
    url = reverse("admin:generations_price_change", args=[future.pk])
    response = client.post(url, price_form(model="seedance-20", credits_per_second="44"))
    assert response.status_code == 302
    future.refresh_from_db()
    assert future.credits_per_second == 44
    assert (
        "credits_per_second"
        in AuditEntry.objects.get(action="price.changed").data["changed_fields"]
    )


def test_prices_are_for_superusers_only(staff, login_as):
    grant(
        staff,
        "generations.view_price",
        "generations.add_price",
        "generations.change_price",
        "generations.delete_price",
    )
    client = login_as(staff)
    assert client.get(reverse("admin:generations_price_changelist")).status_code == 403
    assert client.post(reverse("admin:generations_price_add"), price_form()).status_code == 403
    assert not Price.objects.filter(credits_per_second=30).exists()


# --- people ---------------------------------------------------------------------------------


def test_adding_a_user_in_the_admin_gives_them_a_personal_workspace(superuser, login_as):
    client = login_as(superuser)
    response = client.post(
        reverse("admin:accounts_user_add"),
        {
            "email": "ops-made@example.com",
            "usable_password": "true",
            "password1": "a long enough passphrase 9",
            "password2": "a long enough passphrase 9",
        },
    )
    assert response.status_code == 302
    user = User.objects.get(email="ops-made@example.com")
    assert user.check_password("a long enough passphrase 9")
    assert Membership.objects.get(user=user).workspace.is_personal


def test_staff_budget_and_cap_edits_are_audited(cast, team, superuser, login_as):
    client = login_as(superuser)
    response = client.post(
        reverse("admin:accounts_workspace_change", args=[team.pk]),
        {
            "name": team.name,
            "monthly_budget_credits": "2500",
            "memberships-TOTAL_FORMS": "4",
            "memberships-INITIAL_FORMS": "4",
            "memberships-MIN_NUM_FORMS": "0",
            "memberships-MAX_NUM_FORMS": "1000",
            **{
                f"memberships-{i}-id": m.pk
                for i, m in enumerate(Membership.objects.filter(workspace=team).order_by("pk"))
            },
            **{f"memberships-{i}-workspace": team.pk for i in range(4)},
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    team.refresh_from_db()
    assert team.monthly_budget_credits == 2500
    assert AuditEntry.objects.get(action="budget.changed").actor == superuser

    bob = Membership.objects.get(user=cast["bob"], workspace=team)
    response = client.post(
        reverse("admin:accounts_membership_change", args=[bob.pk]), {"monthly_cap_credits": "300"}
    )
    assert response.status_code == 302
    bob.refresh_from_db()
    assert bob.monthly_cap_credits == 300 and bob.role == "member"
    assert AuditEntry.objects.get(action="budget.member_cap_changed").target == "bob@example.com"


def test_the_audit_trail_is_read_only(world, superuser, login_as):
    client = login_as(superuser)
    entry = AuditEntry.objects.get(action="member.role_changed")
    url = reverse("admin:accounts_auditentry_change", args=[entry.pk])
    assert client.post(url, {"action": "nothing.happened"}).status_code == 403
    assert client.get(reverse("admin:accounts_auditentry_add")).status_code == 403
    listing = client.get(reverse("admin:accounts_auditentry_changelist")).content.decode()
    assert "member.role_changed" in listing and "alice@example.com" in listing
    entry.refresh_from_db()
    assert entry.action == "member.role_changed"
    assert Workspace.objects.filter(pk=entry.workspace_id).exists()


# --- resolving an unknown outcome -----------------------------------------------------------


def test_an_operator_resolves_an_unknown_outcome_as_never_created(world, superuser, login_as):
    client = login_as(superuser)
    g5 = world["g5"]
    page = client.get(reverse("admin:generations_generation_change", args=[g5.pk]))
    url = reverse("admin:generations_generation_resolve", args=[g5.pk])
    assert url in page.content.decode()
    assert "reserve of 112 credits" in client.get(url).content.decode()

    response = client.post(url, {"never_created": "on"})
    assert response.status_code == 302
    g5.refresh_from_db()
    assert g5.status == Status.REJECTED
    kinds = sorted(CreditEntry.objects.filter(generation=g5).values_list("kind", "credits"))
    assert kinds == [("refund", 112), ("reserve", -112)]
    entry = AuditEntry.objects.get(action="generation.resolved")
    assert entry.data == {"task_id": "", "never_created": True}
    # Not unknown any more: no link, and the form refuses.
    page = client.get(reverse("admin:generations_generation_change", args=[g5.pk]))
    assert url not in page.content.decode()
    again = client.post(url, {"never_created": "on"})
    assert (
        again.status_code == 400
        and "Only a video whose outcome is unknown" in again.content.decode()
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "Give the task id from Kinovi, or tick"),
        ({"task_id": "task_x", "never_created": "on"}, "Give the task id from Kinovi, or tick"),
        ({"task_id": "task_g2"}, "already belongs to another video"),
    ],
)
def test_bad_resolutions_are_explained_and_change_nothing(
    world, superuser, login_as, data, message
):
    client = login_as(superuser)
    g5 = world["g5"]
    response = client.post(reverse("admin:generations_generation_resolve", args=[g5.pk]), data)
    assert response.status_code == 400
    assert message in response.content.decode()
    g5.refresh_from_db()
    assert g5.status == Status.UNKNOWN and g5.task_id is None
    assert not AuditEntry.objects.filter(action="generation.resolved").exists()


def test_resolving_needs_the_change_permission(world, staff, login_as):
    grant(staff, "generations.view_generation")
    client = login_as(staff)
    url = reverse("admin:generations_generation_resolve", args=[world["g5"].pk])
    assert client.post(url, {"never_created": "on"}).status_code == 403
    page = client.get(reverse("admin:generations_generation_change", args=[world["g5"].pk]))
    assert url not in page.content.decode()
    assert (
        client.get(reverse("admin:generations_generation_resolve", args=[999999])).status_code
        == 403
    )
