"""S3 adapter: presigned PUT/GET, reading uploads with a size cap, writing thumbnails."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

READ_CHUNK = 1 << 20  # how much of an upload is read between two looks at `stop`


class UploadMissing(Exception):
    """The object named by an event is not (or no longer) in the bucket."""


class ReadStopped(Exception):
    """The reader was told to stop: nobody wants these bytes any more."""


class DeleteRefused(RuntimeError):
    """S3 answered a batch delete, but refused some of its keys."""


class PresignUnsupported(RuntimeError):
    """This botocore cannot sign what the upload URL must carry."""


def require_conditional_put(s3_client: Any) -> None:
    """Refuse to start with a botocore that cannot sign `If-None-Match` on PutObject.

    boto3 comes from the Lambda runtime (bundling it would take the zip from ~21 MB to
    ~38 MB). Without that header in the signature a presigned URL could overwrite an
    upload already made, so an older runtime must fail loudly, not sign a weaker URL.
    """
    members = s3_client.meta.service_model.operation_model("PutObject").input_shape.members
    if "IfNoneMatch" not in members:
        import botocore

        raise PresignUnsupported(
            f"botocore {botocore.__version__} cannot sign If-None-Match on PutObject "
            "(needs botocore >= 1.35.16); use a newer Lambda runtime or bundle boto3")


@dataclass(frozen=True)
class PresignedUpload:
    url: str
    headers: dict[str, str]


class ImageStorage:
    def __init__(self, s3_client: Any, bucket: str):
        self._s3 = s3_client
        self.bucket = bucket

    def presign_upload(self, key: str, content_type: str, content_length: int, ttl: int) -> PresignedUpload:
        """A SigV4 PUT that signs type, length and no-overwrite, so S3 refuses anything else."""
        url = self._s3.generate_presigned_url(
            "put_object",
            Params={
                "Bucket": self.bucket,
                "Key": key,
                "ContentType": content_type,
                "ContentLength": content_length,
                "IfNoneMatch": "*",
            },
            ExpiresIn=ttl,
            HttpMethod="PUT",
        )
        headers = {
            "Content-Type": content_type,
            "Content-Length": str(content_length),
            "If-None-Match": "*",
        }
        return PresignedUpload(url=url, headers=headers)

    def presign_download(self, key: str, ttl: int) -> str:
        return self._s3.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=ttl
        )

    def origin(self) -> str:
        """scheme://host[:port] of the presigned URLs this bucket hands out (signed locally,
        no request): the origin a page must be allowed to PUT to and load images from."""
        parts = urlsplit(self.presign_download("uploads/origin", 60))
        return f"{parts.scheme}://{parts.netloc}"

    def upload_size(self, key: str) -> int | None:
        """The size of an uploaded object, or None when there is none (HeadObject)."""
        try:
            return int(self._s3.head_object(Bucket=self.bucket, Key=key)["ContentLength"])
        except self._s3.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def read_upload(self, key: str, max_bytes: int, stop: threading.Event | None = None) -> tuple[int, bytes | None]:
        """(real size, bytes) — bytes is None when the object is over max_bytes.

        The size comes from S3's response headers, so an oversized object is refused
        without its body being read. The body comes in READ_CHUNK pieces; once `stop` is
        set (the caller's claim was refused) the download ends with ReadStopped.
        """
        try:
            response = self._s3.get_object(Bucket=self.bucket, Key=key)
        except self._s3.exceptions.NoSuchKey as exc:
            raise UploadMissing(key) from exc
        body = response["Body"]
        size = int(response["ContentLength"])
        chunks, total = [], 0
        try:
            if size > max_bytes:
                return size, None
            while total <= max_bytes:
                if stop is not None and stop.is_set():
                    raise ReadStopped(key)
                chunk = body.read(min(READ_CHUNK, max_bytes + 1 - total))
                if not chunk:
                    break
                chunks.append(chunk)
                total += len(chunk)
        finally:
            body.close()
        if total > max_bytes:
            return total, None
        return size, b"".join(chunks)

    def delete_keys(self, keys: list[str], prefix: str | None = None) -> None:
        """Delete these keys and everything under prefix (objects a racing writer added)."""
        wanted = set(keys)
        if prefix:
            pages = self._s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
            for page in pages:
                wanted.update(obj["Key"] for obj in page.get("Contents", []))
        ordered = sorted(wanted)
        for start in range(0, len(ordered), 1000):
            batch = ordered[start:start + 1000]
            response = self._s3.delete_objects(
                Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True}
            )
            if response.get("Errors"):
                first = response["Errors"][0]
                raise DeleteRefused(f"S3 refused to delete {first.get('Key')}: {first.get('Code')}")

    def put_object(self, key: str, data: bytes, content_type: str) -> None:
        self._s3.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=data,
            ContentType=content_type,
            CacheControl="public, max-age=31536000, immutable",
        )
