"""Each rule of the studio exists once: these tests fail if a second copy appears and drifts."""

import ast
import importlib
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

import kinovi
from accounts.models import ApiKey, Membership, Role
from generations import budget, explain, forms, models, queue, selectors, services, vendor
from generations.models import CreditEntry, Generation, Status
from generations.views import detail as detail_views

ROOT = Path(settings.BASE_DIR)
APPS = [
    "accounts",
    "generations",
    "kinovi",
    "kinovi_site",
    "sandbox",
    "mediakit",
    "api",
    "materials",
]


def _functions():
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    yield path.relative_to(ROOT), node


def test_no_function_in_the_apps_is_over_60_lines():
    long = [
        f"{path}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for path, node in _functions()
        if node.end_lineno - node.lineno + 1 > 60
    ]
    assert long == []


def test_tasks_holds_entry_points_only():
    assert len((ROOT / "generations" / "tasks.py").read_text().splitlines()) < 150


def test_every_job_path_resolves_old_ones_included():
    old = [
        "generations.notifications.send_finished_emails",
        "generations.budget.send_due_budget_warnings",
    ]
    paths = [getattr(queue, name) for name in dir(queue) if name.isupper()]
    paths = [p for p in paths if isinstance(p, str) and p.startswith("generations.")]
    paths += [func for func, _ in queue.SCHEDULES.values()] + old
    assert len(paths) > 8
    for path in paths:
        module, name = path.rsplit(".", 1)
        assert callable(getattr(importlib.import_module(module), name)), path


def test_the_vendor_vocabulary_is_kinovis():
    assert models.Model is kinovi.Model
    assert models.AspectRatio is kinovi.AspectRatio
    assert models.Mode is kinovi.Mode
    assert set(kinovi.STATUSES) <= set(Status.values)


def test_partial_indexes_use_the_named_status_groups():
    conditions = {index.name: index.condition for index in Generation._meta.indexes}
    assert dict(conditions["gen_due"].children)["status__in"] == list(models.UNFINISHED_STATUSES)
    in_flight = dict(conditions["gen_key_in_flight"].children)["status__in"]
    assert in_flight == list(models.IN_FLIGHT_STATUSES)


def test_templates_name_no_status_group():
    """Groups of statuses are the model's (is_on_its_way, is_doubtful, actions_for)."""
    for path in (ROOT / "templates").rglob("*.html"):
        text = path.read_text()
        assert ' or status == "' not in text and ' or g.status == "' not in text, path


def test_the_batch_limit_is_one_number(db):
    form = forms.BatchForm(
        {"kind": "variations", "prompt": "A fox", "variations": services.MAX_BATCH + 1},
        workspace=None,
    )
    assert not form.is_valid() and f"at most {services.MAX_BATCH}" in str(form.errors)
    assert forms.BatchForm.base_fields["variations"].max_value == services.MAX_BATCH


# --- who may do what: one predicate for the page and the service --------------------------------


@pytest.fixture
def key(team):
    made = ApiKey(workspace=team, label="Main", is_default=True)
    made.secret = "sk_test_rules_0000"
    made.status = ApiKey.Status.VERIFIED
    made.save()
    return made


ACTIONS = {
    "hide": ("generation_hide", services.hide),
    "cancel": ("generation_cancel", services.cancel),
    "retry": ("generation_retry", services.retry),
    "unhide": ("generation_unhide", services.unhide),
}


@pytest.mark.parametrize("status", Status.values)
@pytest.mark.parametrize("who", ["alice", "bob", "vera", "charlie_member"])
def test_the_page_offers_exactly_what_the_service_does(
    status, who, cast, team, key, login_as, make_user
):
    bob = cast["bob"]
    if who == "charlie_member":
        user = make_user("carol@example.com")
        Membership.objects.create(user=user, workspace=team, role=Role.MEMBER)
    else:
        user = cast[who]
    membership = Membership.objects.get(user=user, workspace=team)
    generation = Generation.objects.create(
        workspace=team, creator=bob, api_key=key, prompt="p", status=status, estimated_credits=200
    )
    html = login_as(user, team).get(reverse("generation_detail", args=[generation.public_id]))
    html = html.content.decode()
    for name, (url_name, operation) in ACTIONS.items():
        offered = reverse(url_name, args=[generation.public_id]) in html
        try:
            operation(generation=Generation.objects.get(pk=generation.pk), membership=membership)
        except (services.ActionRefused, services.SubmissionRefused):
            accepted = False
        else:
            accepted = True
        assert offered == accepted, (name, status, who)
        Generation.objects.filter(pk=generation.pk).update(status=status, hidden=False)


def test_the_recheck_button_needs_a_task_id(cast, team, key, login_as):
    unknown = Generation.objects.create(
        workspace=team,
        creator=cast["bob"],
        api_key=key,
        prompt="p",
        status=Status.UNKNOWN,
        estimated_credits=200,
    )
    url = reverse("generation_detail", args=[unknown.public_id])
    recheck = reverse("generation_recheck", args=[unknown.public_id])
    assert recheck not in login_as(cast["bob"], team).get(url).content.decode()
    with pytest.raises(services.ActionRefused):
        services.recheck(generation=unknown)
    Generation.objects.filter(pk=unknown.pk).update(task_id="task_known")
    assert recheck in login_as(cast["bob"], team).get(url).content.decode()


# --- a usable key -------------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["verified", "unverified", "invalid", "revoked"])
def test_a_usable_key_is_decided_once(state, cast, team, key, login_as):
    from django.utils import timezone

    if state == "revoked":
        key.revoked_at = timezone.now()
    else:
        key.status = state
    key.save()
    usable = state in ("verified", "unverified")
    assert key.is_usable is usable
    assert ApiKey.objects.usable().filter(pk=key.pk).exists() is usable
    assert (key in forms.usable_keys(team)) is usable
    bob = Membership.objects.get(user=cast["bob"], workspace=team)
    try:
        services.submit(
            membership=bob,
            api_key=key,
            prompt="p",
            model="seedance-20",
            duration=5,
            aspect_ratio="16:9",
            mode="keyframe",
            upscale_4k=False,
        )
    except services.SubmissionRefused:
        accepted = False
    else:
        accepted = True
    assert accepted is usable
    Generation.objects.all().delete()
    gallery = login_as(cast["bob"], team).get(reverse("home"))
    assert gallery.context["has_keys"] is usable


# --- one month ----------------------------------------------------------------------------------


def test_the_budget_and_the_usage_page_agree_about_a_month(cast, team, key, login_as):
    import datetime

    import time_machine

    month = datetime.date(2026, 3, 1)
    start, end, _ = budget.month_bounds(month)
    edge = [start - datetime.timedelta(minutes=1), start, end - datetime.timedelta(minutes=1)]
    for made in edge:
        generation = Generation.objects.create(
            workspace=team,
            creator=cast["bob"],
            api_key=key,
            prompt="p",
            status=Status.SUCCESS,
            estimated_credits=100,
            created_at=made,
        )
        # The reserve is written a moment later: across the month's end for the last one.
        CreditEntry.objects.create(
            generation=generation,
            workspace=team,
            user=cast["bob"],
            api_key=key,
            model=generation.model,
            kind="reserve",
            credits=-100,
            dollars_per_credit=generation.dollars_per_credit,
            created_at=made + datetime.timedelta(minutes=2),
        )
    with time_machine.travel(end - datetime.timedelta(seconds=30), tick=False):
        spent = budget.spent(workspace=team)
        page = login_as(cast["alice"], team).get(reverse("usage")).context
    assert spent == 200
    assert page["total_credits"] == spent
    assert selectors.usage(team, month)["total_credits"] == spent


# --- Kinovi's refusals: one table, read by code ---------------------------------------------------


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (kinovi.AuthenticationFailed("no", status_code=401), "key"),
        (kinovi.AccessNotEnabled("no", status_code=403), "key"),
        (kinovi.InsufficientCredits("no", status_code=402), "credits"),
        (kinovi.InvalidRequest("no", status_code=400), "invalid"),
        (kinovi.KinoviUnavailable("no"), "unreachable"),
        (kinovi.UnknownOutcome("no"), "unknown"),
    ],
)
def test_every_refusal_the_studio_writes_is_explained_by_its_code(error, kind):
    refusal = vendor.refusal_for(error, attempts=3)
    generation = Generation(status=refusal.status, error_code=refusal.code, error_message="x")
    assert explain.explain_problem(generation)["kind"] == kind
    # The explanation does not depend on words in the stored message.
    generation.error_message = "moderation server key credit violat"
    assert explain.explain_problem(generation)["kind"] == kind


def test_a_backoff_after_a_429_is_explained_by_its_code():
    assert explain.explain_problem(Generation(status=Status.QUEUED, error_code="429"))
    assert explain.explain_problem(Generation(status=Status.QUEUED)) is None


def test_detail_refresh_follows_the_status_groups():
    for status in Status.values:
        generation = Generation(status=status)
        refresh = detail_views._refresh(generation)
        assert (refresh is not None) == (status in models.UNFINISHED_STATUSES), status
