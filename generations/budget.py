"""Workspace budgets: the settings page, the one service that changes budgets and caps, and the
80% / 100% warning e-mails (sent once per month per workspace and threshold)."""

import logging
from types import EllipsisType

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Sum
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts.access import workspace_required
from accounts.models import Membership, Role, Workspace, log_action
from generations import services
from generations.models import BudgetWarning, CreditEntry, Generation

logger = logging.getLogger(__name__)

THRESHOLDS = (80, 100)
# PositiveIntegerField's ceiling on PostgreSQL; anything above it is a typo, not a budget.
MAX_CREDITS = 2_147_483_647


class BudgetError(Exception):
    """A refused budget change, with a message fit to show the user."""


def spent_by_member(*, workspace) -> dict[int, int]:
    """`services.spent_this_month(workspace=, user=)` for every member at once (two GROUP BY
    queries instead of two per member); a test holds the two definitions together."""
    this_month = Generation.objects.filter(
        workspace=workspace, created_at__gte=services.month_start()
    )
    held = (
        this_month.filter(status__in=services.HELD_STATUSES)
        .values("creator_id")
        .order_by()
        .annotate(total=Sum("estimated_credits"))
        .values_list("creator_id", "total")
    )
    moved = (
        CreditEntry.objects.filter(generation__in=this_month.values("pk"))
        .values("generation__creator_id")
        .order_by()
        .annotate(total=Sum("credits"))
        .values_list("generation__creator_id", "total")
    )
    spent: dict[int, int] = {}
    for user_id, total in held:
        spent[user_id] = spent.get(user_id, 0) + int(total)
    for user_id, total in moved:
        spent[user_id] = spent.get(user_id, 0) - int(total)
    return spent


def _check_amount(value, what: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise BudgetError(f"The {what} must be a whole number of credits, zero or more.")
    if value > MAX_CREDITS:
        raise BudgetError(f"The {what} is too large.")
    return value


@transaction.atomic
def update_budget(
    *,
    actor,
    workspace: Workspace,
    monthly_budget_credits: int | None | EllipsisType = ...,
    member_caps: dict[int, int | None] | None = None,
) -> Workspace:
    """Set the workspace's monthly budget (None: no budget) and members' caps (membership pk →
    credits or None). Only what is passed changes; every change is an audit entry.

    The caller checks the actor's right (the page: `can_manage_budget`; the admin: staff).
    The workspace row is locked, the same lock submissions take, so a submission never
    checks against a half-applied change.
    """
    locked = Workspace.objects.select_for_update().get(pk=workspace.pk)
    if monthly_budget_credits is not ...:
        new = _check_amount(monthly_budget_credits, "monthly budget")
        if new != locked.monthly_budget_credits:
            old = locked.monthly_budget_credits
            locked.monthly_budget_credits = new
            locked.save(update_fields=["monthly_budget_credits"])
            log_action(
                actor=actor,
                action="budget.changed",
                workspace=locked,
                target=locked.name,
                old_credits=old,
                new_credits=new,
            )
    if member_caps:
        members = {
            m.pk: m
            for m in Membership.objects.select_for_update()
            .select_related("user")
            .filter(workspace=locked, pk__in=list(member_caps))
        }
        for pk, cap in member_caps.items():
            membership = members.get(pk)
            if membership is None:
                raise BudgetError("That person is not a member of this workspace.")
            cap = _check_amount(cap, f"cap for {membership.user.email}")
            if cap == membership.monthly_cap_credits:
                continue
            old = membership.monthly_cap_credits
            membership.monthly_cap_credits = cap
            membership.save(update_fields=["monthly_cap_credits"])
            log_action(
                actor=actor,
                action="budget.member_cap_changed",
                workspace=locked,
                target=membership.user.email,
                old_credits=old,
                new_credits=cap,
            )
    workspace.monthly_budget_credits = locked.monthly_budget_credits
    # A lowered budget may already be crossed: warn now rather than at the next sweep.
    transaction.on_commit(lambda: _warn_now(locked))
    return locked


def _warn_now(workspace: Workspace) -> None:
    # The budget is saved already; a mail server that is down must not turn that into an
    # error page. Nothing was recorded as sent, so the 5-minute sweep tries again.
    try:
        check_budget_warnings(workspace=workspace)
    except Exception:
        logger.exception("budget warning not sent now; the sweep will retry")


# --- warnings -------------------------------------------------------------------------------


def _month_start():
    return timezone.localdate().replace(day=1)


def crossed_thresholds(*, used: int, budget: int | None) -> list[int]:
    if budget is None or used <= 0:
        return []
    return [t for t in THRESHOLDS if used * 100 >= t * budget]


def check_budget_warnings(*, workspace: Workspace) -> list[int]:
    """E-mail the owners when this month's spending crosses 80% or 100% of the budget, once.

    Returns the thresholds newly recorded. The row is written and the mail sent in one
    transaction: a failed send rolls the row back (retried by the next sweep), and a second
    process noticing the same crossing hits the unique constraint and sends nothing.
    """
    workspace = Workspace.objects.get(pk=workspace.pk)
    budget = workspace.monthly_budget_credits
    used = services.spent_this_month(workspace=workspace)
    crossed = crossed_thresholds(used=used, budget=budget)
    if not crossed:
        return []
    month = _month_start()
    already = set(
        BudgetWarning.objects.filter(workspace=workspace, month=month).values_list(
            "threshold", flat=True
        )
    )
    new = [t for t in crossed if t not in already]
    if not new:
        return []
    owners = list(
        Membership.objects.filter(
            workspace=workspace, role=Role.OWNER, user__is_active=True
        ).values_list("user__email", flat=True)
    )
    try:
        with transaction.atomic():
            for threshold in new:
                BudgetWarning.objects.create(
                    workspace=workspace,
                    month=month,
                    threshold=threshold,
                    used_credits=used,
                    budget_credits=budget,
                    recipients=owners,
                )
            # One e-mail about the highest threshold: jumping past both at once is one event.
            if owners:
                _send_warning(workspace, max(new), used, budget, owners)
    except IntegrityError:
        return []
    logger.info(
        "budget warning sent",
        extra={"workspace_id": workspace.pk, "thresholds": new, "recipients": len(owners)},
    )
    return new


def _send_warning(workspace, threshold: int, used: int, budget: int, owners: list[str]) -> None:
    context = {
        "workspace": workspace,
        "threshold": threshold,
        "used": used,
        "budget": budget,
        "percent": used * 100 // budget if budget else 100,
        "budget_url": f"{settings.SITE_URL}{reverse('workspace_budget')}",
    }
    if threshold >= 100:
        subject = f"{workspace.name} has used its whole monthly budget"
    else:
        subject = f"{workspace.name} has used {threshold}% of its monthly budget"
    send_mail(
        subject,
        render_to_string("generations/email/budget_warning.txt", context),
        None,
        owners,
    )


def send_due_budget_warnings() -> int:
    """The 5-minute sweep: check every workspace with a budget not yet fully warned this month."""
    fully_warned = BudgetWarning.objects.filter(
        workspace=OuterRef("pk"), month=_month_start(), threshold=max(THRESHOLDS)
    )
    sent = 0
    for workspace in Workspace.objects.filter(monthly_budget_credits__isnull=False).exclude(
        Exists(fully_warned)
    ):
        # One workspace's failure (its owners' mail bounced hard) must not starve the others.
        try:
            sent += len(check_budget_warnings(workspace=workspace))
        except Exception:
            logger.exception("budget warning not sent", extra={"workspace_id": workspace.pk})
    return sent


# --- the page -------------------------------------------------------------------------------


class BudgetForm(forms.Form):
    monthly_budget_credits = forms.IntegerField(
        label="Monthly budget (credits)",
        required=False,
        min_value=0,
        max_value=MAX_CREDITS,
        help_text="Leave empty for no budget. Warnings are e-mailed to owners at 80% and 100%.",
    )

    def __init__(self, *args, memberships, **kwargs):
        super().__init__(*args, **kwargs)
        self.memberships = memberships
        for membership in memberships:
            self.fields[f"cap_{membership.pk}"] = forms.IntegerField(
                label=f"Cap for {membership.user.email}",
                required=False,
                min_value=0,
                max_value=MAX_CREDITS,
                initial=membership.monthly_cap_credits,
            )

    def cap_fields(self):
        return [(m, self[f"cap_{m.pk}"]) for m in self.memberships]

    def caps(self) -> dict[int, int | None]:
        return {m.pk: self.cleaned_data[f"cap_{m.pk}"] for m in self.memberships}


@workspace_required("can_manage_budget")
def budget_settings(request):
    workspace = request.workspace
    memberships = list(
        Membership.objects.filter(workspace=workspace)
        .select_related("user")
        .order_by("user__email")
    )
    form = BudgetForm(
        request.POST or None,
        memberships=memberships,
        initial={"monthly_budget_credits": workspace.monthly_budget_credits},
    )
    if request.method == "POST" and form.is_valid():
        try:
            update_budget(
                actor=request.user,
                workspace=workspace,
                monthly_budget_credits=form.cleaned_data["monthly_budget_credits"],
                member_caps=form.caps(),
            )
        except BudgetError as refused:
            form.add_error(None, str(refused))
        else:
            messages.success(request, "Budget saved.")
            return redirect("workspace_budget")
    used = services.spent_this_month(workspace=workspace)
    by_user = spent_by_member(workspace=workspace)
    budget = workspace.monthly_budget_credits
    rows = [
        {
            "membership": m,
            "field": form[f"cap_{m.pk}"],
            "spent": by_user.get(m.user_id, 0),
        }
        for m in memberships
    ]
    context = {
        "form": form,
        "rows": rows,
        "used": used,
        "budget": budget,
        "percent": (used * 100 // budget) if budget else None,
        "crossed": crossed_thresholds(used=used, budget=budget),
        "month": _month_start(),
    }
    return render(request, "generations/budget.html", context, status=400 if form.errors else 200)
