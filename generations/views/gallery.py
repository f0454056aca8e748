"""The gallery: a workspace's videos, newest first, with filters, keyset pages, self-updating
cards and a "newer videos" notice."""

from django.conf import settings
from django.http import Http404
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from accounts.access import get_for_member, workspace_required
from accounts.models import ApiKey
from generations import selectors
from generations.forms import GalleryFilterForm, members_for_filter
from generations.models import Generation

NEWS_REFRESH_SECONDS = 15


def card_refresh() -> int:
    """Seconds between two looks of an in-flight card (3 by default; tests make it shorter)."""
    return getattr(settings, "DASHBOARD_CARD_REFRESH_SECONDS", 3)


def _filters(request, memberships) -> tuple[GalleryFilterForm, dict]:
    form = GalleryFilterForm(request.GET or None, memberships=memberships)
    if not form.is_bound:
        return form, {}
    form.is_valid()
    return form, {k: v for k, v in form.cleaned_data.items() if v not in (None, "")}


def _links(request, rows, *, before, after, has_newer, has_older) -> dict:
    """The URLs of the newer, older and first pages, and of the "newer videos" notice."""
    base = request.GET.copy()
    for key in ("before", "after"):
        base.pop(key, None)

    def with_cursor(name: str, row) -> str:
        query = base.copy()
        query[name] = selectors.encode_cursor(row)
        return query.urlencode()

    links = {
        "newer_url": f"?{with_cursor('after', rows[0])}" if rows and has_newer else None,
        "older_url": f"?{with_cursor('before', rows[-1])}" if rows and has_older else None,
        "first_url": f"?{base.urlencode()}" if (before or after) else None,
        "news_url": None,
    }
    if rows and before is None and after is None:
        # The first page asks now and then whether teammates made anything newer.
        links["news_url"] = f"{reverse('gallery_news')}?{with_cursor('since', rows[0])}"
    return links


@workspace_required()
def home(request):
    workspace = request.workspace
    filter_form, filters = _filters(request, list(members_for_filter(workspace)))
    qs = selectors.gallery(workspace, filters).select_related("creator")
    before = selectors.decode_cursor(request.GET.get("before"))
    after = None if before else selectors.decode_cursor(request.GET.get("after"))
    rows, has_newer, has_older = selectors.page(qs, before=before, after=after)
    has_keys = None
    if not rows and not filters and before is None and after is None:
        has_keys = ApiKey.objects.usable().filter(workspace=workspace).exists()
    context = {
        "generations": rows,
        "filter_form": filter_form,
        "filtered": bool(filters),
        "has_keys": has_keys,
        "news_refresh": NEWS_REFRESH_SECONDS,
        "now": timezone.now(),
        "sandbox": settings.KINOVI_SANDBOX,
        "card_refresh": card_refresh(),
        **_links(
            request, rows, before=before, after=after, has_newer=has_newer, has_older=has_older
        ),
    }
    return render(request, "generations/gallery.html", context)


@require_GET
@workspace_required()
def gallery_news(request):
    """How many videos newer than the first card exist (same filters): a "show them" link."""
    since = selectors.decode_cursor(request.GET.get("since"))
    if since is None:
        raise Http404("No such page.")
    _, filters = _filters(request, list(members_for_filter(request.workspace)))
    count = selectors.count_newer(selectors.gallery(request.workspace, filters), since)
    show = request.GET.copy()
    show.pop("since", None)
    context = {
        "count": min(count, selectors.PAGE_SIZE),
        "more": count > selectors.PAGE_SIZE,
        "poll_url": request.get_full_path(),
        "show_url": f"{reverse('home')}?{show.urlencode()}",
        "news_refresh": NEWS_REFRESH_SECONDS,
    }
    return render(request, "generations/_news.html", context)


def load(request, public_id, permission=None) -> Generation:
    """The one way these pages fetch a generation: the member's own workspaces, else 404."""
    return get_for_member(
        request,
        Generation.objects.select_related("creator", "api_key", "parent"),
        permission,
        public_id=public_id,
    )


@require_GET
@workspace_required()
def card(request, public_id):
    generation = load(request, public_id)
    return render(
        request,
        "includes/video_card.html",
        {
            "g": generation,
            "now": timezone.now(),
            "membership": request.membership,
            "card_refresh": card_refresh(),
        },
    )
