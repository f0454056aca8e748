"""Every budget figure and change: what a month is, what it has spent, what a new video may
cost, the one service that changes budgets and caps, and the 80% / 100% warning e-mails.

A month is a calendar month in the site's time zone (TIME_ZONE), the same for everyone
whatever zone their pages show, and a video belongs to the month it was made in: what a month
has spent is the estimates of its videos not yet reserved at Kinovi (HELD_STATUSES) plus the
ledger rows of its other videos (reserve, capture correction, refund; signed, spending
negative). The usage page, the header, the budget page, the warnings and the submission check
all read `month_ledger` and `spent`, so they agree about every month.
"""

import calendar
import datetime
import logging
from types import EllipsisType

from django.conf import settings
from django.core.mail import send_mail
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import Exists, OuterRef, Sum
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts.models import Membership, Role, Workspace, log_action
from generations import retry
from generations.models import HELD_STATUSES, BudgetWarning, CreditEntry, Generation

logger = logging.getLogger(__name__)

THRESHOLDS = (80, 100)
# PositiveIntegerField's ceiling on PostgreSQL; anything above it is a typo, not a budget.
MAX_CREDITS = 2_147_483_647


class BudgetError(Exception):
    """A refused budget change, with a message fit to show the user."""


# --- months and what they spent ---------------------------------------------------------------


def month_of(moment: datetime.datetime | None = None) -> datetime.date:
    """The first day of the month `moment` (default: now) falls in, in the site's time zone."""
    moment = moment or timezone.now()
    return timezone.localtime(moment, timezone.get_default_timezone()).date().replace(day=1)


def month_bounds(month: datetime.date) -> tuple[datetime.datetime, datetime.datetime, int]:
    """[start, end) of the month that begins on `month`, and its number of days."""
    zone = timezone.get_default_timezone()
    days = calendar.monthrange(month.year, month.month)[1]
    start = datetime.datetime.combine(month, datetime.time.min, tzinfo=zone)
    end = datetime.datetime.combine(
        month + datetime.timedelta(days=days), datetime.time.min, tzinfo=zone
    )
    return start, end, days


def month_generations(workspace, month: datetime.date | None = None):
    """The workspace's videos made in `month` (default: this month)."""
    start, end, _ = month_bounds(month or month_of())
    return Generation.objects.filter(workspace=workspace, created_at__gte=start, created_at__lt=end)


def month_ledger(workspace, month: datetime.date | None = None):
    """The ledger rows of the workspace's videos made in `month` (default: this month)."""
    return CreditEntry.objects.filter(
        generation__in=month_generations(workspace, month).values("pk")
    )


def _held(workspace):
    return month_generations(workspace).filter(status__in=HELD_STATUSES)


def spent(*, workspace, user=None) -> int:
    """Credits this month's ledger has spent for the workspace (or one member), plus the
    estimates it holds for videos not yet reserved at Kinovi."""
    ledger, held = month_ledger(workspace), _held(workspace)
    if user is not None:
        ledger, held = ledger.filter(user=user), held.filter(creator=user)
    moved = ledger.aggregate(total=Sum("credits"))["total"] or 0
    return (held.aggregate(total=Sum("estimated_credits"))["total"] or 0) - moved


def spent_by_member(*, workspace) -> dict[int, int]:
    """`spent(workspace=, user=)` for every member at once: two GROUP BY queries instead of two
    per member (a test holds the two together)."""
    by_user: dict[int, int] = {}
    held = (
        _held(workspace)
        .values("creator_id")
        .order_by()
        .annotate(total=Sum("estimated_credits"))
        .values_list("creator_id", "total")
    )
    moved = (
        month_ledger(workspace)
        .values("user_id")
        .order_by()
        .annotate(total=Sum("credits"))
        .values_list("user_id", "total")
    )
    for user_id, total in held:
        by_user[user_id] = by_user.get(user_id, 0) + int(total)
    for user_id, total in moved:
        by_user[user_id] = by_user.get(user_id, 0) - int(total)
    return by_user


def _percent(used: int, budget: int | None) -> int | None:
    return int(used * 100 / budget) if budget else None


def status(*, workspace: Workspace, membership: Membership | None = None) -> dict:
    """The month's figures for the header, the new-video page and the budget page.

    `available` is what a new submission may cost right now (None: no limit applies);
    `binding_limit` says which limit that is.
    """
    budget = workspace.monthly_budget_credits
    used = spent(workspace=workspace)
    remaining = None if budget is None else max(0, budget - used)
    figures = {
        "budget": budget,
        "used": used,
        "remaining": remaining,
        "percent": _percent(used, budget),
        "member_cap": None,
        "member_used": None,
        "member_remaining": None,
        "member_percent": None,
        "available": remaining,
    }
    if membership is not None and membership.monthly_cap_credits is not None:
        cap = membership.monthly_cap_credits
        member_used = spent(workspace=workspace, user=membership.user_id)
        member_remaining = max(0, cap - member_used)
        figures.update(
            member_cap=cap,
            member_used=member_used,
            member_remaining=member_remaining,
            member_percent=_percent(member_used, cap),
        )
        if remaining is None or member_remaining < remaining:
            figures["available"] = member_remaining
    return figures


def binding_limit(figures: dict) -> str | None:
    """Which limit `available` comes from: "cap" (the member's), "budget" (the workspace's)."""
    if figures["available"] is None:
        return None
    return "budget" if figures["available"] == figures["remaining"] else "cap"


class OverBudget(Exception):
    """A cost the month's limits refuse: `message` names the limit that applies, `required`
    and `available` are its numbers (the API answers them in its 402)."""

    def __init__(self, message: str, *, required: int, available: int) -> None:
        super().__init__(message)
        self.message = message
        self.required = required
        self.available = available


def check(*, workspace: Workspace, membership: Membership, cost: int) -> None:
    """Raises OverBudget if `cost` would take the workspace or the member over the month's
    limit. The caller holds the workspace's row lock (services.submit_batch)."""
    figures = status(workspace=workspace, membership=membership)
    if figures["available"] is None or cost <= figures["available"]:
        return
    raise OverBudget(refusal_message(figures, cost), required=cost, available=figures["available"])


def refusal_message(figures: dict, cost: int) -> str:
    """The one way the studio says which limit a cost breaks (preview and refusal alike)."""
    if binding_limit(figures) == "cap":
        return (
            f"This costs {cost} credits but only {figures['member_remaining']} of your "
            f"{figures['member_cap']}-credit monthly cap in this workspace are left. Nothing "
            "was sent."
        )
    return (
        f"This costs {cost} credits but only {figures['remaining']} of the workspace's "
        f"{figures['budget']}-credit monthly budget are left. Nothing was sent. Ask an owner "
        "or admin to raise the budget, or choose a shorter or cheaper video."
    )


def _check_amount(value, what: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise BudgetError(f"The {what} must be a whole number of credits, zero or more.")
    if value > MAX_CREDITS:
        raise BudgetError(f"The {what} is too large.")
    return value


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
    try:
        return _update_budget(actor, workspace, monthly_budget_credits, member_caps)
    except DatabaseError as exc:
        if not retry.is_contention(exc):
            raise
        raise BudgetError(
            "The studio is very busy right now and nothing was changed: try again in a moment."
        ) from None


@retry.retried
@transaction.atomic
def _update_budget(actor, workspace, monthly_budget_credits, member_caps) -> Workspace:
    locked = Workspace.objects.select_for_update(no_key=True).get(pk=workspace.pk)
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
            for m in Membership.objects.select_for_update(no_key=True)
            .select_related("user")
            .filter(workspace=locked, pk__in=list(member_caps))
            .order_by("pk")
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
    used = spent(workspace=workspace)
    crossed = crossed_thresholds(used=used, budget=budget)
    if not crossed:
        return []
    month = month_of()
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
        workspace=OuterRef("pk"), month=month_of(), threshold=max(THRESHOLDS)
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
