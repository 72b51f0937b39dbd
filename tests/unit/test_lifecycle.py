"""Pure rules: request validation, status transitions, event payloads, signatures, retries."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from standardwebhooks import Webhook

from chalicelib.api.upload_request import parse_upload_request
from chalicelib.images import record
from chalicelib.images.record import ImageRecord, Thumbnail
from chalicelib.platform.config import DEFAULT_RETRY_SCHEDULE, Settings, parse_retry_schedule
from chalicelib.platform.errors import ApiError
from chalicelib.webhooks.events import build_event, encode_event, sign
from chalicelib.webhooks.queue import DeliveryTask
from chalicelib.webhooks.sender import AttemptResult
from chalicelib.webhooks.state import next_delay
from chalicelib.webhooks.urls import UrlPolicy

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def parse(body, max_bytes=11 * 1024 * 1024):
    raw = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return parse_upload_request(raw, max_upload_bytes=max_bytes, url_policy=UrlPolicy())


def test_valid_request_is_read_and_the_content_type_is_exact():
    got = parse({"filename": "a.JPG", "contentType": "image/jpeg", "fileSize": 5})
    assert (got.content_type, got.file_size, got.webhook_url) == ("image/jpeg", 5, None)
    with pytest.raises(ApiError) as caught:  # what openapi.yaml's enum says, nothing looser
        parse({"filename": "a.JPG", "contentType": "Image/JPEG; charset=binary", "fileSize": 5})
    assert caught.value.status == 415


@pytest.mark.parametrize("body, status, code", [
    ({"filename": "a", "contentType": "image/gif", "fileSize": "x"}, 400, "invalid_request"),
    ({"filename": "a", "contentType": "image/gif", "fileSize": 10**9}, 415, "unsupported_media_type"),
    ({"filename": "a", "contentType": "image/png", "fileSize": 0}, 400, "invalid_request"),
    ({"filename": "a", "contentType": "image/png", "fileSize": 11534337, "renditions": []}, 413, "file_too_large"),
    ({"filename": "a", "contentType": "image/png", "fileSize": 5, "renditions": [], "webhookUrl": "ftp://x"},
     400, "invalid_request"),
    ({"filename": "a", "contentType": "image/png", "fileSize": 5, "webhookUrl": "ftp://x"}, 422, "invalid_webhook_url"),
])
def test_checks_run_in_the_order_of_the_contract(body, status, code):
    with pytest.raises(ApiError) as caught:
        parse(body)
    assert (caught.value.status, caught.value.code) == (status, code)


def test_limit_is_configurable():
    with pytest.raises(ApiError):
        parse({"filename": "a", "contentType": "image/png", "fileSize": 101}, max_bytes=100)
    assert parse({"filename": "a", "contentType": "image/png", "fileSize": 100}, max_bytes=100)


@pytest.mark.parametrize("key, expected", [
    ("uploads/abc", "abc"), ("uploads/", None), ("uploads/a/b", None), ("thumbnails/x", None),
    ("uploads/" + "x" * 65, None),
])
def test_image_id_from_key(key, expected):
    assert record.image_id_from_key(key) == expected


@pytest.mark.parametrize("old, new, expected", [
    ({"status": "processing"}, {"status": "completed"}, "completed"),
    ({"status": "processing"}, {"status": "failed"}, "failed"),
    (None, {"status": "completed"}, "completed"),
    ({"status": "completed"}, {"status": "completed"}, None),
    ({"status": "pending_upload"}, {"status": "processing"}, None),
    (None, {"status": "pending_upload"}, None),
    ({"status": "completed"}, None, None),
])
def test_only_entering_a_final_status_sends_an_event(old, new, expected):
    def image(state):
        return ImageRecord.from_item({"id": "i", **state}) if state else None
    assert record.entered_final_status(image(old), image(new)) == expected


def test_webhook_id_is_stable_per_image_and_outcome():
    assert record.webhook_id("abc", "completed") == "msg_abc_completed"
    assert record.webhook_id("abc", "completed") != record.webhook_id("abc", "failed")


ITEM = ImageRecord.from_item({
    "id": "img1", "status": "completed", "filename": "cat.jpg", "declaredType": "image/jpeg",
    "declaredSize": 10, "size": 999, "type": "image/jpeg", "completedAt": "2026-01-01T00:00:00.000Z",
    "uploadKey": "uploads/img1",
    "thumbnails": [Thumbnail(f"{w}x{h}.jpg", w, h, "cover", "center", "jpeg", 1, f"thumbnails/img1/{w}x{h}.jpg",
                             "image/jpeg").to_item()
                   for w, h in ((400, 300), (160, 120), (120, 120))],
    "placeholder": "1QcSHQRnh493V4dIh4eXh1h4kJUI",
})


class Links:
    """Presigned GETs as the storage adapter makes them, minus the signature."""

    def presign_download(self, key, ttl):
        return f"https://s/{key}"


def test_completed_event_matches_the_contract():
    event = build_event(ITEM, Links(), 60)
    assert event == {
        "type": "thumbnails.generated", "timestamp": "2026-01-01T00:00:00.000Z",
        "data": {"id": "img1", "status": "completed", "originalUrl": "https://s/uploads/img1",
                 "thumbnails": [{"name": f"{w}x{h}.jpg", "size": {"width": w, "height": h}, "fit": "cover",
                                 "gravity": "center", "format": "jpeg", "bytes": 1,
                                 "url": f"https://s/thumbnails/img1/{w}x{h}.jpg"}
                                for w, h in ((400, 300), (160, 120), (120, 120))],
                 "placeholder": "1QcSHQRnh493V4dIh4eXh1h4kJUI",
                 "metadata": {"fileSize": 999, "type": "image/jpeg", "filename": "cat.jpg"}},
    }


def test_failed_event_carries_the_error_and_no_thumbnails():
    failed = ImageRecord.from_item({**ITEM.to_item(), "status": "failed",
                                    "error": {"code": "corrupt_image", "message": "bad"}})
    event = build_event(failed, Links(), 60)
    assert event["type"] == "thumbnails.failed"
    assert event["data"]["error"] == {"code": "corrupt_image", "message": "bad"}
    assert event["data"]["thumbnails"] == [] and event["data"]["placeholder"] is None


def test_signature_verifies_with_the_standard_webhooks_library():
    body = encode_event(build_event(ITEM, Links(), 60))
    headers = sign((SECRET,), "msg_img1_completed", body, datetime.now(timezone.utc))
    assert Webhook(SECRET).verify(body, headers)["data"]["id"] == "img1"
    with pytest.raises(Exception):
        Webhook(SECRET).verify(body.replace("img1", "img2"), headers)
    with pytest.raises(Exception):
        Webhook("whsec_" + "A" * 32).verify(body, headers)


def test_during_a_rotation_both_secrets_sign_space_separated():
    body, old = encode_event(build_event(ITEM, Links(), 60)), "whsec_" + "B" * 32
    headers = sign((SECRET, old), "msg_img1_completed", body, datetime.now(timezone.utc))
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert all(part.startswith("v1,") for part in headers["webhook-signature"].split(" "))
    for secret in (SECRET, old):  # a receiver on either secret verifies it
        assert Webhook(secret).verify(body, headers)["data"]["id"] == "img1"
    with pytest.raises(Exception):
        Webhook("whsec_" + "A" * 32).verify(body, headers)
    with pytest.raises(TypeError):
        sign(SECRET, "msg_img1_completed", body, datetime.now(timezone.utc))  # a str is not a list


@pytest.mark.parametrize("result, attempt, expected", [
    (AttemptResult(status_code=500), 1, 5),
    (AttemptResult(status_code=500), 2, 300),
    (AttemptResult(error="timeout"), 7, 36000),
    (AttemptResult(status_code=500), 8, None),
    (AttemptResult(status_code=204), 1, None),
    (AttemptResult(status_code=410), 1, None),
    (AttemptResult(status_code=301), 1, 5),
    (AttemptResult(status_code=429, retry_after=60), 1, 60),
    (AttemptResult(status_code=503, retry_after=1), 2, 300),
    (AttemptResult(status_code=429, retry_after=10**9), 1, 86400),
    (AttemptResult(status_code=500, retry_after=600), 1, 5),
    (AttemptResult(error="refused: private"), 1, None),
])
def test_retry_schedule(result, attempt, expected):
    assert next_delay(attempt, DEFAULT_RETRY_SCHEDULE, result) == expected


def test_retry_schedule_setting():
    assert parse_retry_schedule("1, 2,3") == (1, 2, 3)
    assert parse_retry_schedule("") == DEFAULT_RETRY_SCHEDULE
    with pytest.raises(ValueError):
        parse_retry_schedule("5,-1")
    assert Settings.from_env({}).max_upload_bytes == 11_534_336


@pytest.mark.parametrize("body", ["", "{}", "[]", '{"image_id": "a", "webhook_id": "b", "round": 1, "attempt": 0}',
                                  '{"image_id": "a", "webhook_id": "b", "round": "x", "attempt": 1}'])
def test_malformed_delivery_tasks_are_refused(body):
    with pytest.raises(ValueError):
        DeliveryTask.from_json(body)


def test_delivery_task_round_trips():
    task = DeliveryTask("a", "b", 2, 3, 12.5)
    assert DeliveryTask.from_json(task.to_json()) == task
    dead = DeliveryTask("a", "b", 2, 3, dead_lettered=True)
    assert DeliveryTask.from_json(dead.to_json()) == dead


@pytest.mark.parametrize("mark", ['"yes"', "1", "null"])
def test_only_a_true_marks_a_task_dead_lettered(mark):
    body = f'{{"image_id": "a", "webhook_id": "b", "round": 1, "attempt": 1, "dead_lettered": {mark}}}'
    assert DeliveryTask.from_json(body).dead_lettered is False


def test_a_botocore_that_cannot_sign_if_none_match_stops_the_function():
    import boto3
    from botocore.model import ServiceModel

    from chalicelib.platform.storage import PresignUnsupported, require_conditional_put

    s3 = boto3.client("s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    require_conditional_put(s3)  # this botocore can
    model = s3.meta.service_model._service_description
    put = model["shapes"]["PutObjectRequest"]
    old = {**model, "shapes": {**model["shapes"], "PutObjectRequest": {
        **put, "members": {k: v for k, v in put["members"].items() if k != "IfNoneMatch"}}}}

    class OldClient:
        class meta:
            service_model = ServiceModel(old, "s3")

    with pytest.raises(PresignUnsupported, match="If-None-Match"):
        require_conditional_put(OldClient())


@pytest.mark.parametrize("name, value", [
    ("WEBHOOK_REQUIRE_HTTPS", "ture"), ("WEBHOOK_ALLOW_PRIVATE_NETWORKS", "maybe"),
    ("MAX_UPLOAD_BYTES", "11MB"), ("MAX_PENDING_UPLOADS", "0"), ("WEBHOOK_READ_TIMEOUT", "-1"),
    ("WEBHOOK_RETRY_SCHEDULE", "5,x"), ("WEBHOOK_SECRET_OVERLAP_SECONDS", "-1"),
    ("WEBHOOK_HOURLY_ATTEMPTS_PER_HOST", "0"), ("LOG_LEVEL", "LOUD"),
])
def test_a_bad_setting_stops_with_its_name(name, value):
    from chalicelib.platform.config import ConfigError

    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def test_booleans_are_read_strictly():
    assert Settings.from_env({"WEBHOOK_REQUIRE_HTTPS": "TRUE"}).webhook_require_https is True
    assert Settings.from_env({"WEBHOOK_REQUIRE_HTTPS": "0"}).webhook_require_https is False
    assert Settings.from_env({}).webhook_require_https is False
