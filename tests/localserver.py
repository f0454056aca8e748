"""A threaded HTTP server on 127.0.0.1 that plays Kinovi for a test, as a context manager."""

import threading
from http.server import ThreadingHTTPServer


class LocalKinovi:
    """Subclasses build their request handler and hand it to `serve`; `url` is the API base."""

    def serve(self, handler) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/v1"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
