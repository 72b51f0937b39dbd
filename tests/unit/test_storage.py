"""Reading an upload from S3: exact bytes in chunks, the size cap, and stopping on request."""
from __future__ import annotations

import os
import threading

import boto3
import pytest
from moto import mock_aws

from chalicelib.storage import READ_CHUNK, ImageStorage, ReadStopped, UploadMissing


@pytest.fixture
def storage(monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="uploads-bucket")
        yield ImageStorage(s3, "uploads-bucket")


def put(storage, key, data):
    storage._s3.put_object(Bucket="uploads-bucket", Key=key, Body=data)


def test_an_upload_of_several_chunks_comes_back_whole(storage):
    data = os.urandom(2 * READ_CHUNK + 123)
    put(storage, "uploads/a", data)
    assert storage.read_upload("uploads/a", len(data)) == (len(data), data)
    assert storage.read_upload("uploads/a", len(data) - 1) == (len(data), None)  # one byte over


def test_a_missing_upload_is_reported(storage):
    with pytest.raises(UploadMissing):
        storage.read_upload("uploads/none", 100)


class CountingBody:
    """Wraps the S3 body, counting the reads the download makes."""

    def __init__(self, body, stop, after):
        self.body, self.stop, self.after, self.reads = body, stop, after, 0

    def read(self, amount):
        self.reads += 1
        if self.reads == self.after:
            self.stop.set()
        return self.body.read(amount)

    def close(self):
        self.body.close()


def test_a_download_told_to_stop_ends_at_its_next_chunk(storage, monkeypatch):
    put(storage, "uploads/big", os.urandom(5 * READ_CHUNK))
    stop, bodies = threading.Event(), []
    real_get = storage._s3.get_object

    def get_object(**kwargs):
        response = real_get(**kwargs)
        bodies.append(CountingBody(response["Body"], stop, after=2))
        return {**response, "Body": bodies[-1]}

    monkeypatch.setattr(storage._s3, "get_object", get_object)
    with pytest.raises(ReadStopped):
        storage.read_upload("uploads/big", 10 * READ_CHUNK, stop)
    assert bodies[0].reads == 2  # of the 6 a whole download takes
