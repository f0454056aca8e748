"""The workspace's budget page: its monthly budget, each member's cap and what they spent."""

from django.contrib import messages
from django.shortcuts import redirect, render

from accounts.access import workspace_required
from accounts.models import Membership
from generations import budget
from generations.forms import BudgetForm


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
            budget.update_budget(
                actor=request.user,
                workspace=workspace,
                monthly_budget_credits=form.cleaned_data["monthly_budget_credits"],
                member_caps=form.caps(),
            )
        except budget.BudgetError as refused:
            form.add_error(None, str(refused))
        else:
            messages.success(request, "Budget saved.")
            return redirect("workspace_budget")
    used = budget.spent(workspace=workspace)
    by_user = budget.spent_by_member(workspace=workspace)
    limit = workspace.monthly_budget_credits
    rows = [
        {"membership": m, "field": form[f"cap_{m.pk}"], "spent": by_user.get(m.user_id, 0)}
        for m in memberships
    ]
    context = {
        "form": form,
        "rows": rows,
        "used": used,
        "budget": limit,
        "percent": (used * 100 // limit) if limit else None,
        "crossed": budget.crossed_thresholds(used=used, budget=limit),
        "month": budget.month_of(),
    }
    return render(request, "generations/budget.html", context, status=400 if form.errors else 200)
