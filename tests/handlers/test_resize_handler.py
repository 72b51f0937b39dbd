"""The S3-triggered resize handler through the test Client's Lambda invoke."""
from __future__ import annotations

import io
import json

import boto3
import pytest
from PIL import Image

from tests.conftest import put_upload, upload_event
from tests.imagegen import make_gif, make_jpeg, make_png, make_png_bomb_header, make_truncated_jpeg


def create(client, content_type="image/jpeg", size=1000, **extra):
    body = {"filename": "x", "contentType": content_type, "fileSize": size, **extra}
    response = client.http.post("/images", headers={"Content-Type": "application/json"}, body=json.dumps(body))
    return json.loads(response.body)["id"]


def run_resize(client, aws, image_id):
    event = upload_event(aws.bucket, f"uploads/{image_id}")
    client.lambda_.invoke("resize_upload", event)
    return json.loads(client.http.get(f"/images/{image_id}").body)


def test_jpeg_becomes_three_jpeg_thumbnails(client, aws):
    image_id = create(client)
    put_upload(aws, image_id, make_jpeg(1600, 1200))
    item = run_resize(client, aws, image_id)
    assert item["status"] == "completed", item
    assert [t["size"] for t in item["thumbnails"]] == [
        {"width": 400, "height": 300}, {"width": 160, "height": 120}, {"width": 120, "height": 120}]
    s3 = boto3.client("s3")
    for w, h in ((400, 300), (160, 120), (120, 120)):
        obj = s3.get_object(Bucket=aws.bucket, Key=f"thumbnails/{image_id}/{w}x{h}.jpg")
        assert obj["ContentType"] == "image/jpeg"
        with Image.open(io.BytesIO(obj["Body"].read())) as im:
            assert (im.format, im.size) == ("JPEG", (w, h))
    assert item["metadata"]["width"] == 1600 and item["metadata"]["type"] == "image/jpeg"


def test_png_declared_as_jpeg_is_judged_by_its_bytes(client, aws):
    image_id = create(client, "image/jpeg")
    put_upload(aws, image_id, make_png(800, 600, mode="RGBA"))
    item = run_resize(client, aws, image_id)
    assert item["status"] == "completed"
    assert item["metadata"]["type"] == "image/png"
    assert all(t["url"].split("?")[0].endswith(".png") for t in item["thumbnails"])


@pytest.mark.parametrize("data, code", [
    (b"this is plain text, not a picture", "unsupported_format"),
    (make_gif(), "unsupported_format"),
    (make_truncated_jpeg(), "corrupt_image"),
    (make_png_bomb_header(100_000, 100_000), "image_too_large"),
])
def test_bad_uploads_fail_with_their_code(client, aws, data, code):
    image_id = create(client)
    put_upload(aws, image_id, data)
    item = run_resize(client, aws, image_id)
    assert item["status"] == "failed"
    assert item["error"]["code"] == code
    assert item["thumbnails"] == []


def test_object_over_the_limit_fails_without_being_decoded(make_client, aws):
    client = make_client(MAX_UPLOAD_BYTES="5000")
    image_id = create(client, size=4000)
    put_upload(aws, image_id, make_jpeg(1200, 900, quality=95))  # far more than 5000 bytes
    item = run_resize(client, aws, image_id)
    assert item["status"] == "failed" and item["error"]["code"] == "file_too_large"
    assert item["metadata"]["fileSize"] > 5000


def test_a_duplicate_event_changes_nothing(client, aws):
    image_id = create(client, webhookUrl="https://93.184.216.34/hook")
    put_upload(aws, image_id, make_jpeg(640, 480))
    first = run_resize(client, aws, image_id)
    second = run_resize(client, aws, image_id)
    assert first["status"] == second["status"] == "completed"
    assert first["metadata"]["completedAt"] == second["metadata"]["completedAt"]


def test_objects_without_a_record_are_removed_and_nothing_is_recorded(client, aws):
    put_upload(aws, "not-a-registered-id", make_jpeg(64, 48))
    event = upload_event(aws.bucket, "uploads/not-a-registered-id")
    client.lambda_.invoke("resize_upload", event)  # must not raise
    event = upload_event(aws.bucket, "uploads/a/b/c")
    client.lambda_.invoke("resize_upload", event)
    table = boto3.resource("dynamodb").Table(aws.table)
    assert "Item" not in table.get_item(Key={"id": "not-a-registered-id"})
    assert boto3.client("s3").list_objects_v2(Bucket=aws.bucket)["KeyCount"] == 0


def test_event_for_a_vanished_object_fails_the_image(client, aws):
    image_id = create(client)
    item = run_resize(client, aws, image_id)  # nothing was uploaded under that key
    assert item["status"] == "failed"


def complete(client, image_id):
    response = client.http.post(f"/images/{image_id}/complete")
    return response.status_code, json.loads(response.body)


def test_complete_starts_the_resize_through_the_uploads_queue(client, aws):
    from tests.conftest import queue_messages, sqs_event

    image_id = create(client)
    status, body = complete(client, image_id)
    assert status == 409 and body["error"]["code"] == "upload_missing"  # nothing PUT yet
    put_upload(aws, image_id, make_jpeg(640, 480))
    status, body = complete(client, image_id)
    assert status == 202 and body["id"] == image_id and body["status"] == "pending_upload"
    messages = [m["Body"] for m in queue_messages(aws, aws.upload_queue_url)]
    # S3's own notification (moto sends it too) and ours, naming the same key
    assert [json.loads(b).get("type") for b in messages].count("thumbgen.upload_complete") == 1
    for body in messages:
        client.lambda_.invoke("resize_upload", sqs_event([body]))
    status, body = complete(client, image_id)
    assert status == 200 and body["status"] == "completed" and len(body["thumbnails"]) == 3
    assert queue_messages(aws, aws.upload_queue_url) == []  # a final image starts nothing


def test_complete_and_the_s3_event_racing_make_one_outcome(client, aws):
    from tests.conftest import queue_messages, sqs_event

    image_id = create(client)
    put_upload(aws, image_id, make_jpeg(640, 480))
    complete(client, image_id)
    complete(client, image_id)  # called twice
    bodies = [m["Body"] for m in queue_messages(aws, aws.upload_queue_url)]  # S3's and 2 of ours
    named = [b for b in bodies if f"uploads/{image_id}" in b]
    assert len(named) == 3
    outcomes = set()
    for body in named:
        client.lambda_.invoke("resize_upload", sqs_event([body]))
        outcomes.add(json.loads(client.http.get(f"/images/{image_id}").body)["metadata"]["completedAt"])
    assert len(outcomes) == 1


def test_complete_of_another_users_image_is_not_found(client, aws):
    image_id = create(client)
    put_upload(aws, image_id, make_jpeg(64, 48))
    response = client.as_user("bob").http.post(f"/images/{image_id}/complete")
    assert response.status_code == 404


def test_malformed_upload_messages_are_dropped_not_retried(client, aws):
    from tests.conftest import sqs_event

    for body in ("not json", "[]", '{"Records": [{"eventName": "ObjectCreated:Put"}]}',
                 '{"type": "thumbgen.upload_complete", "key": 5}', '{"Event": "s3:TestEvent"}'):
        client.lambda_.invoke("resize_upload", sqs_event([body]))  # must not raise


def test_s3s_test_event_is_dropped_quietly_and_a_malformed_message_still_logged(client, aws):
    """S3 sends `s3:TestEvent` when the bucket's notification is set up (every `make run`):
    no `resize.dropped_message` line for it; a malformed message keeps its line."""
    import logging

    from tests.conftest import sqs_event

    test_event = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent",
                             "Time": "2026-01-01T00:00:00.000Z", "Bucket": aws.bucket})
    seen: list[logging.LogRecord] = []
    catch = logging.Handler()
    catch.emit = seen.append
    logger = logging.getLogger("thumbgen")
    logger.addHandler(catch)
    try:
        client.lambda_.invoke("resize_upload", sqs_event([test_event]))
        client.lambda_.invoke("resize_upload", sqs_event(['{"Records": "not a list"}']))
    finally:
        logger.removeHandler(catch)
    dropped = [r for r in seen if r.getMessage() == "resize.dropped_message"]
    assert [(r.fields["outcome"], r.fields["body"]) for r in dropped] == [("malformed", '{"Records": "not a list"}')]


def test_dead_lettered_uploads_end_failed(client, aws):
    from tests.conftest import s3_notification, sqs_event

    image_id = create(client)
    client.lambda_.invoke("fail_dead_uploads", sqs_event([s3_notification(aws.bucket, f"uploads/{image_id}")]))
    body = json.loads(client.http.get(f"/images/{image_id}").body)
    assert body["status"] == "failed" and body["error"]["code"] == "internal_error"


def test_an_upload_another_worker_holds_is_queued_again_for_when_its_lease_ends(client, aws):
    from datetime import datetime, timezone

    from chalicelib.images import record
    from tests.conftest import queue_messages

    image_id = create(client)
    put_upload(aws, image_id, make_jpeg(64, 48))
    queue_messages(aws, aws.upload_queue_url)  # S3's own notification: not this test's
    boto3.resource("dynamodb").Table(aws.table).update_item(  # a live worker holds it
        Key={"id": image_id}, UpdateExpression="SET #s = :p, processingStartedAt = :now",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":p": "processing", ":now": record.iso(datetime.now(timezone.utc))})
    client.lambda_.invoke("resize_upload", upload_event(aws.bucket, f"uploads/{image_id}"))  # no error
    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=aws.upload_queue_url, AttributeNames=["ApproximateNumberOfMessagesDelayed"])["Attributes"]
    assert attributes["ApproximateNumberOfMessagesDelayed"] == "1"  # back after the lease
