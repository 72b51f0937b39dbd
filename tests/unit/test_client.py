"""ThumbgenClient against a local server: the PUT streams with the signed Content-Length,
never chunked, in flat memory; complete follows a successful PUT; API errors are ApiError."""
from __future__ import annotations

import tracemalloc
from io import BytesIO

import pytest

from chalicelib.renditions import Rendition
from tests.unit.localapi import GOOD_TOKEN, LocalApi
from thumbgen.client import MAX_UPLOAD_BYTES, ApiError, ThumbgenClient, _Body, sniff_content_type


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
    assert api.calls == ["POST /images", f"PUT {image_id}", f"POST /images/{image_id}/complete"]


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
