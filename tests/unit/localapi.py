"""A minimal stand-in for the API and the bucket on 127.0.0.1, for client tests without
the stack: it records what the client sends (headers of each PUT, the order of calls) and
drains upload bodies in small reads, holding none of them. `answer_first` scripts answers
(429s, 503s, a few "processing"…) that a route gives before its normal one. Like a stage, it
publishes its size limit in GET /config.json (`max_upload_bytes`; `publishes_limit=False`
answers that route 404, as a stage that does not) and refuses a bigger fileSize with 413."""
from __future__ import annotations

import http.server
import io
import json
import re
import threading
import uuid
from dataclasses import dataclass, field

from PIL import Image

from chalicelib.api.webpage import client_config
from chalicelib.platform.config import MAX_UPLOAD_BYTES_DEFAULT, Settings

GOOD_TOKEN = "good-token"
SIZES = [(400, 300), (160, 120), (120, 120)]
GATEWAY_THROTTLED = (429, {}, {"message": "Too Many Requests"})  # API Gateway's own: no Retry-After


def route_of(method: str, path: str) -> str:
    """"POST /images/<id>/complete" -> "POST /images/{id}/complete"; queries dropped."""
    path = path.split("?", 1)[0]
    return f"{method} {re.sub(r'^/images/[^/]+', '/images/{id}', path)}"


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: dict | None


@dataclass
class Put:
    image_id: str
    headers: dict[str, str]
    received: int


@dataclass
class LocalApi:
    calls: list[str] = field(default_factory=list)  # "POST /images", "PUT <id>", "POST /images/<id>/complete", …
    puts: list[Put] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=dict)  # id -> declared fileSize
    bodies: list[dict] = field(default_factory=list)  # the POST /images bodies
    names: list[str] | None = None  # the thumbnails' `name`s to answer (None: no name, as older APIs)
    max_upload_bytes: int = MAX_UPLOAD_BYTES_DEFAULT  # the stage's MAX_UPLOAD_BYTES
    publishes_limit: bool = True  # False: no GET /config.json
    scripted: dict[str, list[Answer]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer_first(self, route: str, *answers: tuple[int, dict[str, str], dict | None]) -> None:
        """`route` (as route_of names it) answers these, in order, before answering normally."""
        self.scripted.setdefault(route, []).extend(Answer(*a) for a in answers)

    def _scripted(self, method: str, path: str) -> Answer | None:
        with self.lock:
            queue = self.scripted.get(route_of(method, path))
            return queue.pop(0) if queue else None

    def __enter__(self) -> "LocalApi":
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _reply(self, status: int, body: dict | bytes | None = None, content_type: str = "application/json",
                       headers: dict[str, str] | None = None):
                data = body if isinstance(body, bytes) else json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def _authorized(self) -> bool:
                if self.headers.get("Authorization") != f"Bearer {GOOD_TOKEN}":
                    self._reply(401, {"error": {"code": "unauthorized", "message": "a valid bearer token is required"}})
                    return False
                scripted = api._scripted(self.command, self.path)
                if scripted is None:
                    return True
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                api.calls.append(f"{self.command} {self.path} -> {scripted.status}")
                self._reply(scripted.status, scripted.body, headers=scripted.headers)
                return False

            def do_GET(self) -> None:  # noqa: N802
                if self.path.startswith("/thumb/"):
                    w, h = (int(n) for n in self.path.rsplit("/", 1)[1].split(".")[0].split("x"))
                    out = io.BytesIO()
                    Image.new("RGB", (w, h), "teal").save(out, "PNG")
                    return self._reply(200, out.getvalue(), "image/png")
                if self.path == "/config.json":  # public, as on a stage
                    api.calls.append("GET /config.json")
                    if not api.publishes_limit:
                        return self._reply(404, {"error": {"code": "not_found", "message": "no such route"}})
                    settings = Settings.from_env({"MAX_UPLOAD_BYTES": str(api.max_upload_bytes),
                                                  "COGNITO_USER_POOL_ID": "local", "COGNITO_APP_CLIENT_ID": "local"})
                    return self._reply(200, client_config(settings))
                if not self._authorized():
                    return
                api.calls.append(f"GET {self.path}")
                if self.path.startswith("/images?"):
                    return self._reply(200, {"images": [], "nextCursor": None})
                image_id = self.path.split("/")[2]
                base = f"http://127.0.0.1:{self.server.server_address[1]}"
                thumbs = [{"size": {"width": w, "height": h}, "url": f"{base}/thumb/{image_id}/{w}x{h}.png?sig=x"}
                          for w, h in SIZES]
                for thumb, name in zip(thumbs, api.names or []):
                    thumb["name"] = name
                return self._reply(200, {"id": image_id, "status": "completed", "thumbnails": thumbs, "error": None})

            def do_POST(self) -> None:  # noqa: N802
                if not self._authorized():
                    return
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                api.calls.append(f"POST {self.path}")
                if self.path.endswith("/complete"):
                    return self._reply(202, {"id": self.path.split("/")[2], "status": "processing"})
                request = json.loads(body)
                api.bodies.append(request)
                if request["contentType"] not in ("image/png", "image/jpeg"):
                    return self._reply(415, {"error": {"code": "unsupported_media_type",
                                                       "message": "contentType must be image/png or image/jpeg"}})
                if request["fileSize"] > api.max_upload_bytes:
                    return self._reply(413, {"error": {"code": "file_too_large", "message":
                                       f"fileSize {request['fileSize']} is over the limit of {api.max_upload_bytes} bytes"}})
                image_id = str(uuid.uuid4())
                api.sizes[image_id] = request["fileSize"]
                base = f"http://127.0.0.1:{self.server.server_address[1]}"
                headers = {"Content-Type": request["contentType"], "Content-Length": str(request["fileSize"]),
                           "If-None-Match": "*"}
                return self._reply(201, {"id": image_id, "status": "pending_upload",
                                         "upload": {"url": f"{base}/put/{image_id}?X-Amz-Signature=x",
                                                    "method": "PUT", "headers": headers}})

            def do_DELETE(self) -> None:  # noqa: N802
                if not self._authorized():
                    return
                api.calls.append(f"DELETE {self.path}")
                self._reply(204)

            def do_PUT(self) -> None:  # noqa: N802
                image_id = self.path.split("/")[2].split("?")[0]
                api.calls.append(f"PUT {image_id}")
                remaining, received = int(self.headers.get("Content-Length") or 0), 0
                while remaining:
                    chunk = self.rfile.read(min(remaining, 64 * 1024))
                    if not chunk:
                        break
                    received, remaining = received + len(chunk), remaining - len(chunk)
                api.puts.append(Put(image_id, dict(self.headers), received))
                self._reply(200, b"", "text/plain")

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join()
