"""The header's credits-used-this-month figure and budget chip, on every logged-in page."""

from django.utils.functional import SimpleLazyObject

from accounts.access import current_membership
from generations import budget


def usage(request):
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}

    def status():
        membership = current_membership(request)
        if membership is None:
            return None
        return budget.status(workspace=membership.workspace, membership=membership)

    # Lazy: only pages that render the header pay for the query.
    return {"header_usage": SimpleLazyObject(status)}
