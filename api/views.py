"""The Kinovi-compatible endpoints under /api/v1/, authenticated by personal access tokens.

Every answer is JSON in the vendor's shapes: errors carry `code` and `message` (400 adds
`errors: [{path, message}]`, 402 `required` and `available`, 429 a Retry-After header).
A task of another workspace is a 404, like an unknown one: its existence is not confirmed.
"""

import json
from functools import wraps

from django.db import transaction
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from api import idempotency, listing, ratelimit, tokens, vendor, webhooks
from api.models import Callback, Scope
from api.openapi import document
from generations import services
from generations.forms import usable_keys
from generations.models import Generation

MAX_BODY_BYTES = 64 * 1024
KEY_HEADER = "X-Studio-Key"


class ApiError(Exception):
    def __init__(self, status: int, message: str, *, headers=None, **extra) -> None:
        super().__init__(message)
        self.status, self.message, self.headers, self.extra = status, message, headers, extra

    def response(self) -> JsonResponse:
        body = {"code": self.status, "message": self.message, **self.extra}
        return JsonResponse(body, status=self.status, headers=self.headers)


def _answer(data: dict, status: int = 200, headers=None) -> JsonResponse:
    response = JsonResponse(data, status=status, headers=headers)
    response["Cache-Control"] = "no-store"
    return response


def _check_access(caller: tokens.Caller, scope: str) -> None:
    if not caller.token.has_scope(scope):
        raise ApiError(403, f"This API key lacks the {scope} scope.")
    if scope == Scope.GENERATE and not caller.membership.can_generate:
        raise ApiError(
            403,
            "Viewers can look but not generate. Ask an owner or admin for the member role.",
        )


def _authorize(request, scope: str) -> tokens.Caller:
    try:
        caller = tokens.authenticate(
            tokens.bearer_token(request.headers.get("Authorization", "")),
            address=request.META.get("REMOTE_ADDR"),
        )
    except tokens.TokenRefused as exc:
        raise ApiError(401, exc.message, headers={"WWW-Authenticate": "Bearer"}) from None
    verdict = ratelimit.hit(caller.token.pk)
    if not verdict.allowed:
        raise ApiError(
            429,
            f"Rate limit reached: at most {verdict.limit} requests a minute for this API key.",
            headers={"Retry-After": str(verdict.retry_after)},
            limit=verdict.limit,
            current=verdict.count,
        )
    _check_access(caller, scope)
    return caller


def _check_query(request, allowed: frozenset) -> None:
    # A misspelt filter must not silently widen the answer (the vendor's habit with inputs).
    unknown = sorted(set(request.GET) - allowed)
    if unknown:
        raise ApiError(
            400,
            f"Unknown query parameter {unknown[0][:40]!r}.",
            errors=[{"path": name[:40], "message": "unknown parameter"} for name in unknown],
        )


def endpoint(method: str, scope: str, query: frozenset = frozenset()):
    """Decorator: one HTTP method, a token with `scope`, only the `query` parameters named,
    ApiError answered as JSON."""

    def decorator(view):
        @csrf_exempt
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if request.method != method:
                return ApiError(405, f"Use {method}.", headers={"Allow": method}).response()
            try:
                caller = _authorize(request, scope)
                _check_query(request, query)
                return view(request, caller, *args, **kwargs)
            except ApiError as exc:
                return exc.response()

        return wrapper

    return decorator


def _json_body(request):
    if len(request.body) > MAX_BODY_BYTES:
        raise ApiError(400, "The request body is too large.", errors=[])
    try:
        return json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError):
        raise ApiError(
            400, "The request body is not valid JSON.", errors=[{"path": "", "message": "not JSON"}]
        ) from None


def _task_for(caller: tokens.Caller, raw) -> Generation:
    if raw in (None, ""):
        raise ApiError(
            400, "taskId is required.", errors=[{"path": "taskId", "message": "required"}]
        )
    public_id = vendor.parse_task_id(raw)
    if public_id is None:
        raise ApiError(
            400, "Invalid taskId.", errors=[{"path": "taskId", "message": "not a task id"}]
        )
    generation = Generation.objects.filter(
        workspace_id=caller.membership.workspace_id, public_id=public_id
    ).first()
    if generation is None:
        raise ApiError(404, "No such task.")
    return generation


# --- createTask ---------------------------------------------------------------------------------


def _choose_key(request, caller: tokens.Caller):
    keys = usable_keys(caller.membership.workspace)
    named = request.headers.get(KEY_HEADER, "").strip()
    if named:
        key = keys.filter(label=named).first()
        if key is None:
            raise ApiError(
                400,
                f"This workspace has no usable Kinovi key labelled “{named[:100]}”.",
                errors=[{"path": f"header {KEY_HEADER}", "message": "unknown key label"}],
            )
        return key
    key = keys.first()
    if key is None:
        raise ApiError(
            403, "This workspace has no usable Kinovi key: an owner or admin must add one."
        )
    return key


def _refusal(exc: services.SubmissionRefused) -> ApiError:
    """402 when the budget is what refused (with required and available), else 400."""
    if exc.over_budget is not None:
        over = exc.over_budget
        return ApiError(402, exc.message, required=over.required, available=over.available)
    return ApiError(400, exc.message, errors=[{"path": "", "message": exc.message}])


def _submit(caller: tokens.Caller, api_key, params: vendor.CreateRequest) -> Generation:
    """The generation, queued by the studio's service, with its callback if one was given."""
    with transaction.atomic():
        generation = _queue(caller, api_key, params)
        if params.callback_url:
            Callback.objects.create(
                generation=generation, token=caller.token, url=params.callback_url
            )
    return generation


def _queue(caller: tokens.Caller, api_key, params: vendor.CreateRequest) -> Generation:
    try:
        return services.submit(
            membership=caller.membership,
            api_key=api_key,
            model=params.model,
            prompt=params.prompt,
            duration=params.duration,
            aspect_ratio=params.aspect_ratio,
            mode=params.mode,
            upscale_4k=params.upscale_4k,
        )
    except services.SubmissionRefused as exc:
        raise _refusal(exc) from None


@endpoint("POST", Scope.GENERATE)
def create_task(request, caller: tokens.Caller):
    body = _json_body(request)
    params, errors = vendor.read_create_body(body)
    if errors:
        raise ApiError(
            400, "Invalid parameters: " + "; ".join(e["message"] for e in errors), errors=errors
        )
    reason = params.callback_url and webhooks.refusal(params.callback_url, resolve=False)
    if reason:
        raise ApiError(
            400,
            f"callBackUrl refused: {reason}.",
            errors=[{"path": "callBackUrl", "message": reason}],
        )
    api_key = _choose_key(request, caller)
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return _answer({"taskId": vendor.task_id(_submit(caller, api_key, params))})
    if not idempotency.valid_key(key):
        raise ApiError(
            400,
            "Idempotency-Key must be 1 to 255 printable characters.",
            errors=[{"path": "header Idempotency-Key", "message": "invalid"}],
        )
    try:
        generation, replayed = idempotency.create_once(
            token=caller.token,
            key=key,
            digest=idempotency.body_hash(body, api_key.pk),
            create=lambda: _submit(caller, api_key, params),
        )
    except idempotency.KeyReused:
        raise ApiError(
            409, "This Idempotency-Key was already used with a different request body."
        ) from None
    headers = {"Idempotent-Replayed": "true"} if replayed else None
    return _answer({"taskId": vendor.task_id(generation)}, headers=headers)


# --- reading and canceling ----------------------------------------------------------------------


@endpoint("GET", Scope.READ, frozenset({"taskId"}))
def record_info(request, caller: tokens.Caller):
    return _answer(vendor.record_info(_task_for(caller, request.GET.get("taskId"))))


@endpoint("POST", Scope.GENERATE)
def cancel(request, caller: tokens.Caller):
    body = _json_body(request)
    generation = _task_for(caller, body.get("taskId") if isinstance(body, dict) else None)
    membership = caller.membership
    if generation.creator_id != membership.user_id and not membership.can_manage_members:
        raise ApiError(403, "Only its creator or a workspace owner or admin can cancel it.")
    try:
        generation = services.cancel(generation=generation, membership=membership)
    except services.ActionRefused as exc:
        raise ApiError(409, exc.message) from None
    return _answer(vendor.record_info(generation))


@csrf_exempt
def openapi(request):
    return JsonResponse(document(request), json_dumps_params={"indent": 1})


@endpoint("GET", Scope.READ, listing.PARAMETERS)
def jobs(request, caller: tokens.Caller):
    try:
        data = listing.page(
            workspace_id=caller.membership.workspace_id,
            user_id=caller.membership.user_id,
            params=request.GET,
        )
    except listing.BadFilter as exc:
        raise ApiError(
            400, exc.message, errors=[{"path": exc.path, "message": exc.message}]
        ) from None
    return _answer(data)
