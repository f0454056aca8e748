"""The createTask body exactly as the seed documents it, and every recordInfo/webhook shape."""

from datetime import UTC, datetime

import pytest
import requests
import responses

import kinovi
from kinovi import InvalidInput, KinoviClient, build_create_body, parse_task, parse_webhook

GOOD = dict(
    model="seedance-20",
    prompt="A serene mountain landscape at golden hour",
    duration=5,
    aspect_ratio="16:9",
    mode="keyframe",
    upscale_4k=False,
)


def test_body_is_the_seed_shape():
    assert build_create_body(**GOOD) == {
        "model": "seedance-20",
        "inputs": {
            "prompt": "A serene mountain landscape at golden hour",
            "duration": "5",
            "aspectRatio": "16:9",
            "mode": "keyframe",
            # Not in the seed's example, but always sent: omitted, Kinovi now renders 1080p.
            "outputResolution": "720p",
        },
    }


@pytest.mark.parametrize(
    ("model", "resolution", "ok"),
    [
        ("seedance-20", "480p", True),
        ("seedance-20", "1080p", True),
        ("seedance2-fast", "720p", True),
        ("seedance2-fast", "1080p", False),
        ("seedance-20", "4k", False),
    ],
)
def test_the_output_resolution_is_always_said_and_checked(model, resolution, ok):
    ask = {**GOOD, "model": model, "output_resolution": resolution}
    if ok:
        assert build_create_body(**ask)["inputs"]["outputResolution"] == resolution
    else:
        with pytest.raises(InvalidInput) as refused:
            build_create_body(**ask)
        assert refused.value.errors[0]["path"] == "inputs.outputResolution"


def test_body_with_4k_and_callback():
    body = build_create_body(
        **{**GOOD, "upscale_4k": True, "duration": 15, "model": "seedance2-fast"},
        callback_url="https://studio.example.com/hooks/kinovi/abc",
    )
    assert body["callBackUrl"] == "https://studio.example.com/hooks/kinovi/abc"
    assert body["inputs"]["upscaleResolution"] == "4k"
    assert body["inputs"]["duration"] == "15"
    assert body["model"] == "seedance2-fast"


@pytest.mark.parametrize(
    "change, path",
    [
        ({"model": "seedance-3"}, "model"),
        ({"prompt": "   "}, "inputs.prompt"),
        ({"prompt": "x" * 4001}, "inputs.prompt"),
        ({"duration": 3}, "inputs.duration"),
        ({"duration": 16}, "inputs.duration"),
        ({"duration": "5"}, "inputs.duration"),
        ({"duration": True}, "inputs.duration"),
        ({"aspect_ratio": "16:10"}, "inputs.aspectRatio"),
        ({"mode": "Keyframe"}, "inputs.mode"),
        ({"upscale_4k": "yes"}, "inputs.upscaleResolution"),
        ({"callback_url": "ftp://x.example/y"}, "callBackUrl"),
    ],
)
@responses.activate
def test_bad_inputs_are_refused_before_anything_is_sent(change, path):
    with pytest.raises(ValueError) as caught:
        KinoviClient("sk_test_1234", base_url="https://kinovi.test/api/v1").create_task(
            **{**GOOD, "callback_url": None, **change}
        )
    assert isinstance(caught.value, kinovi.InvalidRequest)
    assert [e["path"] for e in caught.value.errors] == [path]
    assert len(responses.calls) == 0


def test_prompt_of_exactly_4000_characters_is_fine():
    assert len(build_create_body(**{**GOOD, "prompt": "y" * 4000})["inputs"]["prompt"]) == 4000


def test_parse_record_info_success():
    info = parse_task(
        {
            "taskId": "task_abc",
            "model": "seedance-20",
            "status": "success",
            "creditsUsed": 200,
            "output": [
                {
                    "url": "https://cdn.example/v.mp4",
                    "width": 1280,
                    "height": 720,
                    "mediaType": "video/mp4",
                    "seed": 10792,
                    "lastFrameImage": "https://cdn.example/last.png",
                }
            ],
            "error": None,
            "createTime": 1709900000000,
            "completeTime": 1709900120000,
        }
    )
    assert info.status == "success" and info.is_terminal
    assert info.credits_used == 200
    assert info.output == kinovi.TaskOutput(
        url="https://cdn.example/v.mp4",
        width=1280,
        height=720,
        media_type="video/mp4",
        seed=10792,
        last_frame_url="https://cdn.example/last.png",
    )
    assert info.created_at == datetime(2024, 3, 8, 12, 13, 20, tzinfo=UTC)
    assert (info.completed_at - info.created_at).total_seconds() == 120


def test_parse_output_with_only_a_url():
    info = parse_task({"taskId": "t", "status": "success", "output": [{"url": "https://x/v"}]})
    assert info.output.url == "https://x/v"
    assert info.output.width is None and info.output.seed is None


def test_parse_waiting_has_no_output():
    info = parse_task({"taskId": "t", "status": "waiting", "output": None, "completeTime": None})
    assert info.output is None and info.completed_at is None and not info.is_terminal


def test_parse_webhook_failure_uses_state():
    info = parse_webhook(
        {
            "code": 200,
            "message": "success",
            "data": {
                "taskId": "task_x",
                "orderId": "order_1",
                "model": "seedance-20",
                "state": "fail",
                "creditsUsed": 0,
                "output": None,
                "error": {"code": 2038, "message": "Your input text violates platform rules."},
                "createTime": 1735599634000,
                "completeTime": None,
                "updateTime": 1735599754000,
            },
        }
    )
    assert info.status == "fail"
    assert info.error == kinovi.TaskError(
        code="2038", message="Your input text violates platform rules."
    )
    assert info.credits_used == 0 and info.outputs == [] and info.order_id == "order_1"
    assert info.updated_at == datetime.fromtimestamp(1735599754, tz=UTC)


@pytest.mark.parametrize(
    "data",
    [
        None,
        [],
        {"status": "waiting"},
        {"taskId": "t"},
        {"taskId": "t", "state": "done"},
        {"taskId": "t", "status": "success", "output": "https://x"},
        {"taskId": "t", "status": "fail", "error": 42},
        {"taskId": "t", "status": "success", "createTime": "yesterday"},
    ],
)
def test_parse_refuses_undocumented_shapes(data):
    with pytest.raises(kinovi.MalformedResponse):
        parse_task(data)


def test_client_uses_settings_and_reuses_a_shared_session(settings):
    settings.KINOVI_BASE_URL = "https://kinovi.example/api/v1/"
    settings.KINOVI_CONNECT_TIMEOUT = 1.5
    settings.KINOVI_READ_TIMEOUT = 9.0
    one, two = KinoviClient("sk_a_1111"), KinoviClient("sk_b_2222")
    assert one.base_url == "https://kinovi.example/api/v1"
    assert (one.connect_timeout, one.read_timeout) == (1.5, 9.0)
    assert one.session is two.session  # one connection pool per worker thread
    assert "Authorization" not in one.session.headers  # keys travel per request, never shared
    own = requests.Session()
    assert KinoviClient("sk_c_3333", session=own).session is own
