"""ThumbgenClient against a local server: the PUT streams with the signed Content-Length,
never chunked, in flat memory; complete follows a successful PUT; API errors are ApiError;
429 and 503 are retried (Retry-After, else backoff with jitter, within a cap), nothing else."""
from __future__ import annotations

import random
import tracemalloc
from datetime import datetime, timezone
from io import BytesIO

import pytest

from chalicelib.imaging.renditions import Rendition
from chalicelib.platform.config import (
    MAX_UPLOAD_BYTES_DEFAULT as MAX_UPLOAD_BYTES,  # the limit LocalApi publishes by default
)
from tests.unit.localapi import GATEWAY_THROTTLED, GOOD_TOKEN, LocalApi
from thumbgen.client import ApiError, FileTooLarge, ThumbgenClient, _Body, sniff_content_type
from thumbgen.retry import Backoff, Polling, parse_retry_after


@pytest.fixture
def api():
    with LocalApi() as running:
        yield running


def eleven_mib_file(tmp_path):
    path = tmp_path / "big.jpg"
    with open(path, "wb") as f:
        f.write(b"\xff\xd8\xff\xe0")
        f.truncate(MAX_UPLOAD_BYTES)  # exactly the limit
    return path


def test_upload_file_streams_with_content_length_in_flat_memory(api, tmp_path):
    path = eleven_mib_file(tmp_path)
    client = ThumbgenClient(api.url, GOOD_TOKEN)
    seen = []
    tracemalloc.start()
    try:
        image_id = client.upload_file(path, progress=lambda sent, total: seen.append((sent, total)))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    [put] = api.puts
    assert put.headers["Content-Length"] == str(MAX_UPLOAD_BYTES)
    assert "Transfer-Encoding" not in put.headers
    assert put.headers["Content-Type"] == "image/jpeg" and put.headers["If-None-Match"] == "*"
    assert "Authorization" not in put.headers  # the token never goes to the bucket
    assert put.received == MAX_UPLOAD_BYTES
    assert peak < 2 * 1024 * 1024, f"peak {peak:,} bytes while uploading {MAX_UPLOAD_BYTES:,}"
    assert seen[0] == (0, MAX_UPLOAD_BYTES) and seen[-1] == (MAX_UPLOAD_BYTES, MAX_UPLOAD_BYTES)
    assert len(seen) > 10 and all(a[0] <= b[0] for a, b in zip(seen, seen[1:]))
    assert api.calls == ["GET /config.json", "POST /images", f"PUT {image_id}", f"POST /images/{image_id}/complete"]


def sized(path, size: int):
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.truncate(size)
    return path


def test_a_file_over_the_stages_own_limit_is_refused_before_anything_is_sent(api, tmp_path):
    """The limit is the stage's MAX_UPLOAD_BYTES from its /config.json, not a constant: a
    stage with a smaller one refuses a file this client would otherwise send."""
    api.max_upload_bytes = 5_000
    client = ThumbgenClient(api.url, GOOD_TOKEN)
    with pytest.raises(FileTooLarge) as refused:
        client.upload_file(sized(tmp_path / "big.png", 5_001))
    assert (refused.value.status, refused.value.code) == (413, "file_too_large")
    assert (refused.value.size, refused.value.limit) == (5_001, 5_000)
    assert refused.value.message == "5,001 bytes is over the stage's limit of 5,000 bytes"
    assert api.calls == ["GET /config.json"] and api.puts == []  # nothing registered, nothing sent
    image_id = client.upload_file(sized(tmp_path / "fits.png", 5_000))  # exactly the limit is fine
    assert api.puts[0].received == 5_000
    # read once per client, then kept
    assert api.calls == ["GET /config.json", "POST /images", f"PUT {image_id}", f"POST /images/{image_id}/complete"]
    assert client.max_upload_bytes() == 5_000 and api.calls.count("GET /config.json") == 1


def test_a_stage_without_a_published_limit_leaves_the_size_to_the_apis_413(api, tmp_path):
    api.max_upload_bytes, api.publishes_limit = 5_000, False
    client = ThumbgenClient(api.url, GOOD_TOKEN)
    with pytest.raises(ApiError) as refused:
        client.upload_file(sized(tmp_path / "big.png", 5_001))
    assert not isinstance(refused.value, FileTooLarge)  # the API's own answer
    assert (refused.value.status, refused.value.code) == (413, "file_too_large")
    assert refused.value.message == "fileSize 5001 is over the limit of 5000 bytes"
    assert api.calls == ["GET /config.json", "POST /images"] and api.puts == []
    assert client.max_upload_bytes() is None and api.calls.count("GET /config.json") == 1


def test_upload_of_bytes_calls_complete_after_the_put_unless_told_not_to(api):
    client = ThumbgenClient(api.url, GOOD_TOKEN)
    first = client.upload(b"\x89PNG\r\n\x1a\n" + b"x" * 100, content_type="image/png")
    second = client.upload(b"\xff\xd8\xff" + b"y" * 50, content_type="image/jpeg", complete=False)
    assert (first.put_status, second.put_status) == (200, 200)
    assert api.calls == ["POST /images", f"PUT {first.id}", f"POST /images/{first.id}/complete",
                         "POST /images", f"PUT {second.id}"]
    assert [p.headers["Content-Length"] for p in api.puts] == ["108", "53"]


def test_upload_sends_the_real_bytes_even_when_another_size_was_declared(api):
    client = ThumbgenClient(api.url, GOOD_TOKEN)
    upload = client.upload(b"z" * 500, content_type="image/jpeg", declared_size=400)
    assert api.sizes[upload.id] == 400
    assert api.puts[0].headers["Content-Length"] == "500" and api.puts[0].received == 500


def test_api_errors_carry_status_code_and_message(api, tmp_path):
    with pytest.raises(ApiError) as refused:
        ThumbgenClient(api.url, "forged").get("x")
    assert (refused.value.status, refused.value.code) == (401, "unauthorized")
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    with pytest.raises(ApiError) as unsupported:
        ThumbgenClient(api.url, GOOD_TOKEN).upload_file(text)
    assert (unsupported.value.status, unsupported.value.code) == (415, "unsupported_media_type")
    assert "image/png" in unsupported.value.message
    assert api.puts == []


def test_wait_and_download_thumbnails(api, tmp_path):
    client = ThumbgenClient(api.url, GOOD_TOKEN)
    image = client.wait("some-id", timeout=5)
    paths = client.download_thumbnails(image, tmp_path / "out")
    assert [p.name for p in paths] == ["400x300.png", "160x120.png", "120x120.png"]
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in paths)


def test_renditions_are_sent_as_asked_and_absent_unless_asked(api, tmp_path):
    path = tmp_path / "cat.jpg"
    path.write_bytes(b"\xff\xd8\xff" + b"x" * 10)
    client = ThumbgenClient(api.url, GOOD_TOKEN)
    client.upload_file(path, renditions=[{"width": 800, "height": 600, "fit": "contain", "format": "webp"},
                                         Rendition(400, 400, gravity="attention", focus=None, quality=60)])
    client.upload(b"\x89PNG\r\n\x1a\n", content_type="image/png", renditions=[Rendition(64, 64, format="avif")])
    client.upload_file(path)
    assert [body.get("renditions") for body in api.bodies] == [
        [{"width": 800, "height": 600, "fit": "contain", "format": "webp"},
         {"width": 400, "height": 400, "gravity": "attention", "quality": 60}],
        [{"width": 64, "height": 64, "format": "avif"}],
        None,  # not sent: the stage's default
    ]


def test_thumbnails_are_saved_under_their_names_and_only_there(api, tmp_path):
    api.names = ["800x600-contain.webp", "../../escape.png", ".hidden"]
    client = ThumbgenClient(api.url, GOOD_TOKEN)
    paths = client.download_thumbnails(client.get("some-id"), tmp_path / "out")
    # a name with a path in it keeps its last part; one that is not a plain name falls back to <w>x<h>
    assert [p.name for p in paths] == ["800x600-contain.webp", "escape.png", "120x120.png"]
    assert all(p.parent == tmp_path / "out" for p in paths)


@pytest.mark.parametrize("head, name, expected", [
    (b"\x89PNG\r\n\x1a\n\0\0", "photo.jpg", "image/png"),   # the bytes win over the name
    (b"\xff\xd8\xff\xe0\0\0", "logo.dat", "image/jpeg"),
    (b"hello", "logo.png", "image/png"),                     # then the extension
    (b"hello", "notes.txt", "text/plain"),
    (b"hello", "README", "application/octet-stream"),
])
def test_content_type_from_magic_bytes_then_extension(head, name, expected):
    assert sniff_content_type(head, name) == expected


def test_a_file_that_shrinks_during_the_upload_is_an_error_not_a_short_body():
    body = _Body(BytesIO(b"a" * 10), 20)
    assert len(body) == 20 and body.read(16) == b"a" * 10
    with pytest.raises(OSError, match="10 bytes early"):
        body.read(16)


# --- 429 and 503: retried as thumbgen/retry.py says; nothing else is ---------------------

class FakeTime:
    """sleep() and clock() for a client under test: waits are recorded, never slept."""

    def __init__(self):
        self.now, self.slept = 0.0, []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def timed_client(api, **kwargs) -> tuple[ThumbgenClient, FakeTime]:
    fake = FakeTime()
    return ThumbgenClient(api.url, GOOD_TOKEN, sleep=fake.sleep, clock=fake.clock, rng=random.Random(7),
                          **kwargs), fake


def throttled(seconds: str | None = None, code: str = "too_many_requests") -> tuple[int, dict, dict]:
    return 429, ({"Retry-After": seconds} if seconds is not None else {}), \
        {"error": {"code": code, "message": "slow down"}}


def test_every_api_call_is_retried_after_429_and_503_until_it_succeeds(api):
    past = "Wed, 21 Oct 2015 07:28:00 GMT"  # an HTTP date already gone: at once
    api.answer_first("POST /images", GATEWAY_THROTTLED, throttled("3"))
    api.answer_first("POST /images/{id}/complete", (503, {"Retry-After": past},
                                                    {"error": {"code": "unavailable", "message": "keys"}}))
    api.answer_first("GET /images/{id}", throttled("2"))
    api.answer_first("GET /images", GATEWAY_THROTTLED, GATEWAY_THROTTLED)
    api.answer_first("DELETE /images/{id}", (503, {}, {"message": "Service Unavailable"}))
    client, fake = timed_client(api, polling=Polling(first=0.5, jitter=0))
    upload = client.upload(b"\xff\xd8\xff" + b"y" * 50, content_type="image/jpeg")
    assert client.wait(upload.id)["status"] == "completed"
    assert list(client.list()) == []
    client.delete(upload.id)
    assert [c.split(" -> ")[-1] for c in api.calls if "->" in c] == ["429", "429", "503", "429", "429", "429", "503"]
    assert api.calls[-1] == f"DELETE /images/{upload.id}"
    gateway = [fake.slept[0], *fake.slept[5:8]]  # backoff with full jitter: 0-0.5 s, 0-1 s, then 0-0.5 s again
    assert 0 <= gateway[0] <= 0.5 and 0 <= gateway[1] <= 0.5 and 0 <= gateway[2] <= 1.0 and 0 <= gateway[3] <= 0.5
    assert fake.slept[1:5] == [3.0, 0.0, 0.5, 2.0]  # Retry-After as given; 0.5 s before the first poll


def test_waits_stop_at_max_wait_and_the_429_is_raised(api):
    api.answer_first("GET /images/{id}", *[throttled("25")] * 5)
    client, fake = timed_client(api, backoff=Backoff(max_wait=60))
    with pytest.raises(ApiError) as refused:
        client.get("some-id")
    assert (refused.value.status, refused.value.retry_after) == (429, 25.0)
    assert fake.slept == [25.0, 25.0]  # a third wait would pass 60 s
    assert len(api.calls) == 3


def test_a_retry_after_beyond_the_budget_is_raised_at_once(api):
    api.answer_first("POST /images", throttled("600"))
    client, fake = timed_client(api)
    with pytest.raises(ApiError) as refused:
        client.create(filename="a.jpg", content_type="image/jpeg", file_size=10)
    assert refused.value.retry_after == 600 and fake.slept == [] and len(api.calls) == 1


def test_gateway_throttling_without_retry_after_backs_off_exponentially_within_the_cap(api):
    api.answer_first("GET /images/{id}", *[GATEWAY_THROTTLED] * 40)
    client, fake = timed_client(api, backoff=Backoff(max_wait=30, base=0.5, cap=4))
    with pytest.raises(ApiError) as refused:
        client.get("some-id")
    assert (refused.value.status, refused.value.code, refused.value.own) == (429, "http_429", False)
    bounds = [min(4, 0.5 * 2 ** n) for n in range(len(fake.slept))]
    assert all(0 <= d <= b for d, b in zip(fake.slept, bounds))
    assert sum(fake.slept) <= 30 and len(fake.slept) >= 5
    assert len(set(fake.slept)) == len(fake.slept)  # jittered: no two clients in step


@pytest.mark.parametrize("answer", [
    (500, {}, {"error": {"code": "internal", "message": "boom"}}),
    (502, {}, {"message": "Internal server error"}),
    (409, {}, {"error": {"code": "upload_missing", "message": "PUT first"}}),
    (401, {"Retry-After": "1"}, {"error": {"code": "unauthorized", "message": "no"}}),
    throttled(None),  # the API's own 429 without Retry-After: waiting will not help
])
def test_other_errors_are_never_retried(api, answer):
    api.answer_first("POST /images/{id}/complete", answer)
    client, fake = timed_client(api)
    with pytest.raises(ApiError) as refused:
        client.complete("some-id")
    assert refused.value.status == answer[0]
    assert fake.slept == [] and len(api.calls) == 1


def test_polling_starts_after_a_short_delay_and_backs_off_with_jitter_to_a_cap(api):
    processing = (200, {}, {"id": "some-id", "status": "processing", "thumbnails": [], "error": None})
    api.answer_first("GET /images/{id}", *[processing] * 12)
    client, fake = timed_client(api, polling=Polling(first=0.5, growth=1.6, cap=5, jitter=0.5))
    assert client.wait("some-id", timeout=120)["status"] == "completed"
    assert len(api.calls) == 13 and len(fake.slept) == 13
    assert 0.25 <= fake.slept[0] <= 0.5  # not at once: the pipeline needs a few hundred ms
    nominal = [min(5, 0.5 * 1.6 ** n) for n in range(13)]
    assert all(n / 2 <= d <= n for d, n in zip(fake.slept, nominal))
    assert max(fake.slept) <= 5 and sum(fake.slept[-4:]) > sum(fake.slept[:4])


def test_polling_gives_up_at_the_timeout(api):
    processing = (200, {}, {"id": "some-id", "status": "processing", "thumbnails": [], "error": None})
    api.answer_first("GET /images/{id}", *[processing] * 50)
    client, fake = timed_client(api)
    with pytest.raises(TimeoutError, match="still processing after 10 s"):
        client.wait("some-id", timeout=10)
    assert fake.now == pytest.approx(10)


@pytest.mark.parametrize("header, seconds", [
    ("120", 120.0), ("0", 0.0), (" 7 ", 7.0), ("Fri, 01 Jan 2027 00:00:30 GMT", 30.0),
    ("Thu, 31 Dec 2026 23:59:00 GMT", 0.0), ("soon", None), ("", None), (None, None), ("-5", None),
])
def test_retry_after_is_seconds_or_an_http_date(header, seconds):
    now = datetime(2027, 1, 1, tzinfo=timezone.utc)
    assert parse_retry_after(header, now) == seconds
