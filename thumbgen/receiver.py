"""A webhook receiver on 127.0.0.1 for the e2e tests, the benchmark and demos.

Records every request (headers, body, arrival time) and answers from a script of
responses — e.g. 500, 500, 204 — so tests can play a receiver that fails and recovers.
"""
from __future__ import annotations

import http.server
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping


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


class SecretVerifier:
    """Checks webhooks with the signed-in user's own secret, fetched from the API; when one
    does not verify, the secret is fetched again (it may have been rotated) before the
    webhook is called invalid. A secret given explicitly is used as is."""

    def __init__(self, fetch: Callable[[], str] | None = None, secret: str | None = None):
        if fetch is None and secret is None:
            raise ValueError("give a secret, or a way to fetch one")
        self._fetch = fetch
        self.secret = secret if secret is not None else fetch()  # type: ignore[misc]

    def verdict(self, body: bytes, headers: dict[str, str]) -> str:
        problem = _problem(self.secret, body, headers)
        if problem is None:
            return "signature OK"
        if self._fetch is None:
            return f"signature INVALID ({problem})"
        try:
            fresh = self._fetch()
        except Exception as exc:  # noqa: BLE001 — report, keep listening
            return f"signature INVALID ({problem}); the secret could not be fetched again ({exc})"
        if fresh == self.secret:
            return f"signature INVALID ({problem})"
        self.secret = fresh
        again = _problem(fresh, body, headers)
        if again is None:
            return "signature OK (with the new secret: it was rotated)"
        return f"signature INVALID ({again})"


def _problem(secret: str, body: bytes, headers: dict[str, str]) -> str | None:
    from standardwebhooks import Webhook

    try:
        Webhook(secret).verify(body, headers)
    except Exception as exc:  # noqa: BLE001 — forged, stale or malformed: all invalid
        return str(exc) or type(exc).__name__
    return None


def user_secret(env: Mapping[str, str]) -> Callable[[], str]:
    """Fetches the signed-in user's secret (THUMBGEN_TOKEN, else the local demo user) from
    THUMBGEN_API_URL, else the local stack, as `thumbgen upload` signs in; a token that
    expired meanwhile is replaced when it can be (the local demo user)."""
    from thumbgen.client import ApiError
    from thumbgen.upload import connect

    client = connect(env)

    def fetch() -> str:
        nonlocal client
        try:
            return client.webhook_secret()["secret"]
        except ApiError as exc:
            if exc.status != 401 or env.get("THUMBGEN_TOKEN"):
                raise
        client = connect(env)
        return client.webhook_secret()["secret"]
    return fetch


def print_webhooks(port: int, secret: str | None, env: Mapping[str, str] | None = None) -> int:
    """`thumbgen receive`: print each webhook and whether its signature verifies."""
    import json
    import os
    import sys

    from thumbgen.upload import UsageError

    try:
        verifier = SecretVerifier(secret=secret) if secret else SecretVerifier(user_secret(env or os.environ))
    except UsageError as exc:
        for line in str(exc).splitlines():
            print(f"error: {line}", file=sys.stderr)
        print("error: or give the secret with --secret", file=sys.stderr)
        return 2
    with WebhookReceiver(port=port) as receiver:
        print(f"listening on {receiver.url('/')} (Ctrl-C to stop)", flush=True)
        seen = 0
        try:
            while True:
                got = receiver.received()
                for request in got[seen:]:
                    verdict = verifier.verdict(request.body, request.headers)
                    print(f"POST {request.path}  webhook-id={request.headers.get('webhook-id')}  {verdict}")
                    print(json.dumps(json.loads(request.body), indent=2), flush=True)
                seen = len(got)
                time.sleep(0.1)
        except KeyboardInterrupt:
            return 0
