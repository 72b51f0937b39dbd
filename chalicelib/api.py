"""The API's use cases: what each route does for an authenticated caller.

Every image belongs to the `sub` that created it. Another user's image answers exactly
like an unknown one (404 not_found, after the same single read), never 403.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Mapping

from chalicelib import images, links, paging
from chalicelib.config import Settings
from chalicelib.errors import ApiError
from chalicelib.records import ImageRecords, QuotaFull, quota_entry
from chalicelib.storage import ImageStorage
from chalicelib.uploads import UploadRequest

QUOTA_TTL = timedelta(days=1)  # the DynamoDB TTL of a pending item whose upload never came


def not_found(image_id: str) -> ApiError:
    return ApiError(404, "not_found", f"no image with id {image_id!r}")


def looks_like_id(image_id: str) -> bool:
    try:
        return str(uuid.UUID(image_id)) == image_id
    except ValueError:
        return False


@dataclass
class ImageApi:
    records: ImageRecords
    storage: ImageStorage
    settings: Settings
    redeliver: Callable[[str, int], tuple[dict[str, Any] | None, dict[str, Any]]]
    start_resize: Callable[[str], None]
    now: Callable[[], Any] = images.utc_now

    def create(self, owner: str, request: UploadRequest) -> dict[str, Any]:
        """Record the pending upload (within the owner's quota) and hand out its presigned PUT."""
        s = self.settings
        image_id = str(uuid.uuid4())
        now = self.now()
        expires = now + timedelta(seconds=s.upload_url_ttl)
        entry = quota_entry(int(expires.timestamp()) + 1, image_id)
        item = images.new_item(
            image_id, owner=owner, quota_entry=entry, filename=request.filename,
            content_type=request.content_type, file_size=request.file_size,
            webhook_url=request.webhook_url, now=now, expires_at=expires,
            ttl_epoch=int((now + QUOTA_TTL).timestamp()),
        )
        upload = self.storage.presign_upload(item["uploadKey"], request.content_type,
                                             request.file_size, s.upload_url_ttl)
        try:
            self.records.create_within_quota(item, owner, entry, s.max_pending_uploads, int(now.timestamp()))
        except QuotaFull as full:
            raise ApiError(429, "too_many_requests",
                           f"{s.max_pending_uploads} uploads are already waiting for their bytes; "
                           "upload those first, or wait for their upload URLs to expire",
                           headers={"Retry-After": str(full.retry_after)}) from None
        return {
            "id": image_id,
            "status": images.PENDING_UPLOAD,
            "upload": {
                "url": upload.url,
                "method": "PUT",
                "headers": upload.headers,
                "expiresAt": images.iso(expires).replace(".000Z", "Z"),
            },
        }

    def owned(self, owner: str, image_id: str) -> dict[str, Any]:
        item = self.records.get(image_id) if looks_like_id(image_id) else None
        if item is None or item.get("owner") != owner:
            raise not_found(image_id)
        return item

    def describe(self, owner: str, image_id: str) -> dict[str, Any]:
        return self.view(self.owned(owner, image_id))

    def view(self, item: Mapping[str, Any]) -> dict[str, Any]:
        """GET /images/{id}: status, metadata, fresh links, error, webhook state."""
        ttl = self.settings.download_url_ttl
        completed = item["status"] == images.COMPLETED
        thumbs = links.thumbnail_urls(item, self.storage, ttl) if completed else []
        return {
            "id": item["id"],
            "status": item["status"],
            "metadata": images.metadata(item),
            "originalUrl": links.original_url(item, self.storage, ttl),
            "thumbnails": images.thumbnail_views(thumbs),
            "error": item.get("error"),
            "webhook": images.public_webhook(item.get("webhook")),
        }

    def list(self, owner: str, limit: int, cursor: str | None) -> dict[str, Any]:
        after = paging.decode_cursor(owner, cursor) if cursor else None
        items, more = self.records.list_owned(owner, limit, after)
        return {
            "images": [self.view(item) for item in items],
            "nextCursor": paging.encode_cursor(owner, items[-1]) if more and items else None,
        }

    def delete(self, owner: str, image_id: str) -> None:
        """The record first (so nothing can act on it again), then every object it named."""
        removed = self.records.delete_owned(image_id, owner) if looks_like_id(image_id) else None
        if removed is None:
            raise not_found(image_id)
        keys = [removed.get("uploadKey") or images.upload_key(image_id)]
        keys += [t["key"] for t in removed.get("thumbnails") or [] if t.get("key")]
        self.storage.delete_keys(keys, prefix=images.thumbnail_prefix(image_id))

    def complete(self, owner: str, image_id: str) -> tuple[int, dict[str, Any]]:
        """The client's PUT is done: check the object is there, start the resize now.

        S3's own event stays the safety net; whichever arrives second finds the image
        claimed or finished and changes nothing. The image stops counting against the
        owner's pending-upload quota now (else when its resize starts). 200 when already
        final, else 202.
        """
        item = self.owned(owner, image_id)
        if item["status"] in images.FINAL_STATUSES:
            return 200, self.view(item)
        if item["status"] == images.PENDING_UPLOAD:
            if self.storage.upload_size(item["uploadKey"]) is None:
                raise ApiError(409, "upload_missing", "nothing has been uploaded for this image yet; "
                               "PUT the bytes to its upload URL first")
            self.start_resize(item["uploadKey"])
            if item.get("quotaEntry"):  # its bytes are here: it no longer waits for an upload
                self.records.release_quota(owner, {item["quotaEntry"]})
        return 202, self.view(item)

    def redeliver_webhook(self, owner: str, image_id: str) -> dict[str, Any]:
        item = self.owned(owner, image_id)
        if not item.get("webhookUrl"):
            raise ApiError(409, "no_webhook", "this image was created without a webhookUrl")
        if item["status"] not in images.FINAL_STATUSES:
            raise ApiError(409, "not_final", f"the image is {item['status']}; nothing to deliver yet")
        max_round = self.settings.max_redeliveries + 1
        state, seen = self.redeliver(image_id, max_round)
        if state is not None:
            return {"id": image_id, "webhook": images.public_webhook(state)}
        webhook = seen.get("webhook") or {}
        if not seen or seen.get("owner") != owner:
            raise not_found(image_id)  # deleted meanwhile
        if webhook.get("status") == "pending":
            raise ApiError(429, "too_many_requests", "a delivery of this event is still in progress",
                           headers={"Retry-After": str(self._seconds_until(webhook.get("nextAttemptAt")))})
        if int(webhook.get("round", 1)) >= max_round:
            raise ApiError(429, "too_many_requests",
                           f"this event was already redelivered {self.settings.max_redeliveries} times")
        raise ApiError(409, "not_final", "the image has no final event to deliver")

    def _seconds_until(self, iso_time: str | None) -> int:
        """Retry-After for a delivery in flight: until its next attempt, else a short wait."""
        if iso_time:
            try:
                due = datetime.fromisoformat(iso_time.replace("Z", "+00:00"))
                return max(1, int((due - self.now()).total_seconds()) + 1)
            except ValueError:
                pass
        return int(self.settings.webhook_connect_timeout + self.settings.webhook_read_timeout) + 1
