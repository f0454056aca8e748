"""The detail page: parameters, timeline, ledger, the error in plain words, actions by role."""

import pytest
from django.urls import reverse

from generations.models import CreditEntry

DETAIL_QUERIES = 13  # + the shots continuing it and the files it was made from

pytestmark = pytest.mark.django_db


def _ledger(generation, *rows):
    for kind, credits in rows:
        CreditEntry.objects.create(
            generation=generation,
            workspace=generation.workspace,
            user=generation.creator,
            api_key=generation.api_key,
            model=generation.model,
            kind=kind,
            credits=credits,
            dollars_per_credit=generation.dollars_per_credit,
        )


def test_it_works(login_as, cast, team, make_generation):
    g = make_generation(
        prompt="A glass city at night, slow dolly in",
        status="success",
        task_id="task_abc123",
        credits_used=180,
        video_url="http://testserver/media/v.mp4",
        last_frame_url="http://testserver/media/v.png",
        width=640,
        height=360,
        seed=4242,
        events=[
            ("", "queued", "submit"),
            ("queued", "submitting", "submit"),
            ("submitting", "waiting", "submit"),
            ("waiting", "generating", "poll"),
            ("generating", "success", "webhook"),
        ],
    )
    _ledger(g, ("reserve", -200), ("capture", 20))
    response = login_as(cast["bob"], team).get(reverse("generation_detail", args=[g.public_id]))
    assert response.status_code == 200
    html = response.content.decode()
    for text in [
        "A glass city at night",
        "task_abc123",
        "640 × 360",
        "4242",
        "Seedance 2.0",
        "16:9",
        "Keyframe",
        "••••7788",
        "Webhook",
        "Poll",
        "Generating → <strong>Done",
    ]:
        assert text in html, text
    assert "sk_test_dashboard_key_7788" not in html
    # Estimated vs charged and the ledger rows with their balance.
    assert "<strong>200</strong> credits" in html and "<strong>180</strong> credits" in html
    assert "−200" in html and "+20" in html and "−180" in html and "−$0.90" in html
    assert 'poster="http://testserver/media/v.png"' in html
    # Members can act: retry, remix, hide; no cancel (not queued), no re-check (not stalled).
    assert reverse("generation_retry", args=[g.public_id]) in html
    assert f"{reverse('generation_new')}?remix={g.public_id}" in html
    assert reverse("generation_hide", args=[g.public_id]) in html
    assert reverse("generation_cancel", args=[g.public_id]) not in html
    assert reverse("generation_recheck", args=[g.public_id]) not in html


def test_it_checks_access(client, login_as, cast, team, make_generation):
    g = make_generation()
    url = reverse("generation_detail", args=[g.public_id])
    response = client.get(url)
    assert response.status_code == 302 and reverse("login") in response["Location"]
    assert login_as(cast["charlie"]).get(url).status_code == 404
    # A viewer sees it but has no actions.
    html = login_as(cast["vera"], team).get(url).content.decode()
    assert "A lighthouse" in html
    assert reverse("generation_retry", args=[g.public_id]) not in html
    assert (
        login_as(cast["bob"])
        .get(reverse("generation_detail", args=["00000000-0000-0000-0000-000000000000"]))
        .status_code
        == 404
    )


@pytest.mark.parametrize(
    ("fields", "title", "advice"),
    [
        (
            {
                "status": "fail",
                "error_code": "2038",
                "error_message": "Your input text violates platform rules",
            },
            "moderation rejected the prompt",
            "Rephrase the prompt",
        ),
        (
            {
                "status": "rejected",
                "error_code": "402",
                "error_detail": {"required": 600, "available": 120},
            },
            "too few credits",
            "Needed 600 credits, the account had 120",
        ),
        ({"status": "rejected", "error_code": "401"}, "Kinovi refused the API key", "keys page"),
        ({"status": "rejected", "error_code": "403"}, "Kinovi refused the API key", "keys page"),
        (
            {
                "status": "rejected",
                "error_code": "400",
                "error_detail": {
                    "errors": [{"path": "inputs.duration", "message": "bad duration"}]
                },
            },
            "refused the parameters",
            "inputs.duration",
        ),
        (
            {"status": "fail", "error_code": "500", "error_message": "Internal server error"},
            "server error",
            "usually passes",
        ),
        (
            {"status": "unknown", "error_code": "unknown"},
            "We never got Kinovi",
            "not resent automatically",
        ),
        ({"status": "stalled"}, "not finished this video", "Re-check now"),
        ({"status": "rejected", "error_code": "unreachable"}, "could not be reached", "retry"),
    ],
)
def test_errors_in_plain_words(login_as, cast, team, make_generation, fields, title, advice):
    g = make_generation(**fields)
    html = login_as(cast["bob"], team).get(reverse("generation_detail", args=[g.public_id]))
    html = html.content.decode()
    assert title in html
    assert advice in html


def test_a_429_backoff_is_explained(login_as, cast, team, make_generation):
    g = make_generation(
        status="queued",
        error_code="429",
        events=[("", "queued", "submit"), ("queued", "submitting", "submit")],
    )
    from generations.models import StatusEvent

    StatusEvent.objects.create(
        generation=g,
        from_status="submitting",
        to_status="queued",
        source="submit",
        detail="429 from Kinovi (limit 2, in progress 2)",
    )
    html = login_as(cast["bob"], team).get(reverse("generation_detail", args=[g.public_id]))
    assert "too many videos in progress" in html.content.decode()


def test_actions_shown_per_status(login_as, cast, team, make_generation):
    client = login_as(cast["bob"], team)
    queued = make_generation(status="queued")
    html = client.get(reverse("generation_detail", args=[queued.public_id])).content.decode()
    assert reverse("generation_cancel", args=[queued.public_id]) in html
    assert reverse("generation_retry", args=[queued.public_id]) not in html
    stalled = make_generation(status="stalled", task_id="task_stalled1")
    html = client.get(reverse("generation_detail", args=[stalled.public_id])).content.decode()
    assert reverse("generation_recheck", args=[stalled.public_id]) in html


def test_query_count_is_constant(
    login_as, cast, team, make_generation, django_assert_max_num_queries
):
    few = make_generation(status="success", events=[("", "queued", "submit")])
    _ledger(few, ("reserve", -200))
    many = make_generation(
        status="fail", events=[("", "queued", "submit")] + [("queued", "queued", "poll")] * 40
    )
    _ledger(many, ("reserve", -200), ("refund", 200))
    client = login_as(cast["bob"], team)
    for g in (few, many):
        with django_assert_max_num_queries(DETAIL_QUERIES):
            assert client.get(reverse("generation_detail", args=[g.public_id])).status_code == 200


def test_card_fragment(login_as, client, cast, team, make_generation):
    g = make_generation(status="generating")
    url = reverse("generation_card", args=[g.public_id])
    html = login_as(cast["vera"], team).get(url).content.decode()
    assert html.strip().startswith("<article")
    assert 'hx-trigger="every 3s"' in html and "Generating" in html
    assert "elapsed" in html
    g.status = "success"
    g.video_url = "http://testserver/v.mp4"
    g.save()
    html = login_as(cast["vera"], team).get(url).content.decode()
    assert "hx-trigger" not in html and "<video" in html
    g.status = "stalled"
    g.save()
    html = login_as(cast["vera"], team).get(url).content.decode()
    assert 'hx-trigger="every 30s"' in html


def test_card_fragment_checks_access(client, login_as, cast, team, make_generation):
    g = make_generation(status="generating")
    url = reverse("generation_card", args=[g.public_id])
    assert client.get(url).status_code == 302
    assert login_as(cast["charlie"]).get(url).status_code == 404


def test_an_unfinished_detail_page_refreshes_itself_until_done(
    login_as, cast, team, make_generation
):
    g = make_generation(status="generating")
    client = login_as(cast["bob"], team)
    url = reverse("generation_detail", args=[g.public_id])
    html = client.get(url).content.decode()
    assert f'hx-get="{url}" hx-trigger="every 3s" hx-select="#detail-live"' in html
    # Only the page polls, not also the card inside it.
    assert reverse("generation_card", args=[g.public_id]) not in html
    g.status = "success"
    g.save()
    assert "hx-trigger" not in client.get(url).content.decode()


def test_card_fragment_is_cheap(
    login_as, cast, team, make_generation, django_assert_max_num_queries
):
    # Every in-flight card asks every few seconds: keep each answer to a handful of queries.
    g = make_generation(status="generating")
    client = login_as(cast["bob"], team)
    with django_assert_max_num_queries(5):  # session, user, membership, the generation, its role
        assert client.get(reverse("generation_card", args=[g.public_id])).status_code == 200


def test_cancel_and_hide_are_offered_to_the_creator_and_managers_only(
    login_as, cast, team, make_generation
):
    queued = make_generation(status="queued", creator=cast["bob"])
    cancel = reverse("generation_cancel", args=[queued.public_id])
    hide = reverse("generation_hide", args=[queued.public_id])
    url = reverse("generation_detail", args=[queued.public_id])
    for who, offered in [("bob", True), ("alice", True), ("adam", True)]:
        html = login_as(cast[who], team).get(url).content.decode()
        # A queued video is canceled, not hidden: the page offers what services.hide accepts.
        assert (cancel in html, hide in html) == (offered, False), who
    running = make_generation(status="generating", creator=cast["alice"])
    html = (
        login_as(cast["alice"], team)
        .get(reverse("generation_detail", args=[running.public_id]))
        .content.decode()
    )
    assert reverse("generation_hide", args=[running.public_id]) not in html
    # Bob, a member, may retry Alice's video but not cancel or hide it.
    done = make_generation(status="success", creator=cast["alice"])
    html = (
        login_as(cast["bob"], team)
        .get(reverse("generation_detail", args=[done.public_id]))
        .content.decode()
    )
    assert reverse("generation_retry", args=[done.public_id]) in html
    assert reverse("generation_hide", args=[done.public_id]) not in html
