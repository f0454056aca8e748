"""The sandbox's HTTP face: createTask and recordInfo as Kinovi speaks them, and its media files.

These views are the fake vendor, not the studio: they authenticate by Bearer key against
sandbox accounts and never touch a workspace, so `accounts.access` does not apply here.
"""

import json

from django.http import Http404, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from mediakit.http import ranged_response
from sandbox import services
from sandbox.media import RenderFailed, ensure_rendered
from sandbox.models import SandboxTask

MAX_BODY_BYTES = 64 * 1024


def _error(exc: services.SandboxError) -> JsonResponse:
    response = JsonResponse(exc.body, status=exc.status)
    if exc.retry_after is not None:
        response["Retry-After"] = str(exc.retry_after)
    return response


def _base(request) -> str:
    return request.build_absolute_uri("/").rstrip("/")


@csrf_exempt
def create_task(request):
    if request.method != "POST":
        return JsonResponse({"message": "Use POST."}, status=405, headers={"Allow": "POST"})
    try:
        fault = services.take_fault(endpoint="createTask")
        if fault:
            raise fault
        account = services.authenticate(request.headers.get("Authorization", ""))
        if len(request.body) > MAX_BODY_BYTES:
            raise services.SandboxError(400, {"message": "The request body is too large."})
        try:
            body = json.loads(request.body or b"null")
        except (ValueError, UnicodeDecodeError):
            raise services.SandboxError(
                400, {"message": "The request body is not valid JSON."}
            ) from None
        inputs = services.validate_create(body)
        services.settle_finished(account=account, fetch=False)
        task = services.create_task(account=account, inputs=inputs, public_base=_base(request))
    except services.SandboxError as exc:
        return _error(exc)
    return JsonResponse({"taskId": task.task_id})


@csrf_exempt
@require_GET
def record_info(request):
    try:
        fault = services.take_fault(endpoint="recordInfo")
        if fault:
            raise fault
        account = services.authenticate(request.headers.get("Authorization", ""))
        task = services.get_task(account=account, task_id=request.GET.get("taskId"))
        services.settle_finished(account=account)
        body = services.record_body(task, base=_base(request))
    except services.SandboxError as exc:
        return _error(exc)
    except RenderFailed:
        return JsonResponse({"message": "Internal server error (rendering failed)."}, status=500)
    return JsonResponse(body)


def _media(request, task_id: str, which: str, content_type: str):
    # Output URLs are public like a CDN's: the unguessable task id is the capability.
    task = SandboxTask.objects.filter(task_id=task_id).first()
    if task is None or task.outcome != SandboxTask.Outcome.SUCCESS:
        raise Http404("No such sandbox output.")
    if task.media_expired_at is not None:
        # As the vendor's URLs after its 14 days of keeping (services.expire_media).
        raise Http404("This sandbox output has expired.")
    if services.check_materials(task).status_at(timezone.now()) != "success":
        raise Http404("This sandbox task has not finished yet.")
    video, last_frame = ensure_rendered(task)
    path = video if which == "video" else last_frame
    return _ranged_file(request, path, content_type)


def _ranged_file(request, path, content_type: str) -> HttpResponse:
    """The file, honouring one `Range: bytes=a-b` so browsers can seek in the video."""
    return ranged_response(request, path.open("rb"), path.stat().st_size, content_type)


@require_GET
def video(request, task_id: str):
    return _media(request, task_id, "video", "video/mp4")


@require_GET
def last_frame(request, task_id: str):
    return _media(request, task_id, "last_frame", "image/png")
