"""A canary key is never found anywhere but in its encrypted column, whatever fails.

The canary is workspace A's Kinovi key. A scripted Kinovi on a real socket answers with
failures that echo the key back (401, 500, 400 field errors, a body that is not JSON), or
not in time; a real django-q2 cluster runs the jobs. Then the canary is looked for in every
page, log record (root logger at DEBUG, and the cluster's own output), every row of every
table (django-q2's task, result and queue rows decoded), the admin, and the error report
e-mailed to the admins when a view raises.
"""

import json
import logging
import re
import time
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

import pytest
from django.apps import apps
from django.contrib import admin
from django.core import mail
from django.urls import reverse
from django.utils.log import AdminEmailHandler

from accounts.models import ApiKey, hash_token
from api import views as api_views
from generations import queue, services
from generations.models import Generation, Status, WebhookDelivery
from tests.localserver import LocalKinovi
from tests.security.conftest import CANARY

# A key need not look like `sk_…` (the log filter's pattern): a canary of another shape shows
# whether the code itself keeps the key out, not only the last-line masking.
SHAPELESS_CANARY = "KvCanary9f8e7d6c5b4aX31"
# Pieces long enough to be recognised (a leak of part of a key is a leak).
CANARY_PARTS = [
    *(CANARY, CANARY[8:], CANARY[:-4]),
    *(SHAPELESS_CANARY, SHAPELESS_CANARY[2:], SHAPELESS_CANARY[:-4]),
]


@pytest.fixture(params=[CANARY, SHAPELESS_CANARY], ids=["sk-shaped", "shapeless"])
def canary(request):
    return request.param


def assert_no_canary(text: str, where: str) -> None:
    for part in CANARY_PARTS:
        assert part not in text, f"the canary key leaked into {where}"


class EchoingKinovi(LocalKinovi):
    """A careless Kinovi: its errors quote the Authorization header they were sent.

    createTask answers by a marker in the prompt; recordInfo by the task id.
    """

    def __init__(self) -> None:
        self.calls: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self, status: int, body, *, delay: float = 0.0) -> None:
                if delay:
                    time.sleep(delay)
                payload = body if isinstance(body, bytes) else json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.send_header("X-Echo-Authorization", self.headers.get("Authorization"))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client stopped waiting, as a timeout means

            def _fault(self, marker: str, auth: str, task_id: str = "t-new"):
                echo = f"Key {auth} is not valid for this account"
                return {
                    "401": (401, {"code": 401, "message": echo}),
                    "403": (403, {"code": 403, "message": f"API access disabled for {auth}"}),
                    "500": (500, {"code": 500, "message": f"Internal error (auth={auth})"}),
                    "400": (
                        400,
                        {
                            "code": 400,
                            "message": "Invalid parameters",
                            "errors": [{"path": "inputs.prompt", "message": echo}],
                        },
                    ),
                    "garbage": (200, f"<html>upstream proxy error {auth}</html>".encode()),
                    "slow": (200, {"code": 200, "data": {"taskId": task_id}}),
                }[marker]

            def do_POST(self):  # noqa: N802 - the name http.server calls
                auth = self.headers.get("Authorization", "")
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                fake.calls.append("createTask")
                marker = re.search(r"\[(\w[\w-]*)\]", raw.decode(errors="replace"))
                marker = marker.group(1) if marker else "ok"
                if marker.startswith("ok"):
                    # A task whose polls then fail: "ok-401" is polled as t-401, and so on.
                    task_id = "t-" + (marker.split("-", 1)[1] if "-" in marker else "500")
                    return self._answer(200, {"code": 200, "data": {"taskId": task_id}})
                status, body = self._fault(marker, auth)
                self._answer(status, body, delay=2.0 if marker == "slow" else 0.0)

            def do_GET(self):  # noqa: N802
                auth = self.headers.get("Authorization", "")
                task_id = parse_qs(urlsplit(self.path).query).get("taskId", [""])[0]
                fake.calls.append(f"recordInfo {task_id}")
                marker = task_id.removeprefix("t-")
                if marker not in {"401", "403", "500", "400", "garbage", "slow"}:
                    marker = "500"
                status, body = self._fault(marker, auth, task_id)
                self._answer(status, body, delay=2.0 if marker == "slow" else 0.0)

            def log_message(self, *args):
                pass

        self.serve(Handler)


@pytest.fixture
def echoing_kinovi(settings):
    with EchoingKinovi() as fake:
        settings.KINOVI_BASE_URL = fake.url
        settings.KINOVI_CONNECT_TIMEOUT = 1.0
        settings.KINOVI_READ_TIMEOUT = 0.5
        yield fake


@pytest.fixture
def superuser(world):
    root = world["cast"]["alice"]
    root.is_staff = root.is_superuser = True
    root.save()
    return root


def every_row_text() -> list[tuple[str, str]]:
    """(table, row) for every row of every table, django-q2's pickled columns decoded."""
    rows = []
    for model in apps.get_models():
        for row in model.objects.all().values_list():
            rows.append((model._meta.db_table, repr(row)))
    return rows


def queue_payloads() -> list[str]:
    """What django-q2's broker holds (the ORM table or the Redis list), decoded from the
    signed, pickled task packages."""
    from django_q.brokers import get_broker
    from django_q.models import OrmQ
    from django_q.signing import SignedPackage

    broker = get_broker()
    if hasattr(broker.connection, "lrange"):  # Redis
        raw = broker.connection.lrange(broker.list_key, 0, -1)
    else:
        raw = [q.payload for q in OrmQ.objects.all()]
    return [repr(SignedPackage.loads(payload)) for payload in raw]


def admin_pages(client) -> list[tuple[str, str]]:
    """Every admin changelist and the change page of every row it lists."""
    pages = []
    for model in admin.site._registry:
        info = (model._meta.app_label, model._meta.model_name)
        url = reverse("admin:{}_{}_changelist".format(*info))
        response = client.get(url)
        assert response.status_code == 200, url
        pages.append((url, response.content.decode()))
        for pk in model.objects.values_list("pk", flat=True)[:20]:
            change = reverse("admin:{}_{}_change".format(*info), args=[pk])
            response = client.get(change)
            assert response.status_code in (200, 302), change
            pages.append((change, response.content.decode()))
    return pages


# --- the whole system under failures, with a real cluster ---------------------------------------


def outcomes() -> dict:
    return dict(Generation.objects.values_list("prompt", "status"))


FAULTS = {
    "401 on create": "[401]",
    "403 on create": "[403]",
    "500 on create": "[500]",
    "400 field errors echoing the key": "[400]",
    "a body that is not JSON": "[garbage]",
    "read timeout on create": "[slow]",
    "401 on poll (key revoked mid-flight)": "[ok-401]",
    "500 on poll": "[ok-500]",
    "not JSON on poll": "[ok-garbage]",
    "timeout on poll": "[ok-slow]",
}


@pytest.mark.cluster
def test_the_canary_survives_every_failure_unseen(
    world, canary, superuser, start_q_cluster, settings, caplog, client
):
    caplog.set_level(logging.DEBUG)  # the root logger, everything propagating to it
    with EchoingKinovi() as kinovi:
        settings.KINOVI_BASE_URL = kinovi.url
        settings.KINOVI_READ_TIMEOUT = 0.5
        team, key = world["team"], world["key"]
        from accounts.models import Membership

        bob = Membership.objects.get(user=world["cast"]["bob"], workspace=team)

        def submit(case):
            return services.submit(
                membership=bob,
                api_key=key,
                model="seedance-20",
                prompt=f"A lantern festival {FAULTS[case]}",
                duration=5,
                aspect_ratio="16:9",
                mode="keyframe",
                upscale_4k=False,
            )

        def settle(*, record_infos: int = 0, timeout: float = 40) -> None:
            deadline = time.monotonic() + timeout
            while (
                Generation.objects.filter(status__in=[Status.QUEUED, Status.SUBMITTING]).exists()
                or sum(c.startswith("recordInfo") for c in kinovi.calls) < record_infos
                or WebhookDelivery.objects.filter(processed_at__isnull=True, error="").exists()
            ):
                assert time.monotonic() < deadline, (kinovi.calls, outcomes())
                time.sleep(0.2)

        # A 401 or 403 marks the key unusable and cancels what waits: those come last.
        key_breakers = {"401 on create", "403 on create", "401 on poll (key revoked mid-flight)"}
        made = {case: submit(case) for case in FAULTS if case not in key_breakers}
        # Before any worker runs, the queue holds the submit jobs: ids only, no key.
        payloads = queue_payloads()
        assert payloads, "the jobs were not queued to the ORM broker"
        for payload in payloads:
            assert_no_canary(payload, "a queued django-q2 package")

        cluster = start_q_cluster(
            KINOVI_BASE_URL=kinovi.url, KINOVI_READ_TIMEOUT="0.5", LOG_LEVEL="DEBUG"
        )
        settle()
        # Polls of the accepted ones, each through its failing recordInfo...
        polled = [made[c] for c in made if FAULTS[c].startswith("[ok-")]
        for generation in polled:
            queue.poll(generation.pk)
        # ...and a webhook whose confirmation (recordInfo) fails the same way.
        target = made["500 on poll"]
        token = "canary-webhook-token-0123456789abcdef0123"
        Generation.objects.filter(pk=target.pk).update(callback_token_hash=hash_token(token))
        client.raise_request_exception = False
        response = client.post(
            f"/hooks/kinovi/{target.public_id}/{token}/",
            {"data": {"taskId": "t-500", "state": "success"}},
            content_type="application/json",
            headers={"Authorization": f"Bearer {canary}"},
        )
        assert response.status_code == 200, outcomes()
        settle(record_infos=len(polled) + 1)
        # Last, the failures that condemn the key (401/403 on create, then 401 on a poll);
        # each finds the key usable again, as after an owner's re-check.
        for case in ("401 on create", "403 on create"):
            ApiKey.objects.filter(pk=key.pk).update(status=ApiKey.Status.VERIFIED)
            submit(case)
            settle()
        ApiKey.objects.filter(pk=key.pk).update(status=ApiKey.Status.VERIFIED)
        revoked = submit("401 on poll (key revoked mid-flight)")
        settle()
        queue.poll(revoked.pk)
        settle(record_infos=len(polled) + 2)
        deadline = time.monotonic() + 10
        while ApiKey.objects.get(pk=key.pk).status != ApiKey.Status.INVALID:
            assert time.monotonic() < deadline, "a 401 on a poll did not mark the key invalid"
            time.sleep(0.2)
        time.sleep(1.0)  # let the workers record their results
        cluster_log = cluster.log_path.read_text(errors="replace")

    states = outcomes()
    assert states["A lantern festival [401]"] == Status.REJECTED
    assert states["A lantern festival [500]"] == Status.UNKNOWN
    assert states["A lantern festival [slow]"] == Status.UNKNOWN
    assert len(kinovi.calls) >= len(FAULTS) + 5
    assert ApiKey.objects.get(pk=key.pk).secret == canary  # the key itself is intact

    # Pages: the gallery, every generation's page and card, the keys page, every admin page.
    client.force_login(superuser, backend="django.contrib.auth.backends.ModelBackend")
    session = client.session
    session["workspace_id"] = team.pk
    session.save()
    pages = [("/", client.get("/").content.decode())]
    pages.append(("/keys/", client.get("/keys/").content.decode()))
    pages.append(("/usage/", client.get("/usage/").content.decode()))
    for generation in Generation.objects.all():
        for name in ("generation_detail", "generation_card"):
            url = reverse(name, args=[generation.public_id])
            response = client.get(url)
            assert response.status_code == 200, url
            pages.append((url, response.content.decode()))
    pages += admin_pages(client)
    for url, body in pages:
        assert_no_canary(body, url)

    # Every row of every table, django-q2's tasks, results and queue included.
    from django_q.models import Task

    assert Task.objects.count() >= len(FAULTS), "the cluster recorded no task rows"
    for table, row in every_row_text():
        if table == ApiKey._meta.db_table:
            row = row.replace(ApiKey.objects.get(pk=key.pk).secret_ciphertext, "")
        assert_no_canary(row, f"a row of {table}")
    for payload in queue_payloads():
        assert_no_canary(payload, "a queued django-q2 package")

    # Logs: this process's records and the cluster's own output.
    for record in caplog.records:
        assert_no_canary(record.getMessage(), f"a log record of {record.name}")
        assert_no_canary(repr(record.args), f"a log record's args ({record.name})")
        assert_no_canary(repr(getattr(record, "fields", "")), f"log fields ({record.name})")
        if record.exc_info:
            assert_no_canary(logging.Formatter().formatException(record.exc_info), record.name)
    assert_no_canary(caplog.text, "the captured log")
    assert "Kinovi" in cluster_log or "poll" in cluster_log  # the cluster did log its work
    assert_no_canary(cluster_log, "the cluster's log")


# --- error reports e-mailed to the admins -------------------------------------------------------


@pytest.fixture
def admin_mail(settings):
    """Error reports as production sends them (Django's own mail_admins handler, DEBUG off,
    ADMINS set), plus the HTML flavour with every frame's local variables."""
    settings.DEBUG = False
    settings.ADMINS = [("Ops", "ops@example.com")]
    handler = AdminEmailHandler(include_html=True)
    logger = logging.getLogger("django.request")
    logger.addHandler(handler)
    yield mail.outbox
    logger.removeHandler(handler)


def report_text(message) -> str:
    parts = [message.subject, message.body]
    parts += [content for content, _ in getattr(message, "alternatives", [])]
    return "\n".join(parts)


def test_an_error_report_while_adding_the_key_carries_no_canary(
    world, canary, admin_mail, login_as, client, monkeypatch, echoing_kinovi
):
    from accounts import services as account_services

    def broken(**kwargs):
        raise RuntimeError("the audit table is gone")

    monkeypatch.setattr(account_services, "log_action", broken)
    login_as(world["cast"]["alice"], world["team"])
    client.raise_request_exception = False

    response = client.post(
        "/keys/",
        {"label": "Canary", "secret": canary},
        headers={"Authorization": f"Bearer {canary}", "X-Api-Key": canary},
    )

    assert response.status_code == 500
    assert_no_canary(response.content.decode(), "the 500 page")
    assert admin_mail, "no error report was e-mailed"
    report = "\n".join(report_text(message) for message in admin_mail)
    assert "the audit table is gone" in report and "add_key" in report  # a real traceback
    assert_no_canary(report, "the e-mailed error report")


def test_an_error_report_from_inside_the_kinovi_client_carries_no_canary(
    world, admin_mail, login_as, client, monkeypatch, echoing_kinovi
):
    """A key check that raises from inside the client: frames hold the decrypted key, the
    client and the headers it would send, yet the report shows none of them."""
    import kinovi

    def explode(self, *args, **kwargs):
        headers = {"Authorization": f"Bearer {self._api_key}"}  # noqa: F841 - in the frame
        raise RuntimeError("unexpected failure inside the client")

    monkeypatch.setattr(kinovi.KinoviClient, "record_info", explode)
    login_as(world["cast"]["alice"], world["team"])
    client.raise_request_exception = False

    response = client.post(reverse("recheck_key", args=[world["key"].pk]))

    assert response.status_code == 500
    assert_no_canary(response.content.decode(), "the 500 page")
    assert admin_mail, "no error report was e-mailed"
    report = "\n".join(report_text(message) for message in admin_mail)
    assert "unexpected failure inside the client" in report and "verify_key" in report
    assert_no_canary(report, "the e-mailed error report")


# --- the studio's own API tokens ----------------------------------------------------------------


def assert_no_token(text: str, raw: str, where: str) -> None:
    for part in (raw, raw[8:], raw[:-4], raw[12:]):
        assert part not in text, f"the API token leaked into {where}"


def test_an_api_token_is_seen_once_and_never_again(
    world,
    superuser,
    admin_mail,
    login_as,
    client,
    caplog,
    monkeypatch,
    django_capture_on_commit_callbacks,
):
    """Made on its page, used for good and bad calls and for a call whose view raises: the
    token is then in no page, log record, row, queued job or error report."""
    caplog.set_level(logging.DEBUG)
    login_as(world["cast"]["bob"], world["team"])
    made = client.post(
        reverse("api_tokens"), {"name": "Canary script", "scopes": ["generate", "read"]}
    )
    raw = re.search(r"kst_[A-Za-z0-9_-]{43}", made.content.decode()).group(0)
    client.logout()
    auth = {"Authorization": f"Bearer {raw}"}
    client.raise_request_exception = False
    body = {
        "model": "seedance-20",
        "inputs": {"prompt": "A canary in a coal mine", "duration": "5"},
    }
    with django_capture_on_commit_callbacks(execute=True):
        created = client.post(
            "/api/v1/jobs/createTask", body, content_type="application/json", headers=auth
        )
    assert created.status_code == 200, created.content
    task = created.json()["taskId"]
    answers = [
        client.get("/api/v1/jobs/recordInfo", {"taskId": task}, headers=auth),
        client.get("/api/v1/jobs", {"limit": "0"}, headers=auth),
        client.post("/api/v1/jobs/createTask", b"{", content_type="application/json", headers=auth),
        client.get("/api/v1/jobs", headers={"Authorization": f"Bearer {raw}x"}),
    ]
    assert [a.status_code for a in answers] == [200, 400, 400, 401]

    def broken(**kwargs):
        raise RuntimeError("the queue table is gone")

    monkeypatch.setattr(api_views.services, "submit", broken)
    failed = client.post(
        "/api/v1/jobs/createTask", body, content_type="application/json", headers=auth
    )
    assert failed.status_code == 500
    report = "\n".join(report_text(message) for message in admin_mail)
    assert "the queue table is gone" in report and "create_task" in report
    assert_no_token(report, raw, "the e-mailed error report")

    for answer in [created, *answers, failed]:
        assert_no_token(answer.content.decode(), raw, "an API answer")
    client.force_login(superuser, backend="django.contrib.auth.backends.ModelBackend")
    session = client.session
    session["workspace_id"] = world["team"].pk
    session.save()
    pages = [(url, client.get(url).content.decode()) for url in ("/api-tokens/", "/api-docs/", "/")]
    pages += admin_pages(client)
    for url, page in pages:
        assert_no_token(page, raw, url)
    for table, row in every_row_text():
        assert_no_token(row, raw, f"a row of {table}")
    payloads = queue_payloads()
    assert payloads, "the submission was not queued"
    for payload in payloads:
        assert_no_token(payload, raw, "a queued django-q2 package")
    for record in caplog.records:
        assert_no_token(record.getMessage(), raw, f"a log record of {record.name}")
        assert_no_token(repr(getattr(record, "fields", "")), raw, f"log fields ({record.name})")
    assert_no_token(caplog.text, raw, "the captured log")
