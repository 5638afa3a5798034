"""What every HTTP test double shares: a threaded JSON server on loopback that tests start, stop and fault."""

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self


class DoubleRequestHandler(BaseHTTPRequestHandler):
    """Hands every request to its double's ``handle()``; the double answers with ``send_json()``."""

    double: "HttpDouble"  # set on the per-server subclass made by HttpDouble._handler_class()

    def dispatch(self) -> None:
        self.double.handle(self)

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def send_json(self, status: int, body, headers: dict | None = None, content_type: str = "application/json") -> None:
        payload = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass  # keeps the test output free of access-log lines


class HttpDouble:
    """A ThreadingHTTPServer on ``host``:``port`` (0: any free port) whose requests go to ``handle()``.

    Subclasses list the HTTP ``methods`` they answer (others get the standard library's 501) and implement
    ``handle(request)``. The port is kept once bound, so that a double can listen again on the same one.
    """

    methods: tuple[str, ...] = ("GET",)
    poll_interval = 0.5  # how quickly stop() returns: serve_forever() checks for shutdown this often

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.host = host
        self.port = port
        self.server: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None
        self._listen()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def handle(self, request: DoubleRequestHandler) -> None:
        raise NotImplementedError

    def _handler_class(self) -> type[DoubleRequestHandler]:
        dispatchers = {f"do_{method}": DoubleRequestHandler.dispatch for method in self.methods}
        return type(f"{type(self).__name__}Handler", (DoubleRequestHandler,), {"double": self, **dispatchers})

    def _listen(self) -> None:
        self.server = ThreadingHTTPServer((self.host, self.port), self._handler_class())
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]

    def start(self) -> Self:
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": self.poll_interval},
                                       daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    def serve_until_interrupted(self) -> None:
        """Serves in the calling thread until Ctrl-C: for a double run by hand."""
        try:
            self.server.serve_forever(poll_interval=self.poll_interval)
        except KeyboardInterrupt:
            self.server.server_close()


@dataclass
class FaultState:
    """The part of a double's state that tests inject faults into, and the paths it was called on."""

    fault: int | None = None  # answer every request with this status
    delay: float = 0.0  # seconds to wait before answering
    calls: list[str] = field(default_factory=list)


class FaultyDouble(HttpDouble):
    """A double whose ``state`` (a FaultState, which tests may replace wholesale) can fail or slow every request."""

    state: FaultState

    def fail(self, status: int | None) -> None:
        self.state.fault = status

    def slow(self, seconds: float) -> None:
        self.state.delay = seconds

    def reset_faults(self) -> None:
        self.state.fault, self.state.delay = None, 0.0

    def record_call(self, path: str) -> int | None:
        """Records the call, waits the injected delay, and returns the injected fault status (None: answer)."""
        self.state.calls.append(path)
        if self.state.delay:
            time.sleep(self.state.delay)
        return self.state.fault
