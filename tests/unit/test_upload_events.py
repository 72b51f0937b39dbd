"""What arrives on the uploads queue: S3's one-off test event names no upload and is told
apart from a malformed message."""
from __future__ import annotations

import json

import pytest

from chalicelib.resize import upload_events

# What S3 sends when a bucket's notification to a queue is set up (AWS's documented shape;
# moto sends the first four fields).
S3_TEST_EVENT = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2026-01-01T00:00:00.000Z",
                            "Bucket": "thumbgen-images", "RequestId": "5582815E1AEA5ADF", "HostId": "8cLeGAmw"})


def test_s3s_test_event_is_recognised_and_names_no_key():
    assert upload_events.is_test_event(S3_TEST_EVENT)
    assert upload_events.read(S3_TEST_EVENT) == []


@pytest.mark.parametrize("body", [
    "not json", "[]", "null", '"s3:TestEvent"', '{"Event": "s3:TestEvent"}',
    '{"Service": "Amazon S3", "Event": "s3:ObjectCreated:Put"}',
    '{"Service": "Amazon SQS", "Event": "s3:TestEvent"}',
    upload_events.complete_message("uploads/x"),
])
def test_anything_else_is_not_the_test_event(body):
    assert not upload_events.is_test_event(body)


def test_the_moto_test_event_is_recognised_too():
    from moto.s3.notifications import _get_test_event

    assert upload_events.is_test_event(json.dumps(_get_test_event("thumbgen-images")))
