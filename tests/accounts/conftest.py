"""Fixtures for the accounts tests: a tiny local stand-in for Kinovi, keys, invitations."""

import json
import time
from http.server import BaseHTTPRequestHandler

import pytest

from accounts.models import ApiKey, Invitation
from tests.localserver import LocalKinovi

CANARY = "sk_live_CANARY1234567890"


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    # The cast's five accounts would otherwise spend seconds in PBKDF2 for every test.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


class FakeKinovi(LocalKinovi):
    """Answers recordInfo the way a test asks: 401, 404, 400, 500, or too slowly."""

    def __init__(self) -> None:
        self.mode = "404"
        self.requests: list[dict] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the name http.server calls
                fake.requests.append(
                    {"path": self.path, "authorization": self.headers.get("Authorization")}
                )
                if fake.mode == "slow":
                    time.sleep(1.0)
                    status, body = 404, {"message": "Task not found"}
                elif fake.mode == "401":
                    status, body = 401, {"message": "Invalid API key"}
                elif fake.mode == "400":
                    status, body = 400, {"message": "Invalid taskId"}
                elif fake.mode == "500":
                    status, body = 500, {"message": "Server error"}
                else:
                    status, body = 404, {"message": "Task not found"}
                payload = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting, as the slow mode intends

            def log_message(self, *args):
                pass

        self.serve(Handler)


@pytest.fixture
def kinovi(settings):
    """A local HTTP server playing Kinovi; the project's client is pointed at it."""
    with FakeKinovi() as fake:
        settings.KINOVI_BASE_URL = fake.url
        settings.KINOVI_CONNECT_TIMEOUT = 1.0
        settings.KINOVI_READ_TIMEOUT = 0.3
        yield fake


@pytest.fixture
def make_key(db):
    def make(workspace, *, label="Main", secret="sk_test_abcdefgh1234", **extra):
        key = ApiKey(workspace=workspace, label=label, **extra)
        key.secret = secret
        key.save()
        return key

    return make


@pytest.fixture
def make_invitation(db):
    def make(workspace, email, *, role="member", invited_by=None, **extra):
        token, token_hash = Invitation.new_token()
        invitation = Invitation.objects.create(
            workspace=workspace,
            email=email,
            role=role,
            token_hash=token_hash,
            invited_by=invited_by,
            **extra,
        )
        return invitation, token

    return make
