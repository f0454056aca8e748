"""schemathesis against /api/v1/openapi.json (bounded): no 5xx, every answer as documented.

The studio answers on the live server (a real HTTP server, as a script sees it), with a real
token of a member of a workspace that has a Kinovi key (nothing reaches Kinovi: no cluster).
Each operation gets valid and invalid requests generated from the document; schemathesis's
pytest plugin does not load under this pytest, so the strategies are driven by hypothesis.
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi import checks

from generations.models import Generation

ALWAYS = [
    not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]
# "Invalid data is refused" is checked on bodies only: in a query, schemathesis's extra
# parameter is often one whose value is null, which no HTTP client sends, so the request
# that arrives is a valid one (its own reproduction shows it) and a 200 is right.
WITH_BODY = [*ALWAYS, checks.negative_data_rejection]
EXAMPLES = 30  # per operation and mode: bounded, a few seconds each


@pytest.fixture
def api_schema(settings, live_server, transactional_db):
    settings.SITE_URL = live_server.url  # the document's server
    settings.API_RATE_LIMIT_PER_MINUTE = 100_000
    return schemathesis.openapi.from_url(f"{live_server.url}/api/v1/openapi.json")


@pytest.fixture
def bearer(cast, make_token, team_key):
    return {"Authorization": f"Bearer {make_token(cast['bob'])}"}


def operations(schema):
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_the_api_keeps_its_documented_promises(api_schema, bearer, mode):
    found = operations(api_schema)
    assert {op.label for op in found} == {
        "POST /jobs/createTask",
        "GET /jobs/recordInfo",
        "GET /jobs",
        "POST /jobs/cancel",
    }
    for operation in found:
        fuzz(operation, bearer, mode)


def fuzz(operation, bearer: dict, mode) -> None:
    """EXAMPLES generated requests of one operation, each sent and checked."""
    checks_here = WITH_BODY if operation.method.upper() == "POST" else ALWAYS

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def run(case):
        case.call_and_validate(headers=bearer, checks=checks_here)

    run()


def test_the_fuzzing_reaches_the_studio(api_schema, bearer, client):
    """The token works: a documented request makes a generation (the fuzzing above would
    otherwise only ever see 401s)."""
    response = client.post(
        "/api/v1/jobs/createTask",
        {"model": "seedance2-fast", "inputs": {"prompt": "x"}},
        content_type="application/json",
        headers=bearer,
    )
    assert response.status_code == 200 and Generation.objects.count() == 1
