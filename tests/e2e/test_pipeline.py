"""End to end over real HTTP: POST, presigned PUT, thumbnails, signed webhook received."""
from __future__ import annotations

import io
import json
import uuid

import pytest
import requests
from PIL import Image
from standardwebhooks import Webhook

from tests.imagegen import make_gif, make_jpeg, make_png, make_png_bomb_header, make_truncated_jpeg
from thumbgen.client import ApiError

SIZES = [(400, 300), (160, 120), (120, 120)]
MAX = 11 * 1024 * 1024


def hook_path() -> str:
    return f"/hook/{uuid.uuid4().hex}"


def upload_and_wait(stack, receiver, data, content_type, **kwargs):
    path = hook_path()
    upload = stack.client.upload(data, content_type=content_type, webhook_url=receiver.url(path), **kwargs)
    assert upload.put_status == 200
    got = receiver.wait_for(path, timeout=20)
    assert got, f"no webhook for {upload.id}"
    return upload, got[0]


def verified(stack, received, user: str = "e2e-alice") -> dict:
    """The event, verified with its owner's own secret."""
    return Webhook(stack.secret(user)).verify(received.body, received.headers)


def download(url: str) -> Image.Image:
    response = requests.get(url, timeout=10)
    assert response.status_code == 200
    image = Image.open(io.BytesIO(response.content))
    image.load()
    return image


def test_jpeg_end_to_end(stack, receiver):
    data = make_jpeg(3000, 2000, orientation=6, exif_gps=True)
    upload, got = upload_and_wait(stack, receiver, data, "image/jpeg", filename="cat.jpg")
    event = verified(stack, got)
    assert got.headers["webhook-id"] == f"msg_{upload.id}_completed"
    assert event["type"] == "thumbnails.generated"
    assert event["data"]["metadata"] == {"fileSize": len(data), "type": "image/jpeg", "filename": "cat.jpg"}
    assert [(t["size"]["width"], t["size"]["height"]) for t in event["data"]["thumbnails"]] == SIZES
    for thumb, size in zip(event["data"]["thumbnails"], SIZES):
        image = download(thumb["url"])
        assert (image.format, image.size) == ("JPEG", size)
        assert not image.getexif()  # no EXIF, no GPS
    item = stack.client.get(upload.id)
    assert item["status"] == "completed"
    # stored sideways (2000x3000 pixels, orientation 6): the upright size is reported
    assert (item["metadata"]["width"], item["metadata"]["height"]) == (3000, 2000)
    assert item["webhook"]["status"] == "delivered"
    for thumb, size in zip(item["thumbnails"], SIZES):  # fresh links from GET work too
        assert download(thumb["url"]).size == size


def test_png_with_alpha_end_to_end(stack, receiver):
    data = make_png(1200, 900, mode="RGBA")
    upload, got = upload_and_wait(stack, receiver, data, "image/png", filename="logo.png")
    event = verified(stack, got)
    assert event["data"]["status"] == "completed"
    for thumb, size in zip(event["data"]["thumbnails"], SIZES):
        image = download(thumb["url"])
        assert (image.format, image.size, image.mode) == ("PNG", size, "RGBA")


@pytest.mark.parametrize("name, data, content_type, code", [
    ("text sent as a JPEG", b"hello, I am not an image\n" * 40, "image/jpeg", "unsupported_format"),
    ("a GIF sent as PNG", make_gif(), "image/png", "unsupported_format"),
    ("a truncated JPEG", make_truncated_jpeg(), "image/jpeg", "corrupt_image"),
    ("a PNG claiming 4 gigapixels", make_png_bomb_header(65_536, 65_536), "image/png", "image_too_large"),
])
def test_bad_uploads_fail_with_their_code(stack, receiver, name, data, content_type, code):
    upload, got = upload_and_wait(stack, receiver, data, content_type)
    event = verified(stack, got)
    assert got.headers["webhook-id"] == f"msg_{upload.id}_failed"
    assert event["type"] == "thumbnails.failed", name
    assert event["data"]["error"]["code"] == code, name
    assert event["data"]["thumbnails"] == []
    item = stack.client.get(upload.id)
    assert item["status"] == "failed" and item["error"]["code"] == code


def test_upload_larger_than_declared_and_over_the_limit_fails(stack, receiver):
    """moto does not enforce the signed Content-Length, so the resize step must."""
    data = b"\xff\xd8\xff\xe0" + b"\0" * (MAX - 3)  # 11 MiB + 1 byte
    upload, got = upload_and_wait(stack, receiver, data, "image/jpeg", declared_size=MAX)
    assert verified(stack, got)["data"]["error"]["code"] == "file_too_large"


def test_size_limit_at_registration(stack):
    assert stack.client.create(filename="big.jpg", content_type="image/jpeg", file_size=MAX)["id"]
    with pytest.raises(ApiError) as too_big:
        stack.client.create(filename="big.jpg", content_type="image/jpeg", file_size=MAX + 1)
    assert (too_big.value.status, too_big.value.code) == (413, "file_too_large")


def test_presigned_url_cannot_overwrite_an_upload(stack):
    upload = stack.client.upload(make_jpeg(320, 240), content_type="image/jpeg")
    created = upload.created["upload"]
    headers = {k: v for k, v in created["headers"].items() if k != "Content-Length"}
    again = requests.put(created["url"], data=make_jpeg(320, 240), headers=headers, timeout=10)
    assert again.status_code == 412


def test_duplicate_s3_event_sends_nothing_twice(stack, receiver):
    data = make_jpeg(640, 480)
    upload, first = upload_and_wait(stack, receiver, data, "image/jpeg")
    sqs = stack.boto("sqs")
    queue = sqs.get_queue_url(QueueName="thumbgen-uploads")["QueueUrl"]
    record = {"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
              "eventName": "ObjectCreated:Put",
              "s3": {"bucket": {"name": "thumbgen-images"}, "object": {"key": f"uploads/{upload.id}", "size": len(data)}}}
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"Records": [record]}))
    path = first.path
    assert len(receiver.wait_for(path, count=2, timeout=3)) == 1


def test_get_unknown_image_is_404(stack):
    with pytest.raises(ApiError) as unknown:
        stack.client.get(str(uuid.uuid4()))
    assert (unknown.value.status, unknown.value.code) == (404, "not_found")


def test_the_stack_prints_its_api_url_and_the_demo_users_webhook_secret(stack):
    import time

    deadline = time.monotonic() + 10
    while "Ctrl-C" not in stack.log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)  # the banner follows the first successful health check
    banner = stack.log.read_text()
    assert f"API:            {stack.api_url}" in banner
    assert f"webhook secret: {stack.secret(stack.demo_user)} " in banner
    assert stack.secret(stack.demo_user) != stack.secret("e2e-alice")


def test_without_complete_s3s_event_alone_starts_the_resize(stack, receiver):
    """The safety net for a client that never calls POST /images/{id}/complete."""
    path = hook_path()
    upload = stack.client_for("e2e-no-complete").upload(make_jpeg(640, 480), content_type="image/jpeg",
                                                        webhook_url=receiver.url(path), complete=False)
    assert upload.put_status == 200
    [got] = receiver.wait_for(path, timeout=20)
    assert got.headers["webhook-id"] == f"msg_{upload.id}_completed"
    assert verified(stack, got, "e2e-no-complete")["data"]["status"] == "completed"
