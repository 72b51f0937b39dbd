"""A small Python client of the thumbgen API, for scripts and for `thumbgen upload`.

    from thumbgen.client import ThumbgenClient

    client = ThumbgenClient("http://127.0.0.1:8000", token)
    image_id = client.upload_file("cat.jpg")           # register, PUT, start the resize
    image = client.wait(image_id)                      # "completed" or "failed"
    paths = client.download_thumbnails(image, "out/cat")

    # renditions of your own instead of the stage's default (docs/api.md "Renditions"):
    client.upload_file("cat.jpg", renditions=[{"width": 800, "height": 600, "fit": "contain", "format": "webp"},
                                              Rendition(400, 400, gravity="attention")])

Errors answered by the API raise `ApiError` (status, code, message); network failures
raise `requests.RequestException`. Every API call is retried after a 429 or 503 as
thumbgen/retry.py says (Retry-After, else backoff with jitter; at most `backoff.max_wait`
seconds of waiting per call); nothing else is retried.

`upload_file` refuses a file over the stage's size limit before sending anything
(`FileTooLarge`: an ApiError 413 file_too_large, as the API would answer). The limit is the
stage's own MAX_UPLOAD_BYTES, which its GET /config.json publishes as `maxUploadBytes`, read
once per client; with a stage that does not publish it, the API's own 413 is the check.
"""
from __future__ import annotations

import builtins
import io
import mimetypes
import os
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO
from urllib.parse import urlparse

import requests

from chalicelib.imaging.renditions import Rendition
from thumbgen.retry import Backoff, Polling, parse_retry_after, worth_retrying

FINAL_STATUSES = ("completed", "failed")
CHUNK_BYTES = 64 * 1024
# progress(bytes_sent, total_bytes), called from the thread doing the PUT
Progress = Callable[[int, int], None]
# What to make: Rendition values or their JSON form; None leaves it to the stage's default.
Renditions = Sequence[Rendition | Mapping[str, Any]] | None


class ApiError(Exception):
    """An error answer of the API: `{"error": {"code", "message"}}` and its HTTP status.

    `own` is False for an answer in another shape (API Gateway's throttling, a proxy):
    its code is then `http_<status>`. `retry_after` is in seconds."""

    def __init__(self, status: int, code: str, message: str, retry_after: float | None = None,
                 own: bool = True):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.retry_after = status, code, message, retry_after
        self.own = own

    @classmethod
    def from_response(cls, response: requests.Response) -> "ApiError":
        own = True
        try:
            error = response.json()["error"]
            code, message = str(error["code"]), str(error["message"])
        except (ValueError, KeyError, TypeError):
            own = False
            code, message = f"http_{response.status_code}", (response.text or response.reason or "")[:200]
        return cls(response.status_code, code, message, parse_retry_after(response.headers.get("Retry-After")),
                   own)


class FileTooLarge(ApiError):
    """A file over the stage's size limit, refused before anything is sent: the API's own
    413 file_too_large, said in advance."""

    def __init__(self, size: int, limit: int):
        super().__init__(413, "file_too_large", f"{size:,} bytes is over the stage's limit of {limit:,} bytes")
        self.size, self.limit = size, limit


@dataclass(frozen=True)
class Upload:
    id: str
    created: dict[str, Any]
    put_status: int
    put_finished_at: float  # time.time() when the PUT's response arrived


def sniff_content_type(head: bytes, filename: str) -> str:
    """PNG or JPEG from the first bytes, else a guess from the name; the API decides."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"


class _Body:
    """A request body of exactly `length` bytes read from `source` a chunk at a time.

    Its known length makes requests send `Content-Length` (what the presigned URL signs)
    instead of chunked encoding, and only one chunk is ever held in memory.
    """

    def __init__(self, source: BinaryIO, length: int, progress: Progress | None = None):
        self._source, self._length, self._progress = source, length, progress
        self.sent = 0

    def __len__(self) -> int:
        return self._length - self.sent

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.read(CHUNK_BYTES):
            yield chunk

    def read(self, size: int = -1) -> bytes:
        remaining = self._length - self.sent
        chunk = self._source.read(remaining if size is None or size < 0 else min(size, remaining))
        if not chunk and remaining:
            raise OSError(f"the file ended {remaining} bytes early (it changed during the upload)")
        self.sent += len(chunk)
        if chunk and self._progress:
            self._progress(self.sent, self._length)
        return chunk


class ThumbgenClient:
    """One user's session with the API (`token`: a Cognito access token)."""

    def __init__(self, api_url: str, token: str | None = None, *, timeout: float = 10,
                 backoff: Backoff = Backoff(), polling: Polling = Polling(),
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
                 rng: random.Random | None = None):
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout
        self.backoff, self.polling = backoff, polling
        self._sleep, self._clock, self._rng = sleep, clock, rng or random.Random()
        self.http = requests.Session()  # the API, with the bearer token
        if token:
            self.http.headers["Authorization"] = f"Bearer {token}"
        self.storage = requests.Session()  # presigned URLs: never send them the token
        self._limit_lock = threading.Lock()
        self._limit: tuple[int | None] | None = None  # (maxUploadBytes or None,) once read

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        """One API call; a 429/503 worth retrying is sent again (thumbgen/retry.py) until
        its waits would pass backoff.max_wait, then raised like any other error."""
        waited, attempt = 0.0, 0
        while True:
            response = self.http.request(method, f"{self.api_url}{path}", timeout=self.timeout, **kwargs)
            if response.status_code < 400:
                return response.json() if response.content else None
            error = ApiError.from_response(response)
            if not worth_retrying(error.status, error.retry_after, error.own):
                raise error
            delay = self.backoff.delay(attempt, error.retry_after, self._rng)
            if waited + delay > self.backoff.max_wait:
                raise error
            self._sleep(delay)
            waited, attempt = waited + delay, attempt + 1

    def max_upload_bytes(self) -> int | None:
        """The stage's upload size limit (its MAX_UPLOAD_BYTES), as its GET /config.json
        publishes it in `maxUploadBytes`: read on first use, then kept for this client.
        None when the stage does not say (no such file, an error, no positive whole number
        there): the API's own 400/413 answer is then the only check. A network failure
        raises, and is not kept."""
        with self._limit_lock:
            if self._limit is None:
                self._limit = (self._read_limit(),)
            return self._limit[0]

    def _read_limit(self) -> int | None:
        try:
            config = self._call("GET", "/config.json")
        except (ApiError, ValueError):  # an error answer, or one that is not JSON
            return None
        limit = config.get("maxUploadBytes") if isinstance(config, dict) else None
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            return None
        return limit

    def create(self, *, filename: str, content_type: str, file_size: int,
               webhook_url: str | None = None, renditions: Renditions = None) -> dict[str, Any]:
        """Register an upload: its id and the presigned PUT (`upload.url`, `upload.headers`)."""
        body: dict[str, Any] = {"filename": filename, "contentType": content_type, "fileSize": file_size}
        if webhook_url is not None:
            body["webhookUrl"] = webhook_url
        if renditions is not None:
            body["renditions"] = [r.to_item() if isinstance(r, Rendition) else dict(r) for r in renditions]
        return self._call("POST", "/images", json=body)

    def complete(self, image_id: str) -> dict[str, Any]:
        """Tell the API the PUT is done, so the resize starts now rather than on S3's event."""
        return self._call("POST", f"/images/{image_id}/complete")

    def get(self, image_id: str) -> dict[str, Any]:
        return self._call("GET", f"/images/{image_id}")

    def delete(self, image_id: str) -> None:
        self._call("DELETE", f"/images/{image_id}")

    def webhook_secret(self) -> dict[str, Any]:
        """The user's own webhook signing secret: `{"secret": "whsec_…", "previousValidUntil"}`."""
        return self._call("GET", "/webhook-secret")

    def rotate_webhook_secret(self) -> dict[str, Any]:
        """A new signing secret; the old one keeps signing webhooks until `previousValidUntil`."""
        return self._call("POST", "/webhook-secret/rotate")

    def list(self, *, page_size: int = 100) -> Iterator[dict[str, Any]]:
        """Every image of the user, newest first, fetching the pages as they are consumed."""
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": page_size, **({"cursor": cursor} if cursor else {})}
            page = self._call("GET", "/images", params=params)
            yield from page["images"]
            cursor = page.get("nextCursor")
            if not cursor:
                return

    def wait(self, image_id: str, timeout: float = 60) -> dict[str, Any]:
        """Poll until the image is completed or failed, first after a short delay, then
        less and less often (`polling`); TimeoutError after `timeout` seconds."""
        deadline = self._clock() + timeout
        delays = self.polling.delays(self._rng)
        while True:
            self._sleep(max(0.0, min(next(delays), deadline - self._clock())))
            image = self.get(image_id)
            if image["status"] in FINAL_STATUSES:
                return image
            if self._clock() >= deadline:
                raise TimeoutError(f"image {image_id} is still {image['status']} after {timeout:g} s")

    def _put(self, created: dict[str, Any], source: BinaryIO, length: int,
             progress: Progress | None) -> requests.Response:
        upload = created["upload"]
        headers = {k: v for k, v in upload["headers"].items() if k.lower() != "content-length"}
        if progress:
            progress(0, length)
        return self.storage.put(upload["url"], data=_Body(source, length, progress), headers=headers,
                                timeout=(self.timeout, 60))

    def upload(self, data: bytes, *, content_type: str, filename: str = "image",
               webhook_url: str | None = None, declared_size: int | None = None,
               complete: bool = True, renditions: Renditions = None) -> Upload:
        """Register and PUT bytes held in memory, then call complete if the PUT succeeded.

        `declared_size` registers another size than the bytes sent (to test the service's
        own checks, which alone judge the size here); `complete=False` leaves the start to
        S3's event alone.
        """
        created = self.create(filename=filename, content_type=content_type,
                              file_size=declared_size or len(data), webhook_url=webhook_url,
                              renditions=renditions)
        return self.put_and_complete(created, data, complete=complete)

    def put_and_complete(self, created: dict[str, Any], data: bytes, complete: bool = True) -> Upload:
        """PUT bytes to an image `create` registered, then call complete if the PUT succeeded."""
        put = self._put(created, io.BytesIO(data), len(data), None)
        finished = time.time()
        if complete and put.ok:
            self.complete(created["id"])
        return Upload(created["id"], created, put.status_code, finished)

    def upload_file(self, path: str | os.PathLike[str], *, webhook_url: str | None = None,
                    content_type: str | None = None, progress: Progress | None = None,
                    renditions: Renditions = None) -> str:
        """Register, stream the file to S3 and start the resize; returns the image id.

        The content type is sniffed from the bytes unless given; the file is never held
        in memory whole. A file over the stage's limit (`max_upload_bytes`) raises
        FileTooLarge before anything is registered or sent.
        """
        path = Path(path)
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            limit = self.max_upload_bytes()
            if limit is not None and size > limit:
                raise FileTooLarge(size, limit)
            content_type = content_type or sniff_content_type(f.read(16), path.name)
            f.seek(0)
            created = self.create(filename=path.name, content_type=content_type, file_size=size,
                                  webhook_url=webhook_url, renditions=renditions)
            put = self._put(created, f, size, progress)
        if not put.ok:
            raise ApiError(put.status_code, "upload_refused", _s3_error(put))
        self.complete(created["id"])
        return created["id"]

    def download_thumbnails(self, image: dict[str, Any], directory: str | os.PathLike[str]) -> builtins.list[Path]:
        """Save each thumbnail of a completed image as DIR/<its name> (400x300.jpg,
        800x600-contain.webp, ...); their paths, in the image's order."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        paths = []
        for thumb in image.get("thumbnails") or []:
            with self.storage.get(thumb["url"], stream=True, timeout=(self.timeout, 60)) as response:
                response.raise_for_status()
                path = directory / _file_name(thumb, response)
                with open(path, "wb") as out:
                    for chunk in response.iter_content(CHUNK_BYTES):
                        out.write(chunk)
            paths.append(path)
        return paths


def _file_name(thumb: Mapping[str, Any], response: requests.Response) -> str:
    """The thumbnail's own name, kept to one plain file name whatever the answer said;
    <w>x<h>.<ext> for an answer without one."""
    name = PurePosixPath(str(thumb.get("name") or "")).name
    if name and name not in (".", "..") and "\\" not in name and not name.startswith("."):
        return name
    size = thumb["size"]
    suffix = PurePosixPath(urlparse(thumb["url"]).path).suffix \
        or mimetypes.guess_extension(response.headers.get("Content-Type", "")) or ""
    return f"{int(size['width'])}x{int(size['height'])}{suffix}"


def _s3_error(response: requests.Response) -> str:
    """S3 answers errors in XML: keep its Code, else the status line."""
    text = response.text or ""
    start, end = text.find("<Code>"), text.find("</Code>")
    code = text[start + 6:end] if 0 <= start < end else response.reason
    return f"the storage refused the upload ({response.status_code} {code})"
