"""The OpenAPI 3.1 document of /api/v1/, written by hand next to the views it describes."""

from django.conf import settings

from api.vendor import UNSUPPORTED_INPUTS
from generations.models import AspectRatio, Model

ERROR = {
    "type": "object",
    "required": ["code", "message"],
    "properties": {
        "code": {"type": "integer"},
        "message": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["path", "message"],
                "properties": {"path": {"type": "string"}, "message": {"type": "string"}},
            },
        },
        "required": {"type": "integer"},
        "available": {"type": "integer"},
        "limit": {"type": "integer"},
        "current": {"type": "integer"},
    },
}

CREATE_BODY = {
    "type": "object",
    "required": ["model", "inputs"],
    "properties": {
        "model": {"type": "string", "enum": list(Model.values)},
        "callBackUrl": {
            "type": "string",
            "format": "uri",
            "pattern": "^https?://",
            "description": "Receives the signed completion webhook; private and loopback "
            "addresses are refused unless the deployment allows them.",
        },
        "inputs": {
            "type": "object",
            "required": ["prompt"],
            "properties": {
                # At least one character that is not a space: a blank prompt is refused.
                "prompt": {"type": "string", "minLength": 1, "maxLength": 4000, "pattern": "\\S"},
                "duration": {
                    "type": "string",
                    "enum": [str(n) for n in range(4, 16)],
                    "default": "5",
                },
                "aspectRatio": {
                    "type": "string",
                    "enum": list(AspectRatio.values),
                    "default": "16:9",
                },
                "mode": {"type": "string", "enum": ["keyframe", "reference"]},
                "upscaleResolution": {"type": "string", "enum": ["4k"]},
                # The vendor's newer inputs the studio cannot pass on: refused when given.
                **{
                    name: {"type": "null", "description": "Not supported by the studio."}
                    for name in UNSUPPORTED_INPUTS
                },
            },
        },
    },
}

TASK = {
    "type": "object",
    "required": ["taskId", "model", "status", "creditsUsed", "output", "error", "createTime"],
    "properties": {
        "taskId": {"type": "string"},
        "model": {"type": "string"},
        "status": {"type": "string", "enum": ["waiting", "generating", "success", "fail"]},
        "studioStatus": {"type": "string"},
        "creditsUsed": {"type": "integer"},
        "output": {
            "type": ["array", "null"],
            "items": {
                "type": "object",
                "required": ["url"],
                "properties": {
                    "url": {"type": "string"},
                    "width": {"type": ["integer", "null"]},
                    "height": {"type": ["integer", "null"]},
                    "mediaType": {"type": "string"},
                    "seed": {"type": "integer"},
                    "lastFrameImage": {"type": "string"},
                },
            },
        },
        "error": {
            "type": ["object", "null"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        },
        "createTime": {"type": "integer"},
        "completeTime": {"type": ["integer", "null"]},
    },
}


def _errors(*codes: int) -> dict:
    meanings = {
        400: "Invalid parameters",
        401: "Missing, invalid, revoked or expired API key",
        402: "The workspace's or the member's monthly budget does not cover it",
        403: "The key lacks the scope, or its owner's role does not allow it",
        404: "No such task in this workspace",
        409: "Conflict (idempotency key reused with another body, or too late to cancel)",
        429: "Rate limit of the key reached; see Retry-After",
        500: "Server error; retry later",
    }
    return {
        str(code): {
            "description": meanings[code],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        for code in codes
    }


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_STATUS = "(waiting|generating|success|fail)"
STATUS_LIST = f"^{_STATUS}(,{_STATUS})*$"
TASK_ID_QUERY = {
    "name": "taskId",
    "in": "query",
    "required": True,
    "schema": {"type": "string"},
}
TASK_REF = {"$ref": "#/components/schemas/Task"}


def _create_task() -> dict:
    return {
        "post": {
            "operationId": "createTask",
            "summary": "Create a video task (queued by the studio, charged once accepted)",
            "description": "An optional X-Studio-Key header names (by label) the "
            "workspace's Kinovi key to use instead of its default.",
            "parameters": [
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "description": "The same key and body within 24 hours answer the same "
                    "task, charged once; another body with the key is a 409.",
                    "schema": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": 255,
                        "pattern": "^[\\x20-\\x7e]+$",
                    },
                },
            ],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": CREATE_BODY}},
            },
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "required": ["taskId"],
                        "properties": {"taskId": {"type": "string"}},
                    },
                    "The task was queued",
                ),
                **_errors(400, 401, 402, 403, 409, 429, 500),
            },
        }
    }


def _record_info() -> dict:
    return {
        "get": {
            "operationId": "recordInfo",
            "summary": "The status of a task, in the vendor's shape",
            "parameters": [TASK_ID_QUERY],
            "responses": {
                "200": _json(TASK_REF, "The task"),
                **_errors(400, 401, 403, 404, 429, 500),
            },
        }
    }


def _list_jobs() -> dict:
    return {
        "get": {
            "operationId": "listJobs",
            "summary": "The workspace's tasks, newest first (studio extension)",
            "parameters": [
                {
                    "name": "status",
                    "in": "query",
                    "description": "Comma-separated vendor statuses.",
                    "schema": {"type": "string", "pattern": STATUS_LIST},
                },
                {"name": "model", "in": "query", "schema": {"enum": list(Model.values)}},
                {"name": "creator", "in": "query", "schema": {"enum": ["me"]}},
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 100},
                },
                {
                    "name": "cursor",
                    "in": "query",
                    "description": "nextCursor of the previous page.",
                    "schema": {"type": "string"},
                },
            ],
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "required": ["data", "nextCursor"],
                        "properties": {
                            "data": {"type": "array", "items": TASK_REF},
                            "nextCursor": {"type": ["string", "null"]},
                        },
                    },
                    "One page of tasks",
                ),
                **_errors(400, 401, 403, 429, 500),
            },
        }
    }


def _cancel() -> dict:
    return {
        "post": {
            "operationId": "cancelTask",
            "summary": "Cancel a task the studio has not sent yet (studio extension)",
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["taskId"],
                            "properties": {"taskId": {"type": "string"}},
                        }
                    }
                },
            },
            "responses": {
                "200": _json(TASK_REF, "The canceled task"),
                **_errors(400, 401, 403, 404, 409, 429, 500),
            },
        }
    }


def _paths() -> dict:
    return {
        "/jobs/createTask": _create_task(),
        "/jobs/recordInfo": _record_info(),
        "/jobs": _list_jobs(),
        "/jobs/cancel": _cancel(),
    }


def document(request=None) -> dict:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Kinovi Studio API",
            "version": "1.0.0",
            "description": (
                "The Kinovi API as the studio speaks it: the vendor's paths, bodies and "
                "answers, with personal access tokens (kst_…) in place of the Kinovi key. "
                "Everything the studio adds applies: budgets, the fair queue, the ledger."
            ),
        },
        "servers": [{"url": f"{settings.SITE_URL}/api/v1"}],
        "security": [{"bearer": []}],
        "paths": _paths(),
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": ERROR, "Task": TASK},
        },
    }
