"""Fuzzed input (hypothesis) against every form and query parameter a user can type into.

Whatever arrives (NUL bytes, huge strings, negative or huge numbers, lists where one value is
expected, markup, other workspaces' ids), the answer is a page with a clear message or the
redirect of a valid submission, never a 500, and a refused request writes no row.
"""

import datetime
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from accounts.models import Membership
from generations.models import MAX_DURATION, MAX_PROMPT_LENGTH, MIN_DURATION, Generation
from tests.security.conftest import snapshot

FUZZ = settings(
    max_examples=15,
    deadline=None,
    derandomize=True,  # the same examples every run: a failure reproduces, CI does not flake
    # No shrinking: each example is an HTTP request, and shrinking a failure took minutes.
    # The failing example is reported as found.
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# The test client encodes POST data as UTF-8, which lone surrogates cannot be.
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=80)
NASTY = st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "a\x00b",
        "A" * 5000,
        "é" * (MAX_PROMPT_LENGTH + 1),
        "-1",
        "0",
        "99999999999999999999999999",
        "-99999999999999999999999999",
        "1e400",
        "NaN",
        "inf",
        "3.5",
        "0x10",
        "<script>alert(1)</script>",
        "' OR 1=1 --",
        "../../etc/passwd",
        "%00",
        "\u202e\u200b",
        "🎬" * 200,
        "null",
        "[]",
        "{}",
        "true",
        "9999-12-31",
        "0001-01-01",
        "2026-13",
        "10000-01",
    ]
)
VALUE = st.one_of(TEXT, NASTY, st.integers().map(str))


def field(*valid):
    """A form value: a valid one, junk, several values at once, or absent (None)."""
    options = [VALUE, st.lists(VALUE, min_size=2, max_size=3), st.none()]
    if valid:
        options.insert(0, st.sampled_from(valid))
    return st.one_of(*options)


def present(data: dict) -> dict:
    return {k: v for k, v in data.items() if v is not None}


def assert_clear_refusal(response, before) -> None:
    status = response.status_code
    assert status in (200, 400, 403, 404, 410), status
    if status in (200, 400):
        body = response.content.decode()
        assert 'role="alert"' in body or 'class="error"' in body, "refused without a message"
    assert snapshot() == before, "a refused request wrote rows"


@pytest.fixture
def owner(world, client, login_as):
    client.raise_request_exception = False
    login_as(world["cast"]["alice"], world["team"])
    return client


@pytest.fixture
def other_key(world):
    from accounts.models import ApiKey

    charlie = world["cast"]["charlie"]
    key = ApiKey(workspace=charlie.memberships.get().workspace, label="Charlie's")
    key.secret = "sk_live_charlie_0001"
    key.save()
    return key


VIDEO = {
    "prompt": field("A heron in the fog, slow dolly"),
    "model": field("seedance-20", "seedance2-fast"),
    "duration": field("4", "5", "15"),
    "aspect_ratio": field("16:9", "1:1", "21:9"),
    "mode": field("keyframe", "reference"),
    "upscale_4k": field("on", "false"),
}


@FUZZ
@given(data=st.fixed_dictionaries(VIDEO), key=st.sampled_from(["mine", "other", "junk"]))
def test_new_video_form(owner, world, other_key, data, key):
    data = present(data)
    data["api_key"] = {"mine": world["key"].pk, "other": other_key.pk, "junk": "-7"}[key]
    before = snapshot()

    response = owner.post("/videos/new/", data)

    if response.status_code != 302:
        assert_clear_refusal(response, before)
        return
    made = Generation.objects.order_by("-pk").first()
    assert made.api_key_id == world["key"].pk
    assert 0 < len(made.prompt) <= MAX_PROMPT_LENGTH and "\x00" not in made.prompt
    assert MIN_DURATION <= made.duration <= MAX_DURATION
    assert made.model in ("seedance-20", "seedance2-fast")


@FUZZ
@given(
    data=st.fixed_dictionaries(
        {
            **VIDEO,
            "kind": field("lines", "variations"),
            "prompts": field("A fox\nA heron", "\n".join(["x"] * 21)),
            "variations": field("2", "20", "21"),
        }
    )
)
def test_batch_form(owner, world, data):
    data = present(data)
    data["api_key"] = world["key"].pk
    before = snapshot()
    count = Generation.objects.count()

    response = owner.post("/videos/batch/", data)

    if response.status_code != 302:
        assert_clear_refusal(response, before)
        return
    made = Generation.objects.order_by("-pk")[: Generation.objects.count() - count]
    assert 1 <= len(made) <= 20
    assert all(0 < len(g.prompt) <= MAX_PROMPT_LENGTH for g in made)


@FUZZ
@given(
    data=st.fixed_dictionaries(VIDEO),
    batch=st.fixed_dictionaries({"kind": field("lines"), "prompts": field("a\nb")}),
)
def test_live_previews(owner, world, data, batch):
    before = snapshot()
    for url, params in (
        ("/videos/new/preview/", present(data)),
        ("/videos/batch/preview/", {**present(data), **present(batch)}),
    ):
        response = owner.get(url, params, headers={"HX-Request": "true"})
        assert response.status_code == 200, url
    assert snapshot() == before


DATES = st.one_of(
    st.dates().map(datetime.date.isoformat),
    st.sampled_from(["9999-12-31", "0001-01-01", "2026-02-30", "2026-1-1", "1/2/2026"]),
    VALUE,
)
CURSORS = st.one_of(
    st.tuples(st.integers(), st.integers()).map(lambda t: f"{t[0]}-{t[1]}"),
    st.sampled_from(["-1-1", "1--1", "1-", "-", "99999999999999999999999-1", "1-9" * 30]),
    VALUE,
)


@FUZZ
@given(
    params=st.fixed_dictionaries(
        {
            "q": field("storm"),
            "status": field("in_flight", "success", "fail"),
            "model": field("seedance-20"),
            "member": field(),
            "date_from": st.one_of(DATES, st.none()),
            "date_to": st.one_of(DATES, st.none()),
            "before": st.one_of(CURSORS, st.none()),
            "after": st.one_of(CURSORS, st.none()),
        }
    )
)
@example(params={"date_to": "9999-12-31"})  # the day after it overflowed: a 500 once
@example(params={"before": "99999999999999999999999-1", "after": "1-" + "9" * 40})
def test_gallery_filters_search_and_pages(owner, world, params):
    before = snapshot()

    response = owner.get("/", present(params))
    news = owner.get("/videos/news/", {**present(params), "since": params.get("before") or ""})

    assert response.status_code == 200
    assert news.status_code in (200, 404)  # 404: no usable "since" cursor
    assert snapshot() == before


@FUZZ
@given(month=st.one_of(VALUE, st.dates().map(lambda d: d.strftime("%Y-%m"))))
def test_usage_month(owner, month):
    before = snapshot()

    page = owner.get("/usage/", {"month": month})
    export = owner.get("/usage/csv/", {"month": month})

    assert page.status_code == 200
    assert export.status_code in (200, 404)
    if export.status_code == 200:
        assert b"".join(export.streaming_content).startswith(b"date,member,model")
    assert snapshot() == before


@FUZZ
@given(
    data=st.fixed_dictionaries(
        {"email": field("newcomer@example.com"), "role": field("member", "viewer", "owner")}
    )
)
def test_invitation_form(owner, world, data):
    before = snapshot()

    response = owner.post(f"/workspaces/{world['team'].pk}/invite/", present(data))

    if response.status_code != 302:
        assert_clear_refusal(response, before)


@FUZZ
@given(data=st.fixed_dictionaries({"label": field("Backup key"), "secret": field("sk_live_x1")}))
def test_key_form(owner, data):
    before = snapshot()

    response = owner.post("/keys/", present(data))

    if response.status_code != 302:
        assert_clear_refusal(response, before)


@FUZZ
@given(
    form=st.sampled_from(["rename", "role", "budget", "switch", "account"]),
    value=field("Renamed team", "viewer", "admin", "1000", "0"),
    other=field("50"),
)
def test_team_budget_and_switch_forms(owner, world, form, value, other):
    team = world["team"]
    bob = Membership.objects.get(user=world["cast"]["bob"], workspace=team)
    url, data = {
        "rename": (f"/workspaces/{team.pk}/rename/", {"name": value}),
        "role": (f"/workspaces/{team.pk}/members/{bob.pk}/role/", {"role": value}),
        "budget": ("/workspace/budget/", {"monthly_budget_credits": value, f"cap_{bob.pk}": other}),
        "switch": ("/workspaces/switch/", {"workspace": value, "next": other}),
        "account": ("/account/", {"name": value, "email_on_finish": other}),
    }[form]
    before = snapshot()

    response = owner.post(url, present(data))

    if response.status_code == 302:
        # A refusal by the service is a message on the redirect, and writes nothing.
        assert not response["Location"].startswith(("http", "//")), "an open redirect"
        return
    assert_clear_refusal(response, before)


@FUZZ
@given(token=st.one_of(TEXT.filter(lambda t: t.strip("/.") != ""), NASTY.filter(bool)))
def test_invitation_links(client, world, token):
    client.raise_request_exception = False
    before = snapshot()

    response = client.get(f"/invitations/{quote(token, safe='')}/")

    assert response.status_code in (404, 410)
    assert snapshot() == before


@pytest.mark.parametrize("url", ["/videos/new/", "/videos/batch/", "/keys/", "/workspaces/"])
def test_raw_bytes_that_are_not_utf8(owner, url):
    before = snapshot()

    response = owner.post(
        url,
        data=b"prompt=\xff\xfe%FF%00&duration=\xc3\x28&label=\x80&secret=\x81&team-name=%C0%AF%00",
        content_type="application/x-www-form-urlencoded",
    )

    assert_clear_refusal(response, before)
