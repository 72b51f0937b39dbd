"""Reading an upload from S3: exact bytes in chunks, the size cap, and stopping on request."""
from __future__ import annotations

import os
import threading

import boto3
import pytest
from moto import mock_aws

from chalicelib.platform.storage import READ_CHUNK, ImageStorage, ReadStopped, UploadMissing


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


@pytest.fixture
def signed_in(monkeypatch):
    """ImageStorage over the app's own S3 client in `region` (presigning is local: no request)."""
    from chalicelib.platform import aws

    def build(region: str, endpoint: str | None = None) -> ImageStorage:
        for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                            "AWS_DEFAULT_REGION": region, "AWS_REGION": region}.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
        if endpoint:
            monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        else:
            monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
        aws.reset()
        return ImageStorage(aws.client("s3"), f"thumbgen-dev-123456789012-{region}")

    yield build
    aws.reset()


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1", "af-south-1"])
def test_presigned_urls_and_the_page_origin_name_the_buckets_regional_host(signed_in, region):
    """Not the global bucket.s3.amazonaws.com: outside us-east-1 it answers 307 for up to a
    day after the bucket is made, and a browser does not follow a preflighted PUT's redirect."""
    from urllib.parse import urlsplit

    from chalicelib.api.webpage import content_security_policy

    storage = signed_in(region)
    host = f"{storage.bucket}.s3.{region}.amazonaws.com"
    put = storage.presign_upload("uploads/a", "image/png", 10, 600)
    get = storage.presign_download("thumbnails/a/400x300.png", 3600)
    for url, path in ((put.url, "/uploads/a"), (get, "/thumbnails/a/400x300.png")):
        parts = urlsplit(url)
        assert (parts.scheme, parts.netloc, parts.path) == ("https", host, path)
        assert f"%2F{region}%2Fs3%2Faws4_request" in parts.query  # SigV4 for the bucket's region
    assert storage.origin() == f"https://{host}"
    policy = content_security_policy(f"https://cognito-idp.{region}.amazonaws.com", storage.origin())
    assert f"img-src 'self' https://{host};" in policy and f" https://{host};" in policy.split("connect-src")[1]


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:4566", "http://localhost:4566"])
def test_a_local_endpoint_keeps_path_style_urls(signed_in, endpoint):
    storage = signed_in("eu-west-1", endpoint)
    assert storage.presign_upload("uploads/a", "image/png", 10, 600).url.startswith(
        f"{endpoint}/{storage.bucket}/uploads/a?")
    assert storage.origin() == endpoint
