"""A webhook receiver on a real socket: answers a scripted list of statuses, keeps requests."""

import time
from http.server import BaseHTTPRequestHandler

from tests.localserver import LocalKinovi


class Receiver(LocalKinovi):
    def __init__(self, statuses=(200,), *, delay: float = 0.0) -> None:
        self.statuses = list(statuses)
        self.requests: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802 - the name http.server calls
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append({"headers": dict(self.headers), "body": body})
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                if delay:
                    time.sleep(delay)
                payload = f'{{"received": {len(receiver.requests)}}}'.encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.serve(Handler)
        self.hook_url = self.url.replace("/api/v1", "/hooks/video-done")
