"""A scripted Kinovi on 127.0.0.1: a tiny threaded HTTP server whose answers are set per call.

Faults a real server produces on cue (a 500, a 429 with or without Retry-After, an answer
that never comes in time, a connection reset after the request was read, a malformed body,
a 401 for a revoked key) are played for real over a socket, so the project's client, jobs and
state machine see exactly what they would see from Kinovi. Every call is recorded with its
start and end time, so tests count createTask calls and check that polls never overlap.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

from tests.localserver import LocalKinovi

CREATE = "createTask"
RECORD = "recordInfo"


@dataclass
class Call:
    endpoint: str
    task_id: str  # recordInfo's taskId, or the id handed out by createTask ("" if none)
    body: dict | None
    authorization: str
    started: float
    ended: float = 0.0
    answer: str = ""  # what the script did: "200", "500", "reset", "timeout", ...


@dataclass
class Reply:
    """One scripted answer. `delay` holds it back (longer than the read timeout: a timeout)."""

    status: int = 200
    body: object = None  # a dict is sent as JSON, bytes/str as they are
    headers: dict = field(default_factory=dict)
    delay: float = 0.0
    reset: bool = False  # read the request, then close the connection with a TCP RST
    hold: threading.Event | None = None  # answer only once this is set (or the server stops)
    # Pass the request on to the upstream Kinovi (the sandbox) first: with `reset` or a long
    # `delay` the task really exists and is charged there, but its answer never reaches us.
    forward: bool = False


def task_body(task_id: str, status: str, *, credits: int = 200) -> dict:
    """recordInfo's documented answer for a task in `status`."""
    body = {
        "taskId": task_id,
        "model": "seedance-20",
        "status": status,
        "creditsUsed": credits,
        "output": None,
        "error": None,
        "createTime": 1709900000000,
        "completeTime": None,
    }
    if status == "success":
        body["output"] = [
            {
                "url": f"https://cdn.kinovi.test/{task_id}.mp4",
                "width": 1280,
                "height": 720,
                "mediaType": "video/mp4",
                "seed": 10792,
            }
        ]
        body["completeTime"] = 1709900120000
    elif status == "fail":
        body["error"] = {"code": "500", "message": "Internal error while generating the video."}
        body["completeTime"] = 1709900120000
    return body


class ScriptedKinovi(LocalKinovi):
    """Answers queued per endpoint; when a queue is empty, the default for that endpoint.

    Defaults: createTask hands out `task_1`, `task_2`, …; recordInfo says `success`. Serves
    inside `with`; leaving it releases held and delayed answers first, then stops the server.
    """

    def __init__(self, *, upstream: str | None = None) -> None:
        self.upstream = upstream.rstrip("/") if upstream else None
        # Callables (endpoint, body, task_id) -> Reply | None, asked before the queues: for
        # answers that depend on the request (a prompt), whatever order jobs run in.
        self.rules: list = []
        self.calls: list[Call] = []
        self._scripts: dict[str, deque] = {CREATE: deque(), RECORD: deque()}
        self._lock = threading.Lock()
        self._created = 0
        self.record_default = "success"
        self.stopping = threading.Event()
        self.request_seen = threading.Condition(self._lock)
        self.serve(self._handler())

    # -- scripting --

    def script(self, endpoint: str, *replies: Reply | int) -> None:
        with self._lock:
            for reply in replies:
                self._scripts[endpoint].append(
                    Reply(status=reply) if isinstance(reply, int) else reply
                )

    def calls_to(self, endpoint: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.endpoint == endpoint]

    def wait_for_calls(self, endpoint: str, count: int, timeout: float = 10.0) -> list[Call]:
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                calls = [c for c in self.calls if c.endpoint == endpoint]
                if len(calls) >= count:
                    return calls
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{len(calls)} {endpoint} calls, expected {count}")
                self.request_seen.wait(left)

    def __exit__(self, *exc):
        # A held or delayed answer would keep its handler thread waiting past the test.
        self.stopping.set()
        return super().__exit__(*exc)

    # -- serving --

    def _next(self, endpoint: str, task_id: str, body) -> tuple[Reply, str]:
        with self._lock:
            ruled = [r for r in (rule(endpoint, body, task_id) for rule in self.rules) if r]
            if ruled:
                reply = ruled[0]
            elif self._scripts[endpoint]:
                reply = self._scripts[endpoint].popleft()
            elif self.upstream:
                reply = Reply(forward=True)
            elif endpoint == CREATE:
                reply = Reply(200, None)
            else:
                reply = Reply(200, task_body(task_id, self.record_default))
            if (
                endpoint == CREATE
                and reply.status == 200
                and reply.body is None
                and not reply.reset
                and not reply.forward
            ):
                self._created += 1
                task_id = f"task_{self._created}"
                reply = dataclasses.replace(reply, body={"taskId": task_id})
            return reply, task_id

    def _forward(self, reply: Reply, handler, raw: bytes, call: Call) -> Reply:
        """The upstream's answer, carrying over what the script adds (reset, delay, hold)."""
        import requests

        parts = urlsplit(handler.path)
        response = requests.request(
            handler.command,
            f"{self.upstream}/jobs/{call.endpoint}",
            params=parts.query or None,
            data=raw or None,
            headers={
                "Authorization": handler.headers.get("Authorization", ""),
                "Content-Type": "application/json",
            },
            timeout=10,
        )
        headers = {}
        if "Retry-After" in response.headers:
            headers["Retry-After"] = response.headers["Retry-After"]
        if call.endpoint == CREATE and response.ok:
            call.task_id = response.json().get("taskId", "")
        return dataclasses.replace(
            reply, status=response.status_code, body=response.content, headers=headers
        )

    def _handler(self):
        kinovi = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:
                self._serve()

            def do_POST(self) -> None:
                self._serve()

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                endpoint = parts.path.rsplit("/", 1)[-1]
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                task_id = parse_qs(parts.query).get("taskId", [""])[0]
                call = Call(
                    endpoint=endpoint,
                    task_id=task_id,
                    body=body,
                    authorization=self.headers.get("Authorization", ""),
                    started=time.monotonic(),
                )
                if endpoint not in (CREATE, RECORD):
                    self._send(Reply(404, {"message": "Not found."}), call)
                    return
                reply, call.task_id = kinovi._next(endpoint, task_id, body)
                if reply.forward:
                    reply = kinovi._forward(reply, self, raw, call)
                with kinovi._lock:
                    kinovi.calls.append(call)
                    kinovi.request_seen.notify_all()
                if reply.hold is not None:
                    while not (reply.hold.wait(0.05) or kinovi.stopping.is_set()):
                        pass
                if reply.delay:
                    kinovi.stopping.wait(reply.delay)
                if reply.reset:
                    call.answer = "reset"
                    call.ended = time.monotonic()
                    # SO_LINGER 0: close() sends a RST, as a crashed proxy would.
                    self.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
                    self.close_connection = True
                    self.rfile.close()  # drop the file's reference so close() is immediate
                    self.connection.close()
                    return
                self._send(reply, call)

            def _send(self, reply: Reply, call: Call) -> None:
                if isinstance(reply.body, dict | list):
                    payload = json.dumps(reply.body).encode()
                    content_type = "application/json"
                elif isinstance(reply.body, str):
                    payload = reply.body.encode()
                    content_type = "application/json"
                else:
                    payload = reply.body or b""
                    content_type = "application/json"
                call.answer = str(reply.status)
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(payload)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)
                    self.wfile.flush()
                except OSError:
                    call.answer += " (client gone)"
                call.ended = time.monotonic()

        return Handler
