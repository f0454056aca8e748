"""API tests: the cast's team with a Kinovi key, tokens made through the real service."""

import json

import pytest

from accounts.models import ApiKey, Membership
from api import tokens

SEED_BODY = {
    "model": "seedance-20",
    "inputs": {
        "prompt": (
            "A serene mountain landscape at golden hour, cinematic camera slowly panning right"
        ),
        "duration": "5",
        "aspectRatio": "16:9",
    },
}


@pytest.fixture
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def team_key(cast, team):
    key = ApiKey(workspace=team, label="Team key", is_default=True, created_by=cast["alice"])
    key.secret = "sk_live_team_key_0001"
    key.status = ApiKey.Status.VERIFIED
    key.save()
    return key


@pytest.fixture
def make_token(team):
    """A raw token of `user` for the team (or `workspace`), made by the service."""

    def make(user, *, workspace=None, scopes=("generate", "read"), expires_at=None):
        membership = Membership.objects.get(user=user, workspace=workspace or team)
        _, raw = tokens.create_token(
            membership=membership, name="script", scopes=list(scopes), expires_at=expires_at
        )
        return raw

    return make


class Api:
    """Calls /api/v1/ through Django's test client with a bearer token."""

    def __init__(self, client) -> None:
        self.client = client
        self.client.raise_request_exception = False

    def _headers(self, token, headers):
        out = dict(headers or {})
        if token is not None:
            out["Authorization"] = f"Bearer {token}"
        return out

    def create(self, token, body=None, *, headers=None):
        return self.client.post(
            "/api/v1/jobs/createTask",
            json.dumps(SEED_BODY if body is None else body),
            content_type="application/json",
            headers=self._headers(token, headers),
        )

    def record(self, token, task_id, *, headers=None):
        return self.client.get(
            "/api/v1/jobs/recordInfo", {"taskId": task_id}, headers=self._headers(token, headers)
        )

    def jobs(self, token, **params):
        return self.client.get("/api/v1/jobs", params, headers=self._headers(token, None))

    def cancel(self, token, task_id):
        return self.client.post(
            "/api/v1/jobs/cancel",
            json.dumps({"taskId": task_id}),
            content_type="application/json",
            headers=self._headers(token, None),
        )


@pytest.fixture
def api(client):
    return Api(client)
