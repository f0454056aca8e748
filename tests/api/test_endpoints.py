"""createTask, recordInfo, jobs and cancel: the vendor's shapes from the studio's data."""

import base64
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import ApiKey, Membership
from api import vendor
from api.models import ApiToken
from generations.models import Generation, Status
from tests.api.conftest import SEED_BODY

pytestmark = pytest.mark.django_db


@pytest.fixture
def bob_token(cast, make_token, team_key):
    return make_token(cast["bob"])


def _body(**inputs):
    body = json.loads(json.dumps(SEED_BODY))
    body["inputs"].update(inputs)
    return body


def test_the_seed_body_queues_a_generation_with_the_default_key(api, bob_token, cast, team_key):
    response = api.create(bob_token)

    assert response.status_code == 200
    task = response.json()["taskId"]
    assert task.startswith("gen_") and set(response.json()) == {"taskId"}
    made = Generation.objects.get()
    assert (made.model, made.duration, made.aspect_ratio, made.mode) == (
        "seedance-20",
        5,
        "16:9",
        "keyframe",
    )
    assert made.prompt == SEED_BODY["inputs"]["prompt"] and made.api_key == team_key
    assert made.creator == cast["bob"] and made.status == Status.QUEUED
    assert made.estimated_credits == 200


@pytest.mark.parametrize(
    ("body", "path"),
    [
        (_body(prompt=""), "inputs.prompt"),
        (_body(prompt="x" * 4001), "inputs.prompt"),
        (_body(duration="3"), "inputs.duration"),
        (_body(duration="16"), "inputs.duration"),
        (_body(duration="five"), "inputs.duration"),
        (_body(aspectRatio="2:1"), "inputs.aspectRatio"),
        (_body(mode="omni"), "inputs.mode"),
        (_body(upscaleResolution="8k"), "inputs.upscaleResolution"),
        (_body(outputResolution="480p"), "inputs.outputResolution"),
        (_body(urls=["https://example.com/a.png"]), "inputs.urls"),
        ({**SEED_BODY, "model": "seedance-1"}, "model"),
        ({"model": "seedance-20"}, "inputs"),
        ({**SEED_BODY, "callBackUrl": "ftp://x"}, "callBackUrl"),
        ({**SEED_BODY, "callBackUrl": ""}, "callBackUrl"),
        (_body(seed=[]), "inputs.seed"),
        ([1, 2], ""),
        (_body(prompt="A fox\x00 at dawn"), "inputs.prompt"),
        (_body(prompt="A fox \ud800 at dawn"), "inputs.prompt"),
        ({**SEED_BODY, "callBackUrl": "https://example.com/\x00"}, "callBackUrl"),
    ],
)
def test_bad_bodies_are_400_with_vendor_paths(api, bob_token, body, path):
    response = api.create(bob_token, body)
    assert response.status_code == 400, response.content
    data = response.json()
    assert data["code"] == 400 and path in [e["path"] for e in data["errors"]]
    assert not Generation.objects.exists()


def test_not_json_is_400(api, bob_token):
    response = api.client.post(
        "/api/v1/jobs/createTask",
        b"{not json",
        content_type="application/json",
        headers={"Authorization": f"Bearer {bob_token}"},
    )
    assert response.status_code == 400 and response.json()["code"] == 400


def test_integer_duration_and_4k_are_accepted(api, bob_token):
    response = api.create(bob_token, _body(duration=15, upscaleResolution="4k"))
    assert response.status_code == 200
    made = Generation.objects.get()
    assert made.duration == 15 and made.upscale_4k and made.estimated_credits == 1020


def test_over_the_budget_is_402_with_required_and_available(api, bob_token, team):
    team.monthly_budget_credits = 300
    team.save()
    assert api.create(bob_token).status_code == 200  # 200 of 300

    response = api.create(bob_token)

    assert response.status_code == 402
    data = response.json()
    assert (data["code"], data["required"], data["available"]) == (402, 200, 100)
    assert Generation.objects.count() == 1


def test_a_members_cap_is_402_too(api, bob_token, cast, team):
    Membership.objects.filter(user=cast["bob"], workspace=team).update(monthly_cap_credits=150)
    response = api.create(bob_token)
    assert response.status_code == 402
    assert (response.json()["required"], response.json()["available"]) == (200, 150)


def test_a_key_named_by_header(api, bob_token, team, cast):
    other = ApiKey(workspace=team, label="Second", created_by=cast["alice"])
    other.secret = "sk_live_second_0002"
    other.save()

    assert api.create(bob_token, headers={"X-Studio-Key": "Second"}).status_code == 200
    assert Generation.objects.get().api_key == other
    response = api.create(bob_token, headers={"X-Studio-Key": "Nope"})
    assert response.status_code == 400 and Generation.objects.count() == 1


def test_no_usable_key_is_refused(api, bob_token, team_key):
    team_key.revoked_at = timezone.now()
    team_key.save()
    response = api.create(bob_token)
    assert response.status_code == 403 and "no usable Kinovi key" in response.json()["message"]


def _generation(team, cast, key, **fields):
    values = {
        "workspace": team,
        "creator": cast["bob"],
        "api_key": key,
        "prompt": "p",
        "estimated_credits": 200,
    }
    values.update(fields)
    return Generation.objects.create(**values)


@pytest.mark.parametrize(
    ("fields", "status", "credits", "error_code"),
    [
        ({"status": Status.QUEUED}, "waiting", 200, None),
        ({"status": Status.SUBMITTING}, "waiting", 200, None),
        ({"status": Status.WAITING}, "waiting", 200, None),
        ({"status": Status.GENERATING}, "generating", 200, None),
        ({"status": Status.STALLED}, "generating", 200, None),
        ({"status": Status.UNKNOWN}, "waiting", 200, None),
        ({"status": Status.FAIL, "credits_used": 200, "error_code": "2038"}, "fail", 200, "2038"),
        ({"status": Status.REJECTED, "error_code": "400"}, "fail", 0, "400"),
        ({"status": Status.CANCELED}, "fail", 0, "canceled"),
    ],
)
def test_record_info_speaks_the_vendors_vocabulary(
    api, bob_token, team, cast, team_key, fields, status, credits, error_code
):
    generation = _generation(team, cast, team_key, **fields)
    data = api.record(bob_token, vendor.task_id(generation)).json()
    assert data["status"] == status and data["creditsUsed"] == credits
    assert data["output"] is None
    assert (data["error"] or {}).get("code") == error_code
    assert data["createTime"] == int(generation.created_at.timestamp() * 1000)


def test_record_info_of_a_success(api, bob_token, team, cast, team_key):
    done = timezone.now()
    generation = _generation(
        team,
        cast,
        team_key,
        status=Status.SUCCESS,
        credits_used=210,
        video_url="https://cdn.example.com/v.mp4",
        width=1280,
        height=720,
        seed=7,
        last_frame_url="https://cdn.example.com/last.png",
        completed_at=done,
    )
    data = api.record(bob_token, vendor.task_id(generation)).json()
    assert data == {
        "taskId": vendor.task_id(generation),
        "model": "seedance-20",
        "status": "success",
        "creditsUsed": 210,
        "output": [
            {
                "url": "https://cdn.example.com/v.mp4",
                "width": 1280,
                "height": 720,
                "mediaType": "video/mp4",
                "seed": 7,
                "lastFrameImage": "https://cdn.example.com/last.png",
            }
        ],
        "error": None,
        "createTime": int(generation.created_at.timestamp() * 1000),
        "completeTime": int(done.timestamp() * 1000),
        "studioStatus": "success",
    }


def test_jobs_pages_with_a_cursor_and_filters(api, bob_token, team, cast, team_key):
    start = timezone.now()
    made = [
        _generation(
            team,
            cast,
            team_key,
            created_at=start - timedelta(seconds=i),
            status=Status.SUCCESS if i % 2 else Status.QUEUED,
            creator=cast["bob"] if i < 5 else cast["alice"],
        )
        for i in range(7)
    ]
    seen, cursor = [], None
    while True:
        params = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        page = api.jobs(bob_token, **params).json()
        seen += [item["taskId"] for item in page["data"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == [vendor.task_id(g) for g in made]
    success = api.jobs(bob_token, status="success").json()["data"]
    assert {i["taskId"] for i in success} == {vendor.task_id(g) for g in made[1::2]}
    mine = api.jobs(bob_token, creator="me", status="waiting").json()["data"]
    assert {i["taskId"] for i in mine} == {vendor.task_id(made[i]) for i in (0, 2, 4)}
    huge = base64.urlsafe_b64encode(json.dumps([start.isoformat(), 10**30]).encode()).decode()
    naive = base64.urlsafe_b64encode(json.dumps(["2026-01-01T00:00:00", 1]).encode()).decode()
    for bad in (
        {"limit": "0"},
        {"limit": "²"},
        {"limit": ""},
        {"status": "done"},
        {"status": ""},
        {"cursor": "garbage!"},
        {"cursor": huge},
        {"cursor": naive},
        {"creator": "x"},
        {"statuss": "success"},
    ):
        response = api.jobs(bob_token, **bad)
        assert response.status_code == 400 and response.json()["errors"], bad


def test_cancel_before_submission_only(api, bob_token, team, cast, team_key):
    queued = _generation(team, cast, team_key, status=Status.QUEUED)
    sent = _generation(team, cast, team_key, status=Status.WAITING, task_id="t-1")

    response = api.cancel(bob_token, vendor.task_id(queued))
    assert response.status_code == 200
    assert response.json()["status"] == "fail" and response.json()["error"]["code"] == "canceled"
    assert Generation.objects.get(pk=queued.pk).status == Status.CANCELED
    late = api.cancel(bob_token, vendor.task_id(sent))
    assert late.status_code == 409
    assert Generation.objects.get(pk=sent.pk).status == Status.WAITING


def test_cancel_of_a_teammates_task_needs_a_manager(api, cast, team, team_key, make_token):
    alices = _generation(team, cast, team_key, status=Status.QUEUED, creator=cast["alice"])
    response = api.cancel(make_token(cast["bob"]), vendor.task_id(alices))
    assert response.status_code == 403
    assert api.cancel(make_token(cast["adam"]), vendor.task_id(alices)).status_code == 200


def test_wrong_method_is_405_json(api, bob_token):
    response = api.client.get(
        "/api/v1/jobs/createTask", headers={"Authorization": f"Bearer {bob_token}"}
    )
    assert response.status_code == 405 and response["Allow"] == "POST"


def test_openapi_document_is_3_1_and_lists_the_paths(client):
    document = client.get("/api/v1/openapi.json").json()
    assert document["openapi"] == "3.1.0"
    assert set(document["paths"]) == {
        "/jobs/createTask",
        "/jobs/recordInfo",
        "/jobs",
        "/jobs/cancel",
    }


def test_tokens_unused_rows_are_not_touched_by_reading(api, bob_token):
    api.jobs(bob_token)
    assert ApiToken.objects.get().revoked_at is None
