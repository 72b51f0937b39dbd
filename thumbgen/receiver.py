"""A webhook receiver on 127.0.0.1 for the e2e tests, the benchmark and demos.

Records every request (headers, body, arrival time) and answers from a script of
responses — e.g. 500, 500, 204 — so tests can play a receiver that fails and recovers.
"""
from __future__ import annotations

import http.server
import threading
import time
from dataclasses import dataclass, field


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Reply:
    status: int = 204
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    drip: float = 0.0  # > 0: send the status line and headers one byte per drip seconds


class WebhookReceiver:
    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.requests: list[Received] = []
        self._scripts: dict[str, list[Reply]] = {}
        self._arrived = threading.Condition()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                reply = receiver._next_reply(self.path)
                with receiver._arrived:
                    receiver.requests.append(Received(self.path, dict(self.headers), body, time.time()))
                    receiver._arrived.notify_all()
                if reply.delay:
                    time.sleep(reply.delay)
                try:
                    if reply.drip:
                        self._drip(reply)
                        return
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the sender gave up (timeout) before we answered

            def _drip(self, reply: Reply) -> None:
                head = f"HTTP/1.1 {reply.status} Dripping\r\n" + "".join(
                    f"{name}: {value}\r\n" for name, value in reply.headers.items())
                for byte in (head + "Content-Length: 0\r\n\r\n").encode():
                    self.wfile.write(bytes([byte]))
                    time.sleep(reply.drip)
                self.close_connection = True

            def log_message(self, *args) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def script(self, path: str, replies: list[Reply]) -> None:
        """Answer the next requests to path with these replies, then 204s."""
        self._scripts[path] = list(replies)

    def _next_reply(self, path: str) -> Reply:
        queue = self._scripts.get(path)
        return queue.pop(0) if queue else Reply()

    def received(self, path: str | None = None) -> list[Received]:
        with self._arrived:
            return [r for r in self.requests if path is None or r.path == path]

    def wait_for(self, path: str, count: int = 1, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len([r for r in self.requests if r.path == path]) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._arrived.wait(remaining)
            return [r for r in self.requests if r.path == path]

    def __enter__(self) -> "WebhookReceiver":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()


def print_webhooks(port: int, secret: str | None) -> int:
    """`thumbgen receive`: print each webhook and whether its signature verifies."""
    import json

    from standardwebhooks import Webhook

    with WebhookReceiver(port=port) as receiver:
        print(f"listening on {receiver.url('/')} (Ctrl-C to stop)", flush=True)
        seen = 0
        try:
            while True:
                got = receiver.received()
                for request in got[seen:]:
                    verdict = "no secret given"
                    if secret:
                        try:
                            Webhook(secret).verify(request.body, request.headers)
                            verdict = "signature OK"
                        except Exception as exc:  # noqa: BLE001 — report, keep listening
                            verdict = f"signature INVALID ({exc})"
                    print(f"POST {request.path}  webhook-id={request.headers.get('webhook-id')}  {verdict}")
                    print(json.dumps(json.loads(request.body), indent=2), flush=True)
                seen = len(got)
                time.sleep(0.1)
        except KeyboardInterrupt:
            return 0
