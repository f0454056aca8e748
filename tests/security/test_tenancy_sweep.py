"""Tenancy sweep over the whole URLconf: every route × every actor (pretix's test_permissions).

The routes come from the resolver, so a new view fails `test_every_route_is_classified` until
it is declared below with who may use it. Each declared route is then requested as each role
of workspace A, as a stranger (for routes that take an id: the id of an object of A) and
anonymously: an allowed role is served, a role without the right gets 403 with a clear
message, a stranger 404, anonymous goes to login; a refused request changes no row.
The admin and the sandbox API are left out: they have their own authentication.
"""

from dataclasses import dataclass, field
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from accounts.access import PERMISSION_MESSAGES
from tests.security.conftest import snapshot

OWNER, ADMIN, MEMBER, VIEWER = "alice", "adam", "bob", "vera"
STRANGER, ANONYMOUS = "charlie", "anonymous"
EVERYONE = frozenset({OWNER, ADMIN, MEMBER, VIEWER})
MANAGERS = frozenset({OWNER, ADMIN})
GENERATORS = frozenset({OWNER, ADMIN, MEMBER})
OWNERS = frozenset({OWNER})
NOBODY: frozenset = frozenset()

SKIPPED_NAMESPACES = {"admin", "sandbox"}
# What a role without the right may be told (the access helper's messages, and the few
# views that refuse with their own sentence).
REFUSALS = [*PERMISSION_MESSAGES.values(), "Only owners can rename a workspace."]


@dataclass(frozen=True)
class Route:
    """Who may use a route. `get`/`post`: the roles served (None: the route is not for that
    method; whatever it answers must not be an error or change a row)."""

    anonymous: str = "login"  # "login", "public", "404" or "401" (a bearer-token API)
    get: frozenset | None = None
    post: frozenset | None = None
    ids: Any = None  # world -> URL kwargs built from objects of workspace A
    data: Any = field(default_factory=dict)  # world -> POST data that a served role may send
    fragment: bool = False  # an htmx fragment: requested with HX-Request as the page does
    refused: int = 403  # what a role outside `get`/`post` gets
    refusal: str | None = None  # the message a refused role reads, if not the access helper's
    stranger: int = 404  # what a signed-in stranger gets for an object of A
    ok: tuple = (200, 302)  # the statuses of a served request


def _gen(w):
    return {"public_id": w["generation"].public_id}


def _ws(w):
    return {"workspace_id": w["team"].pk}


def _key(w):
    return {"key_id": w["key"].pk}


def _material(w):
    return {"public_id": w["material"].public_id}


def _signed(w):
    from materials import links

    token, name = links.link_for(w["material"]).rsplit("/", 2)[-2:]
    return {"token": token, "name": name}


def _video(w):
    return {
        "prompt": "A paper boat on a rain-soaked street, slow tracking shot",
        "model": "seedance-20",
        "duration": 5,
        "aspect_ratio": "16:9",
        "mode": "keyframe",
        "api_key": w["key"].pk,
    }


def _batch(w):
    data = _video(w)
    data.update(kind="lines", prompts="A fox at dawn\nA heron at dusk")
    return data


ROUTES: dict[str, Route] = {
    # Public by design: reachable without an account.
    # Without a running cluster the health check says so (503), which is its job.
    "healthz": Route(anonymous="public", get=EVERYONE, ok=(200, 503)),
    "signup": Route(anonymous="public", get=EVERYONE, post=EVERYONE),
    "login": Route(anonymous="public", get=EVERYONE, post=EVERYONE),
    "logout": Route(anonymous="public", post=EVERYONE),
    "password_reset": Route(anonymous="public", get=EVERYONE, post=EVERYONE),
    "password_reset_done": Route(anonymous="public", get=EVERYONE),
    # A reset link is about the token, not a workspace: everyone gets the same "invalid" page.
    "password_reset_confirm": Route(
        anonymous="public",
        get=EVERYONE,
        ids=lambda w: {"uidb64": "MQ", "token": "set-password"},
        stranger=200,
    ),
    # The invitation token is the credential; a signed-in user it was not sent to is refused.
    "accept_invitation": Route(
        anonymous="public",
        get=NOBODY,
        post=NOBODY,
        ids=lambda w: {"token": w["invitation_token"]},
        refusal="This invitation was sent to pending@example.com",
        stranger=403,
    ),
    # Signed-in pages of the current workspace.
    "password_change": Route(get=EVERYONE, post=EVERYONE),
    "account_settings": Route(
        get=EVERYONE, post=EVERYONE, data={"name": "New name", "email_on_finish": "on"}
    ),
    "workspaces": Route(get=EVERYONE, post=EVERYONE, data={"team-name": "Side project"}),
    "switch_workspace": Route(post=EVERYONE, data=lambda w: {"workspace": w["team"].pk}),
    "keys": Route(
        get=EVERYONE, post=MANAGERS, data={"label": "Another", "secret": "sk_live_another_1234"}
    ),
    "sandbox_key": Route(post=MANAGERS),
    # Visitors get the landing page at /; signed-in users the gallery.
    "home": Route(anonymous="public", get=EVERYONE),
    "gallery_news": Route(get=EVERYONE, data={"since": "1700000000000000-1"}, fragment=True),
    "workspace_budget": Route(get=MANAGERS, post=MANAGERS, data={"monthly_budget_credits": 5000}),
    "generation_new": Route(get=GENERATORS, post=GENERATORS, data=_video),
    "generation_preview": Route(get=GENERATORS, data=_video, fragment=True),
    "generation_batch": Route(get=GENERATORS, post=GENERATORS, data=_batch),
    "generation_batch_preview": Route(get=GENERATORS, data=_batch, fragment=True),
    "usage": Route(get=MANAGERS),
    "usage_csv": Route(get=MANAGERS),  # a file download
    # Objects of workspace A, by id.
    "team": Route(get=EVERYONE, ids=_ws),
    "invite": Route(
        post=MANAGERS, ids=_ws, data={"email": "newcomer@example.com", "role": "member"}
    ),
    "revoke_invitation": Route(
        post=MANAGERS,
        ids=lambda w: {"workspace_id": w["team"].pk, "invitation_id": w["invitation"].pk},
    ),
    "change_role": Route(
        post=MANAGERS,
        ids=lambda w: {"workspace_id": w["team"].pk, "membership_id": w["target"].pk},
        data={"role": "viewer"},
    ),
    "remove_member": Route(
        post=MANAGERS,
        ids=lambda w: {"workspace_id": w["team"].pk, "membership_id": w["target"].pk},
    ),
    "leave_workspace": Route(post=EVERYONE, ids=_ws),
    "rename_workspace": Route(post=OWNERS, ids=_ws, data={"name": "Renamed"}),
    "delete_workspace": Route(get=OWNERS, post=OWNERS, ids=_ws),
    "edit_key": Route(get=MANAGERS, post=MANAGERS, ids=_key, data={"label": "Renamed key"}),
    "default_key": Route(post=MANAGERS, ids=_key),
    "revoke_key": Route(post=MANAGERS, ids=_key),
    "recheck_key": Route(post=MANAGERS, ids=_key),
    "generation_detail": Route(get=EVERYONE, ids=_gen),
    "generation_card": Route(get=EVERYONE, ids=_gen, fragment=True),
    "generation_retry": Route(post=GENERATORS, ids=_gen),
    "generation_recheck": Route(post=GENERATORS, ids=_gen),
    "generation_cancel": Route(post=GENERATORS, ids=_gen),
    "generation_hide": Route(post=GENERATORS, ids=_gen),
    "generation_unhide": Route(post=GENERATORS, ids=_gen),
    # The materials library: everyone looks, generators add and delete.
    "materials": Route(get=EVERYONE),
    "material_upload": Route(post=GENERATORS),
    "material_delete": Route(post=GENERATORS, ids=_material),
    "material_thumbnail": Route(get=EVERYONE, ids=_material),
    "generation_continue": Route(post=GENERATORS, ids=_gen),
    # A signed link is the credential (Kinovi holds no session): whoever has it gets the file.
    "material_file": Route(anonymous="public", get=EVERYONE, ids=_signed, stranger=200),
    # Kinovi's callback: no session counts; without the generation's token it is a 404.
    "kinovi-webhook": Route(
        anonymous="404",
        post=NOBODY,
        refused=404,
        ids=lambda w: {"public_id": w["generation"].public_id, "token": "A" * 43},
        data={"code": 200, "data": {"taskId": "task-of-workspace-a", "state": "success"}},
    ),
    # The studio's Kinovi-compatible API: only a bearer token counts, never a session, so
    # every signed-in role is a 401 like anonymous (tests/api has the token matrix).
    "api_create_task": Route(
        anonymous="401",
        post=NOBODY,
        refused=401,
        data={"model": "seedance-20", "inputs": {"prompt": "A sweep"}},
    ),
    "api_cancel": Route(anonymous="401", post=NOBODY, refused=401),
    "api_record_info": Route(
        anonymous="401", get=NOBODY, refused=401, data={"taskId": "task-of-workspace-a"}
    ),
    "api_jobs": Route(anonymous="401", get=NOBODY, refused=401),
    "api_openapi": Route(anonymous="public", get=EVERYONE),
    # The pages about it: everyone makes their own tokens; a token is revoked by its owner
    # (Bob, the member) or the workspace's owners and admins.
    "api_docs": Route(get=EVERYONE),
    "api_tokens": Route(get=EVERYONE, post=EVERYONE, data={"name": "Sweep", "scopes": ["read"]}),
    "api_token_revoke": Route(
        post=frozenset({OWNER, ADMIN, MEMBER}), ids=lambda w: {"token_id": w["api_token"].pk}
    ),
    # Outbound webhooks: for those who generate; "send again" for the video's creator (Bob)
    # and the managers; rotating the signing secret for owners.
    "api_webhooks": Route(get=GENERATORS),
    "api_webhook_rotate": Route(post=OWNERS, refusal="Only owners can rotate the webhook secret."),
    "api_webhook_resend": Route(
        post=GENERATORS, ids=lambda w: {"delivery_id": w["api_delivery"].pk}
    ),
}


def project_routes(patterns=None, prefix: str = "", namespace: str | None = None):
    """(name, route, converters) of every URL pattern, following includes."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            inner = pattern.namespace or namespace
            if inner in SKIPPED_NAMESPACES:
                continue
            yield from project_routes(pattern.url_patterns, prefix + str(pattern.pattern), inner)
        elif isinstance(pattern, URLPattern):
            yield pattern.name, prefix + str(pattern.pattern), set(pattern.pattern.converters)


def test_every_route_is_classified():
    found = {name: (route, converters) for name, route, converters in project_routes()}
    assert None not in found, "every route needs a name to be classified"
    unclassified = sorted(set(found) - set(ROUTES))
    assert not unclassified, f"declare who may use these routes in ROUTES: {unclassified}"
    assert not sorted(set(ROUTES) - set(found)), "ROUTES names routes that no longer exist"
    for name, (_, converters) in found.items():
        # A route that takes an id must say how to build it from workspace A's objects.
        assert bool(converters) == (ROUTES[name].ids is not None), name


def _served(route: Route, method: str):
    return route.get if method == "get" else route.post


def _cases():
    for name, route in ROUTES.items():
        for method in ("get", "post"):
            actors = [ANONYMOUS]
            if route.anonymous != "public" or route.ids is not None:
                actors += [OWNER, ADMIN, MEMBER, VIEWER]
            if route.ids is not None:
                actors.append(STRANGER)
            if _served(route, method) is None:
                # A method the route is not for: the most and the least privileged suffice.
                actors = [a for a in actors if a in (ANONYMOUS, OWNER)]
            for actor in actors:
                yield pytest.param(name, method, actor, id=f"{name}-{method}-{actor}")


def expected(route: Route, method: str, actor: str):
    served = _served(route, method)
    if served is None:
        return "unused"
    if actor == ANONYMOUS:
        return {"login": "login", "public": "served", "404": 404, "401": 401}[route.anonymous]
    if actor == STRANGER:
        return route.stranger
    return "served" if actor in served else route.refused


def request(client, route: Route, name: str, method: str, world):
    url = reverse(name, kwargs=route.ids(world) if route.ids else None)
    data = route.data(world) if callable(route.data) else route.data
    headers = {"HX-Request": "true"} if route.fragment else {}
    if method == "get":
        return url, client.get(url, data if route.fragment else None, headers=headers)
    return url, client.post(url, data, headers=headers)


@pytest.mark.parametrize(("name", "method", "actor"), list(_cases()))
def test_route_as_actor(name, method, actor, world, client, login_as):
    route = ROUTES[name]
    want = expected(route, method, actor)
    if actor == STRANGER:
        login_as(world["cast"][STRANGER])
    elif actor != ANONYMOUS:
        login_as(world["cast"][actor], world["team"])
    client.raise_request_exception = False
    before = snapshot()

    url, response = request(client, route, name, method, world)

    status = response.status_code
    body = response.content.decode() if not response.streaming else ""
    if want == "served":
        assert status in route.ok, f"{actor} {method.upper()} {url}: {status}"
        if status == 302 and route.anonymous != "public":
            assert not response["Location"].startswith(reverse("login")), url
        return
    if want == "unused":
        # Refused (405), redirected, or the page shown again: anything but an error or a write.
        assert (status < 500 or status in route.ok) and status != 403, (
            f"{actor} {method.upper()} {url}: {status}"
        )
    elif want == "login":
        assert status == 302, f"{actor} {method.upper()} {url}: {status}"
        assert response["Location"].startswith(f"{reverse('login')}?next="), response["Location"]
    else:
        assert status == want, f"{actor} {method.upper()} {url}: {status}, wanted {want}"
    if status == 403:
        message = route.refusal or next((m for m in REFUSALS if m in body), None)
        assert message and message in body, f"403 without a clear message for {url}"
    if status == 404 and route.ids is not None:
        # A stranger learns nothing about the object, not even that it exists.
        assert world["generation"].prompt not in body
        assert world["team"].name not in body
    assert snapshot() == before, f"{actor} {method.upper()} {url} changed rows ({status})"


# Ids that travel in the query string or the form rather than the path.


@pytest.mark.parametrize(("actor", "status"), [(STRANGER, 404), (VIEWER, 403), (MEMBER, 200)])
def test_remixing_by_query_string_is_scoped(world, client, login_as, actor, status):
    login_as(world["cast"][actor], None if actor == STRANGER else world["team"])

    response = client.get(reverse("generation_new"), {"remix": world["generation"].public_id})

    assert response.status_code == status
    body = response.content.decode()
    assert (world["generation"].prompt in body) == (status == 200)


def test_a_remix_of_another_workspaces_video_records_no_parent(world, client, login_as):
    from accounts.models import ApiKey
    from generations.models import Generation

    charlie = world["cast"][STRANGER]
    login_as(charlie)
    mine = ApiKey(workspace=charlie.memberships.get().workspace, label="Mine", is_default=True)
    mine.secret = "sk_live_charlie_0002"
    mine.status = ApiKey.Status.VERIFIED
    mine.save()
    data = {
        "prompt": "My own take",
        "model": "seedance-20",
        "duration": 5,
        "aspect_ratio": "16:9",
        "mode": "keyframe",
        "api_key": mine.pk,
        "remix_of": str(world["generation"].public_id),
    }

    response = client.post(reverse("generation_new"), data)

    assert response.status_code == 302
    made = Generation.objects.get(prompt="My own take")
    assert made.parent_id is None and made.workspace_id != world["team"].pk
