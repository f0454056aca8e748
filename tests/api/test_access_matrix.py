"""Who may do what with a token: scopes × roles × expiry × revocation × removal × tenancy.

Every row makes its token through the service, changes the world as the case says (a role
changed after the token was made, the member removed, the token revoked or expired), then
calls the endpoint over the test client and checks the HTTP status and that a refusal made
no generation.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Membership, Role
from api.models import ApiToken
from api.vendor import task_id
from generations.models import Generation

pytestmark = pytest.mark.django_db


@pytest.fixture
def teammate_task(cast, team, team_key):
    return Generation.objects.create(
        workspace=team,
        creator=cast["alice"],
        api_key=team_key,
        prompt="Alice's storyboard",
        estimated_credits=200,
        status="waiting",
        task_id="task-alice-1",
    )


def _demote(cast, team, who):
    Membership.objects.filter(user=cast[who], workspace=team).update(role=Role.VIEWER)


def _remove(cast, team, who):
    Membership.objects.filter(user=cast[who], workspace=team).delete()


def _revoke(cast, team, who):
    ApiToken.objects.filter(user=cast[who]).update(revoked_at=timezone.now())


def _expire(cast, team, who):
    ApiToken.objects.filter(user=cast[who]).update(expires_at=timezone.now() - timedelta(seconds=1))


BOTH = ("generate", "read")
# (case, who, scopes, what happens after the token is made, create status, record status)
MATRIX = [
    ("owner", "alice", BOTH, None, 200, 200),
    ("admin", "adam", BOTH, None, 200, 200),
    ("member", "bob", BOTH, None, 200, 200),
    ("viewer", "vera", BOTH, None, 403, 200),
    ("member with read only", "bob", ("read",), None, 403, 200),
    ("member with generate only", "bob", ("generate",), None, 200, 403),
    ("viewer with read only", "vera", ("read",), None, 403, 200),
    ("member made viewer afterwards", "bob", BOTH, _demote, 403, 200),
    ("member removed afterwards", "bob", BOTH, _remove, 401, 401),
    ("revoked token", "bob", BOTH, _revoke, 401, 401),
    ("expired token", "bob", BOTH, _expire, 401, 401),
    ("owner's revoked token", "alice", BOTH, _revoke, 401, 401),
]


@pytest.mark.parametrize(
    ("who", "scopes", "then", "create_status", "record_status"),
    [pytest.param(*row[1:], id=row[0]) for row in MATRIX],
)
def test_token_acts_with_its_owners_current_standing(
    api, cast, team, teammate_task, make_token, who, scopes, then, create_status, record_status
):
    token = make_token(cast[who], scopes=scopes)
    if then is not None:
        then(cast, team, who)
    before = Generation.objects.count()

    created = api.create(token)
    read = api.record(token, task_id(teammate_task))

    assert created.status_code == create_status, created.content
    assert read.status_code == record_status, read.content
    assert Generation.objects.count() == before + (1 if create_status == 200 else 0)
    if create_status == 200:
        made = Generation.objects.get(public_id=created.json()["taskId"].removeprefix("gen_"))
        assert made.creator == cast[who] and made.workspace == team
    for response in (created, read):
        if response.status_code != 200:
            body = response.json()
            assert body["code"] == response.status_code and body["message"]
        if response.status_code == 401:
            assert response["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer kst_not-a-real-token", "Basic a3N0Xzp4", "Bearer sk_live_x1234"],
    ids=["absent", "empty", "no token", "unknown kst", "basic", "kinovi-shaped"],
)
def test_anything_but_a_valid_token_is_401(client, team_key, authorization):
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = client.get("/api/v1/jobs", headers=headers)
    assert response.status_code == 401
    assert response.json()["code"] == 401


def test_another_workspaces_task_is_404_never_403(api, cast, team, teammate_task, make_token):
    charlie = cast["charlie"]
    personal = Membership.objects.get(user=charlie).workspace
    token = make_token(charlie, workspace=personal)
    unknown = "gen_" + "0" * 32

    for response in (
        api.record(token, task_id(teammate_task)),
        api.cancel(token, task_id(teammate_task)),
        api.record(token, unknown),
        api.record(token, str(teammate_task.public_id)),
    ):
        assert response.status_code == 404, response.content
        assert "storyboard" not in response.content.decode()
    assert Generation.objects.get(pk=teammate_task.pk).status == "waiting"
    listed = api.jobs(token).json()["data"]
    assert all(item["taskId"] != task_id(teammate_task) for item in listed)


def test_a_malformed_task_id_is_400_with_the_field(api, cast, make_token, team_key):
    token = make_token(cast["bob"])
    for value in ("task_123", "gen_zz", "x" * 100):
        response = api.record(token, value)
        assert response.status_code == 400
        assert response.json()["errors"][0]["path"] == "taskId"
    missing = api.client.get(
        "/api/v1/jobs/recordInfo", headers={"Authorization": f"Bearer {token}"}
    )
    assert missing.status_code == 400


def test_a_session_is_not_a_token(client, login_as, cast, team, team_key):
    login_as(cast["alice"], team)
    assert client.get("/api/v1/jobs").status_code == 401
    response = client.post(
        "/api/v1/jobs/createTask", {"model": "seedance-20"}, content_type="application/json"
    )
    assert response.status_code == 401
    assert not Generation.objects.exists()


def test_last_use_time_and_address_are_recorded(api, cast, make_token, team_key):
    token = make_token(cast["bob"])
    row = ApiToken.objects.get(user=cast["bob"])
    assert row.last_used_at is None

    api.jobs(token)

    row.refresh_from_db()
    assert row.last_used_at is not None and row.last_used_ip == "127.0.0.1"


def test_last_use_is_written_once_a_minute_unless_the_address_changes(
    api, cast, make_token, team_key, time_machine
):
    token = make_token(cast["bob"])
    api.jobs(token)
    first = ApiToken.objects.get().last_used_at

    api.jobs(token)
    assert ApiToken.objects.get().last_used_at == first  # within the minute: no write
    api.client.get(
        "/api/v1/jobs", REMOTE_ADDR="10.9.8.7", headers={"Authorization": f"Bearer {token}"}
    )
    row = ApiToken.objects.get()
    assert row.last_used_ip == "10.9.8.7" and row.last_used_at > first
    time_machine.move_to(row.last_used_at + timedelta(minutes=1, seconds=1))
    api.client.get(
        "/api/v1/jobs", REMOTE_ADDR="10.9.8.7", headers={"Authorization": f"Bearer {token}"}
    )
    assert ApiToken.objects.get().last_used_at > row.last_used_at
