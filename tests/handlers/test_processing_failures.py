"""Our own failures (S3 or DynamoDB trouble) are retried a bounded number of times."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import boto3
import pytest

from chalicelib import images
from chalicelib.config import Settings
from chalicelib.processing import UploadProcessor
from chalicelib.records import ImageRecords


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
        with pytest.raises(ConnectionError):
            processor.process("uploads/img-1")  # raised: the event source retries
        assert table.get_item(Key={"id": "img-1"})["Item"]["status"] == "pending_upload"
    assert processor.process("uploads/img-1") == "failed"
    item = table.get_item(Key={"id": "img-1"})["Item"]
    assert item["status"] == "failed" and item["error"]["code"] == "internal_error"
    assert processor.process("uploads/img-1") == "skipped"  # and never again


def test_a_claim_held_by_a_live_worker_is_not_taken_over(aws):
    table = boto3.resource("dynamodb").Table(aws.table)
    pending_item(table, "img-2")
    records = ImageRecords(table)
    now = images.iso(datetime.now(timezone.utc))
    long_ago = images.iso(datetime.now(timezone.utc) - timedelta(minutes=10))
    assert records.start_processing("img-2", now, long_ago) is not None
    assert records.start_processing("img-2", now, long_ago) is None  # still fresh
    later = images.iso(datetime.now(timezone.utc) + timedelta(minutes=10))
    assert records.start_processing("img-2", later, later) is not None  # lease ran out
