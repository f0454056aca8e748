"""Structured logs: one JSON line per request and per job event, and never a key in any line."""

import io
import json
import logging
import uuid

import pytest
from django.test import RequestFactory
from django.urls import ResolverMatch, reverse

from kinovi_site.logging import (
    JOB_LOGGER,
    REQUEST_LOGGER,
    JsonFormatter,
    MaskSecretsFilter,
    TextFormatter,
    log_job,
)
from kinovi_site.middleware import loggable_path

CANARY = "sk_live_CANARY7f3a9c21d4e8b6"
BEARER_CANARY = "eyJhbGciOiJIUzI1NiJ9.CANARYpayload.sig"


@pytest.fixture
def captured():
    """Lines as the production handler writes them: masked by the filter, JSON formatted."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(MaskSecretsFilter())
    root = logging.getLogger()
    root.addHandler(handler)

    def lines(logger_name: str | None = None) -> list[dict]:
        parsed = [json.loads(x) for x in stream.getvalue().splitlines() if x]
        return [x for x in parsed if logger_name is None or x["logger"] == logger_name]

    lines.raw = stream.getvalue  # type: ignore[attr-defined]
    yield lines
    root.removeHandler(handler)


def test_one_json_line_per_request_with_user_and_workspace(cast, team, login_as, captured):
    client = login_as(cast["bob"], team)

    response = client.get("/?q=" + CANARY)

    assert response.status_code == 200
    (line,) = captured(REQUEST_LOGGER)
    assert line["method"] == "GET"
    assert line["path"] == "/"  # never the query string
    assert line["route"] == ""
    assert line["status"] == 200
    assert line["user_id"] == cast["bob"].pk
    assert line["workspace_id"] == team.pk
    assert line["request_id"] == response["X-Request-ID"]
    assert isinstance(line["duration_ms"], float)
    assert CANARY not in captured.raw()


def test_anonymous_requests_have_no_user_and_add_no_query(client, db, captured):
    response = client.get("/login/")

    (line,) = captured(REQUEST_LOGGER)
    assert line["status"] == response.status_code == 200
    assert line["user_id"] is None and line["workspace_id"] is None


def test_a_sane_incoming_request_id_is_kept_and_garbage_is_replaced(client, db, captured):
    kept = client.get("/login/", HTTP_X_REQUEST_ID="lb-0123456789abcdef")
    replaced = client.get("/login/", HTTP_X_REQUEST_ID="bad id\nwith newline" + "x" * 80)

    assert kept["X-Request-ID"] == "lb-0123456789abcdef"
    assert len(replaced["X-Request-ID"]) == 32 and "\n" not in replaced["X-Request-ID"]
    ids = [x["request_id"] for x in captured(REQUEST_LOGGER)]
    assert ids == [kept["X-Request-ID"], replaced["X-Request-ID"]]


def test_log_job_writes_one_line_with_the_generation_id(captured):
    log_job("poll.done", generation_id=42, status="success", calls=3)

    (line,) = captured(JOB_LOGGER)
    assert line["message"] == "poll.done"
    assert line["event"] == "poll.done"
    assert line["generation_id"] == 42
    assert line["status"] == "success" and line["calls"] == 3
    assert line["level"] == "INFO"


def test_a_key_never_reaches_a_line_however_it_is_logged(captured):
    logger = logging.getLogger("kinovi.client")
    logger.warning("createTask with %s", CANARY)
    logger.warning("headers %r", {"Authorization": f"Bearer {BEARER_CANARY}"})
    logger.warning("plain Authorization: Bearer %s sent", BEARER_CANARY)
    log_job("submit.failed", generation_id=7, key=CANARY, detail=[f"Bearer {BEARER_CANARY}"])
    try:
        raise RuntimeError(f"Kinovi refused key {CANARY}")
    except RuntimeError:
        logger.exception("submit crashed")
    logger.error("bad format %s %s", CANARY)  # a broken call must not leak its arguments

    text = captured.raw()
    assert CANARY not in text
    assert "CANARYpayload" not in text
    assert text.count("[masked]") >= 6
    lines = captured()
    assert len(lines) == 6
    assert "RuntimeError: Kinovi refused key sk_[masked]" in lines[4]["exc"]


def test_the_configured_console_handler_masks_too():
    # The handler settings.LOGGING installs (with its filter and formatter), not a test double.
    (console,) = [
        h
        for h in logging.getLogger().handlers
        if any(isinstance(f, MaskSecretsFilter) for f in h.filters)
    ]
    stream = io.StringIO()
    previous = console.setStream(stream)
    try:
        logging.getLogger("generations.tasks").warning("retrying with key %s", CANARY)
    finally:
        console.setStream(previous)

    assert "retrying with key sk_[masked]" in stream.getvalue()
    assert CANARY not in stream.getvalue()


def test_text_format_has_the_fields_and_masks():
    record = logging.LogRecord("kinovi.job", logging.INFO, __file__, 1, "poll.done", None, None)
    record.fields = {"generation_id": 5, "key": CANARY}
    MaskSecretsFilter().filter(record)

    line = TextFormatter().format(record)

    assert 'poll.done generation_id=5 key="sk_[masked]"' in line
    assert CANARY not in line


def test_credential_like_url_arguments_are_masked_in_the_path():
    request = RequestFactory().post("/hooks/kinovi/3f1c/AbCdEf0123456789TOKEN/?x=1")
    request.resolver_match = ResolverMatch(
        lambda r: None,
        (),
        {"public_id": "3f1c", "token": "AbCdEf0123456789TOKEN"},
        route="hooks/kinovi/<public_id>/<token>/",
    )

    assert loggable_path(request) == "/hooks/kinovi/3f1c/[masked]/"


def test_the_webhook_token_never_reaches_the_request_line(client, db, captured):
    token = "TOKENCANARY-" + "x" * 32
    url = reverse("kinovi-webhook", kwargs={"public_id": uuid.uuid4(), "token": token})

    response = client.post(url, data="{}", content_type="application/json")

    assert response.status_code == 404
    (line,) = captured(REQUEST_LOGGER)
    assert line["path"].endswith("/[masked]/")
    assert "TOKENCANARY" not in captured.raw()


def test_a_callback_url_in_any_message_loses_its_token(captured):
    url = f"https://studio.example.com/hooks/kinovi/{uuid.uuid4()}/TOKENCANARY-abcdef0123/"

    logging.getLogger("generations.tasks").info("sending callBackUrl %s", url)

    (line,) = captured("generations.tasks")
    assert line["message"].endswith("/[masked]/")
    assert "TOKENCANARY" not in captured.raw()


def test_healthy_probes_are_not_logged_but_failing_ones_are(client, db, captured):
    from django.utils import timezone

    from generations.models import Heartbeat

    failing = client.get("/healthz")  # no cluster has ever beaten
    Heartbeat.objects.create(name=Heartbeat.TICKER, beat_at=timezone.now())
    healthy = client.get("/healthz")

    assert (failing.status_code, healthy.status_code) == (503, 200)
    lines = captured(REQUEST_LOGGER)
    assert [(x["path"], x["status"]) for x in lines] == [("/healthz", 503)]


def test_the_json_formatter_masks_even_without_the_filter():
    record = logging.LogRecord(
        "x", logging.WARNING, __file__, 1, 'sent {"Authorization": "Bearer %s"}', (CANARY,), None
    )
    record.fields = {"nested": {"headers": [f"Bearer {BEARER_CANARY}"]}}

    line = JsonFormatter().format(record)

    assert CANARY not in line and "CANARYpayload" not in line
    assert json.loads(line)["nested"] == {"headers": ["Bearer [masked]"]}
