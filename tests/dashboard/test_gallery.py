"""The gallery: newest first, cards, filters, keyset pages, empty states, access."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import ApiKey
from generations.selectors import PAGE_SIZE
from generations.selectors import gallery as _filtered_generations
from tests.dashboard.conftest import bulk_generations

# Session, user, membership, the header's workspaces and usage, members for the filter, the
# page of generations, and a little slack for the auth/axes middleware: never per card.
GALLERY_QUERIES = 9

pytestmark = pytest.mark.django_db


def test_it_works(login_as, cast, team, make_generation):
    old = make_generation(
        prompt="An old lighthouse", created_at=timezone.now() - timedelta(hours=2)
    )
    new = make_generation(
        prompt="A new harbour at dawn",
        creator=cast["alice"],
        status="success",
        video_url="http://testserver/v.mp4",
        last_frame_url="http://testserver/l.png",
        credits_used=200,
    )
    client = login_as(cast["bob"], team)
    response = client.get(reverse("home"))
    assert response.status_code == 200
    html = response.content.decode()
    assert html.index("A new harbour at dawn") < html.index("An old lighthouse")
    assert f'id="g-{new.public_id}"' in html and f'id="g-{old.public_id}"' in html
    # The finished card plays inline with its last frame as poster, download and copy-link.
    assert 'poster="http://testserver/l.png"' in html
    assert 'data-copy="http://testserver/v.mp4"' in html
    assert "download" in html
    # The queued card asks for news every 3 s; the finished one does not.
    card_new = html[
        html.index(f'id="g-{new.public_id}"') - 200 : html.index(f'id="g-{new.public_id}"')
    ]
    assert "every 3s" not in card_new
    assert 'hx-trigger="every 3s"' in html
    assert "Standard" in html and "5 s" in html and "16:9" in html
    assert "bob@example.com" in html  # who made it (no display name set)


def test_it_checks_access(client, login_as, cast, team, make_generation):
    make_generation(prompt="Team secret storyboard")
    # A visitor gets the landing page, with no video of anyone's.
    response = client.get(reverse("home"))
    assert response.status_code == 200
    assert reverse("login") in response.content.decode()
    assert "Team secret storyboard" not in response.content.decode()
    # A stranger asking for the team's workspace gets their own, never the team's videos.
    client = login_as(cast["charlie"], team)
    response = client.get(reverse("home"))
    assert response.status_code == 200
    assert "Team secret storyboard" not in response.content.decode()
    # A viewer sees the team's gallery but no way to generate.
    client = login_as(cast["vera"], team)
    html = client.get(reverse("home")).content.decode()
    assert "Team secret storyboard" in html
    assert reverse("generation_new") not in html


def test_hidden_generations_are_left_out(login_as, cast, team, make_generation):
    make_generation(prompt="Visible one")
    make_generation(prompt="Hidden one", hidden=True)
    html = login_as(cast["bob"], team).get(reverse("home")).content.decode()
    assert "Visible one" in html and "Hidden one" not in html


def test_empty_state_without_a_key(login_as, cast, team):
    html = login_as(cast["alice"], team).get(reverse("home")).content.decode()
    assert "Start with a key" in html
    assert "sandbox" in html.lower()


def test_empty_state_for_a_member_without_a_key(login_as, cast, team):
    html = login_as(cast["bob"], team).get(reverse("home")).content.decode()
    assert "Ask an owner or admin" in html


def test_empty_state_with_a_key(login_as, cast, team, team_key):
    html = login_as(cast["bob"], team).get(reverse("home")).content.decode()
    assert "Make your first video" in html


@pytest.mark.parametrize(
    ("query", "expected", "absent"),
    [
        ({"status": "fail"}, "Failed one", "Done one"),
        ({"status": "in_flight"}, "Generating one", "Done one"),
        ({"model": "seedance2-fast"}, "Fast one", "Done one"),
        ({"q": "FAST ONE"}, "Fast one", "Failed one"),
    ],
)
def test_filters(login_as, cast, team, make_generation, query, expected, absent):
    make_generation(prompt="Done one", status="success")
    make_generation(prompt="Failed one", status="fail")
    make_generation(prompt="Generating one", status="generating")
    make_generation(prompt="Fast one", status="success", model="seedance2-fast")
    html = login_as(cast["bob"], team).get(reverse("home"), query).content.decode()
    assert expected in html
    assert absent not in html


def test_member_and_date_filters(login_as, cast, team, make_generation):
    now = timezone.now()
    make_generation(prompt="Alice recent", creator=cast["alice"], created_at=now)
    make_generation(prompt="Bob recent", creator=cast["bob"], created_at=now)
    make_generation(
        prompt="Bob last year", creator=cast["bob"], created_at=now - timedelta(days=400)
    )
    client = login_as(cast["bob"], team)
    html = client.get(reverse("home"), {"member": cast["alice"].pk}).content.decode()
    assert "Alice recent" in html and "Bob recent" not in html
    since = (now - timedelta(days=30)).date().isoformat()
    html = client.get(reverse("home"), {"date_from": since}).content.decode()
    assert "Bob recent" in html and "Bob last year" not in html
    until = (now - timedelta(days=300)).date().isoformat()
    html = client.get(reverse("home"), {"date_to": until}).content.decode()
    assert "Bob last year" in html and "Bob recent" not in html


@pytest.mark.parametrize(
    "query",
    [
        {"status": "bogus"},
        {"model": "sora"},
        {"member": "abc"},
        {"member": "999999"},
        {"date_from": "yesterday"},
        {"date_from": "2026-02-10", "date_to": "2026-01-01"},
        {"before": "not-a-cursor"},
        {"after": "99999999999999999999999-1"},
        {"q": "x" * 500},
    ],
)
def test_bad_filters_are_explained_not_500(login_as, cast, team, make_generation, query):
    make_generation(prompt="Still listed")
    response = login_as(cast["bob"], team).get(reverse("home"), query)
    assert response.status_code == 200
    html = response.content.decode()
    if "before" not in query and "after" not in query:
        assert "This filter was left out" in html
    assert "Still listed" in html


def test_a_member_of_another_workspace_is_not_a_filter_choice(
    login_as, cast, team, make_generation
):
    make_generation(prompt="Ours")
    response = login_as(cast["bob"], team).get(reverse("home"), {"member": cast["charlie"].pk})
    assert "Not a member of this workspace" in response.content.decode()


def test_keyset_pages(login_as, cast, team, team_key):
    bulk_generations(workspace=team, creators=[cast["bob"]], api_key=team_key, count=PAGE_SIZE + 6)
    client = login_as(cast["bob"], team)
    first = client.get(reverse("home"))
    assert first.context["older_url"] and not first.context["newer_url"]
    first_ids = [g.pk for g in first.context["generations"]]
    assert len(first_ids) == PAGE_SIZE
    second = client.get(reverse("home") + first.context["older_url"])
    second_ids = [g.pk for g in second.context["generations"]]
    assert len(second_ids) == 6 and not set(first_ids) & set(second_ids)
    assert second.context["older_url"] is None and second.context["newer_url"]
    back = client.get(reverse("home") + second.context["newer_url"])
    assert [g.pk for g in back.context["generations"]] == first_ids
    # Newest first across pages.
    times = [g.created_at for g in first.context["generations"] + second.context["generations"]]
    assert times == sorted(times, reverse=True)


def test_same_timestamps_page_without_gaps_or_repeats(login_as, cast, team, team_key):
    moment = timezone.now()
    bulk_generations(
        workspace=team, creators=[cast["bob"]], api_key=team_key, count=PAGE_SIZE * 2 + 3
    )
    from generations.models import Generation

    Generation.objects.filter(workspace=team).update(created_at=moment)
    client = login_as(cast["bob"], team)
    seen, url = [], reverse("home")
    while url:
        response = client.get(url)
        seen += [g.pk for g in response.context["generations"]]
        url = (
            reverse("home") + response.context["older_url"]
            if response.context["older_url"]
            else None
        )
    assert len(seen) == len(set(seen)) == PAGE_SIZE * 2 + 3


def test_query_count_does_not_grow_with_generations(
    login_as, cast, team, team_key, django_assert_max_num_queries
):
    client = login_as(cast["bob"], team)
    bulk_generations(workspace=team, creators=[cast["bob"]], api_key=team_key, count=3)
    with django_assert_max_num_queries(GALLERY_QUERIES):
        assert client.get(reverse("home")).status_code == 200
    bulk_generations(
        workspace=team,
        creators=[cast["alice"], cast["adam"], cast["bob"]],
        api_key=team_key,
        count=60,
    )
    with django_assert_max_num_queries(GALLERY_QUERIES):
        response = client.get(reverse("home"))
    assert len(response.context["generations"]) == PAGE_SIZE


def test_ten_thousand_generations(login_as, cast, team, team_key, django_assert_max_num_queries):
    bulk_generations(
        workspace=team, creators=[cast["alice"], cast["bob"]], api_key=team_key, count=10_000
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE generations_generation")
    # The page query walks the gallery index and stops after one page, whatever the size.
    plan = _filtered_generations(team, {}).order_by("-created_at", "-id")[: PAGE_SIZE + 1].explain()
    assert "gen_gallery" in plan and "Limit" in plan, plan
    client = login_as(cast["bob"], team)
    url = reverse("home")
    for _page in range(3):  # deep into the pages: still one LIMIT query per page
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
        assert response.status_code == 200
        assert len(queries) <= GALLERY_QUERIES
        assert not any("COUNT(" in q["sql"].upper() for q in queries), "no COUNT(*) per page"
        assert len(response.context["generations"]) == PAGE_SIZE
        url = reverse("home") + response.context["older_url"]
    filters = [
        {"status": "fail"},
        {"model": "seedance2-fast", "member": cast["bob"].pk},
        {"q": "number 9999"},
        {"date_from": (timezone.now() - timedelta(days=2)).date().isoformat(), "status": "success"},
    ]
    for query in filters:
        with django_assert_max_num_queries(GALLERY_QUERIES):
            response = client.get(reverse("home"), query)
        assert response.status_code == 200
        assert response.context["generations"]
        if "status" in query:
            assert {g.status for g in response.context["generations"]} == {query["status"]}
    assert [
        g.prompt for g in client.get(reverse("home"), {"q": "number 9999"}).context["generations"]
    ] == ["Bulk video number 9999 of a quiet harbour"]


def test_revoked_key_only_workspace_shows_key_empty_state(login_as, cast, team):
    key = ApiKey(workspace=team, label="Old", revoked_at=timezone.now())
    key.secret = "sk_test_revoked_0001"
    key.save()
    html = login_as(cast["alice"], team).get(reverse("home")).content.decode()
    assert "Start with a key" in html


def test_the_first_page_tells_of_newer_videos(login_as, cast, team, make_generation):
    make_generation(prompt="Older", created_at=timezone.now() - timedelta(minutes=5))
    client = login_as(cast["bob"], team)
    response = client.get(reverse("home"), {"model": "seedance-20"})
    news_url = response.context["news_url"]
    assert 'hx-trigger="every 15s"' in response.content.decode()
    html = client.get(news_url).content.decode()
    assert "new video" not in html and 'hx-trigger="every 15s"' in html  # keeps asking
    make_generation(prompt="A teammate's", creator=cast["alice"])
    make_generation(prompt="Another model", model="seedance2-fast")  # filtered out
    make_generation(prompt="Hidden", hidden=True)
    html = client.get(news_url).content.decode()
    assert "1 new video since you opened this page" in html
    assert "hx-trigger" not in html  # stops once there is news
    assert 'href="/?model=seedance-20"' in html


def test_news_checks_access(client, login_as, cast, team, make_generation):
    make_generation(prompt="Older", created_at=timezone.now() - timedelta(minutes=5))
    url = reverse("gallery_news")
    assert client.get(url, {"since": "1-1"}).status_code == 302
    make_generation(prompt="Team only")
    html = login_as(cast["charlie"], team).get(url, {"since": "1-1"}).content.decode()
    assert "new video" not in html  # a stranger is answered about their own workspace
    assert login_as(cast["bob"], team).get(url, {"since": "junk"}).status_code == 404


postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the trigram index exists on PostgreSQL only"
)


@postgresql_only
def test_the_prompt_search_has_its_trigram_index():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_get_indexdef(c.oid), i.indisvalid FROM pg_class c "
            "JOIN pg_index i ON i.indexrelid = c.oid WHERE c.relname = 'gen_prompt_trgm'"
        )
        ((definition, valid),) = cursor.fetchall()
    # The expression Django renders for prompt__icontains, or the planner cannot use it.
    assert "USING gin" in definition and "upper(prompt) gin_trgm_ops" in definition
    assert valid


@postgresql_only
def test_a_rare_search_uses_the_trigram_index_and_finds_the_right_rows(
    login_as, cast, team, team_key, make_generation
):
    bulk_generations(workspace=team, creators=[cast["bob"]], api_key=team_key, count=3_000)
    wanted = [
        make_generation(prompt="A LIGHTHOUSE keeper at dusk"),
        make_generation(prompt="Two lighthouses, slow pan"),
        make_generation(prompt="the Lighthouse"),
    ]
    make_generation(prompt="A light house in fog")  # two words: not a match
    make_generation(prompt="A lighthouse somewhere else", hidden=True)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE generations_generation")
        # New rows wait in the GIN index's pending list until (auto)vacuum merges them, and the
        # planner prices a read of that whole list into every use of the index: merge now, as
        # autovacuum would have done in a live database long before it held 3 000 rows.
        cursor.execute("SELECT gin_clean_pending_list('gen_prompt_trgm'::regclass)")

    search = {"q": "ightHOUSE"}  # another case, and only part of the word
    plan = _filtered_generations(team, search).order_by("-created_at", "-id")[:PAGE_SIZE].explain()
    assert "gen_prompt_trgm" in plan, plan
    response = login_as(cast["bob"], team).get(reverse("home"), search)
    found = [g.public_id for g in response.context["generations"]]
    assert found == [g.public_id for g in reversed(wanted)]


def test_the_trigram_migration_does_nothing_on_sqlite(tmp_path):
    """The development database (SQLite, `make run`) migrates through it and back."""
    import sqlite3

    from tests.ops.procs import base_env, manage

    database = tmp_path / "dev.sqlite3"
    env = base_env(DATABASE_URL=f"sqlite:///{database}")
    forward = manage("migrate", "generations", "0007", env=env)
    assert forward.returncode == 0, forward.stderr
    assert "Applying generations.0007_prompt_trigram_index... OK" in forward.stdout
    with sqlite3.connect(database) as db:
        indexes = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    assert "gen_gallery" in indexes and "gen_prompt_trgm" not in indexes
    back = manage("migrate", "generations", "0006", env=env)
    assert back.returncode == 0, back.stderr
    assert "Unapplying generations.0007_prompt_trigram_index... OK" in back.stdout
