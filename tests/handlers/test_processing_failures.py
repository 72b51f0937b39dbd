"""Our own failures (S3 or DynamoDB trouble) are retried a bounded number of times.

These call chalicelib directly; `running_as` holds those calls to the function's role."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import boto3
import pytest

from chalicelib import images
from chalicelib.config import Settings
from chalicelib.processing import UploadProcessor
from chalicelib.records import ImageRecords
from tests.conftest import stage_environment
from tests.iam.plugin import running_as


class BrokenStorage:
    """An S3 that is down: every read fails the way botocore would."""

    def read_upload(self, key, max_bytes):
        raise ConnectionError("S3 is unreachable")


def pending_item(table, image_id):
    now = datetime.now(timezone.utc)
    table.put_item(Item=images.new_item(
        image_id, filename="a.jpg", content_type="image/jpeg", file_size=10, webhook_url=None,
        now=now, expires_at=now + timedelta(minutes=10), ttl_epoch=0))


def test_infrastructure_errors_are_retried_then_fail_with_internal_error(aws):
    table = boto3.resource("dynamodb").Table(aws.table)
    pending_item(table, "img-1")
    processor = UploadProcessor(ImageRecords(table), BrokenStorage(), Settings.from_env({}))
    for attempt in range(images.MAX_PROCESSING_TRIES - 1):
        with pytest.raises(ConnectionError), running_as("resize_upload", stage_environment(aws)):
            processor.process("uploads/img-1")  # raised: the event source retries
        assert table.get_item(Key={"id": "img-1"})["Item"]["status"] == "pending_upload"
    with running_as("resize_upload", stage_environment(aws)):
        assert processor.process("uploads/img-1") == "failed"
    item = table.get_item(Key={"id": "img-1"})["Item"]
    assert item["status"] == "failed" and item["error"]["code"] == "internal_error"
    with running_as("resize_upload", stage_environment(aws)):
        assert processor.process("uploads/img-1") == "skipped"  # and never again


def test_a_claim_held_by_a_live_worker_is_not_taken_over(aws):
    table = boto3.resource("dynamodb").Table(aws.table)
    pending_item(table, "img-2")
    records = ImageRecords(table)
    now = images.iso(datetime.now(timezone.utc))
    long_ago = images.iso(datetime.now(timezone.utc) - timedelta(minutes=10))
    with running_as("resize_upload", stage_environment(aws)):
        assert records.start_processing("img-2", now, long_ago) is not None
        assert records.start_processing("img-2", now, long_ago) is None  # still fresh
        later = images.iso(datetime.now(timezone.utc) + timedelta(minutes=10))
        assert records.start_processing("img-2", later, later) is not None  # lease ran out


def test_an_attempt_whose_sender_died_is_taken_over_once_stale(aws):
    table = boto3.resource("dynamodb").Table(aws.table)
    pending_item(table, "img-3")
    table.update_item(Key={"id": "img-3"}, UpdateExpression="SET webhook = :w",
                      ExpressionAttributeValues={":w": images.initial_webhook_state("img-3", "https://h", "completed")})
    records = ImageRecords(table)
    wid = images.webhook_id("img-3", "completed")
    t0 = "2026-01-01T00:00:00.000Z"
    with running_as("deliver_webhook", stage_environment(aws)):
        assert records.claim_attempt("img-3", wid, 1, 1, t0, "2025-12-31T23:59:00.000Z") is not None
        # the sender dies here; SQS redelivers the same task
        assert records.claim_attempt("img-3", wid, 1, 1, "2026-01-01T00:00:10.000Z", "2025-12-31T23:59:10.000Z") is None
        later = records.claim_attempt("img-3", wid, 1, 1, "2026-01-01T00:05:00.000Z", "2026-01-01T00:04:00.000Z")
        assert later is not None and later["webhook"]["attempts"] == 1
        # once recorded, the attempt is never sent again
        assert records.record_attempt("img-3", wid, 1, 1, {"status": "delivered", "lastStatusCode": 204}, t0)
        assert records.claim_attempt("img-3", wid, 1, 1, "2026-01-02T00:00:00.000Z", "2026-01-01T23:00:00.000Z") is None
        assert records.claim_attempt("img-3", wid, 1, 2, "2026-01-02T00:00:00.000Z", "2026-01-01T23:00:00.000Z") is None
