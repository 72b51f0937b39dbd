"""The API's use cases: what each route does for an authenticated caller.

Every image belongs to the `sub` that created it. Another user's image answers exactly
like an unknown one (404 not_found, after the same single read), never 403.
"""
from __future__ import annotations

import logging
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.api import paging
from chalicelib.api.upload_request import UploadRequest
from chalicelib.images import record, views
from chalicelib.images.record import ImageRecord, ImageStatus, WebhookState
from chalicelib.images.store import QuotaFull, RecordStore, entry_image_id, quota_entry
from chalicelib.platform import logs
from chalicelib.platform.config import Settings
from chalicelib.platform.errors import ApiError
from chalicelib.platform.storage import DeleteRefused, ImageStorage
from chalicelib.webhooks import state as webhook_state
from chalicelib.webhooks.state import Refusal

RECORD_TTL = timedelta(days=1)  # the DynamoDB TTL of a pending record whose upload never came
DELETE_RETRY_AFTER = 2  # seconds: S3 trouble that stopped a DELETE is usually brief
# A full quota is a hint, not a wait: a slot frees as soon as one of the owner's pending
# uploads arrives (api.md#limits), usually within seconds; the expiry is the worst case.
QUOTA_RETRY_AFTER = 2
log = logs.get("api")
_lookups = ThreadPoolExecutor(max_workers=8, thread_name_prefix="thumbgen-api")  # S3 looks, off the request's thread


def not_found(image_id: str) -> ApiError:
    return ApiError(404, "not_found", f"no image with id {image_id!r}")


def looks_like_id(image_id: str) -> bool:
    try:
        return str(uuid.UUID(image_id)) == image_id
    except ValueError:
        return False


@dataclass
class ImageApi:
    records: RecordStore
    storage: ImageStorage
    settings: Settings
    redeliver: Callable[[str, int], tuple[WebhookState | None, ImageRecord | None]]
    start_resize: Callable[[str], None]
    cursor_key: Callable[[], bytes]  # the stage's cursor key, read when a list first needs it
    now: Callable[[], Any] = record.utc_now

    def create(self, owner: str, request: UploadRequest) -> dict[str, Any]:
        """Record the pending upload (within the owner's quota) and hand out its presigned PUT."""
        s = self.settings
        image_id = str(uuid.uuid4())
        now = self.now()
        expires = now + timedelta(seconds=s.upload_url_ttl)
        pending = ImageRecord.new_pending(
            image_id, owner=owner, quota_entry=quota_entry(int(expires.timestamp()) + 1, image_id),
            filename=request.filename, content_type=request.content_type, file_size=request.file_size,
            webhook_url=request.webhook_url, now=now, expires_at=expires,
            ttl_epoch=int((now + RECORD_TTL).timestamp()),
            renditions=request.renditions or s.default_renditions,
        )
        upload = self.storage.presign_upload(str(pending.upload_key), request.content_type,
                                             request.file_size, s.upload_url_ttl)
        try:
            self.records.create_within_quota(pending, s.max_pending_uploads, int(now.timestamp()), self._arrived)
        except QuotaFull as full:
            raise ApiError(429, "too_many_requests",
                           f"{s.max_pending_uploads} uploads are already waiting for their bytes; a slot "
                           "frees as soon as one of them is uploaded, or when its upload URL expires "
                           f"(the first in {full.retry_after} s)",
                           headers={"Retry-After": str(min(full.retry_after, QUOTA_RETRY_AFTER))}) from None
        return {
            "id": image_id,
            "status": str(ImageStatus.PENDING_UPLOAD),
            "upload": {
                "url": upload.url,
                "method": "PUT",
                "headers": upload.headers,
                "expiresAt": record.iso(expires),  # millisecond precision, as every time we answer
            },
        }

    def _arrived(self, entries: list[str]) -> set[str]:
        """The quota entries whose bytes are already in the bucket (HeadObject each, at once):
        S3's event for them may be on its way, or queued behind other resizes."""
        sizes = {e: _lookups.submit(self.storage.upload_size, record.upload_key(entry_image_id(e)))
                 for e in entries if looks_like_id(entry_image_id(e))}
        return {e for e, size in sizes.items() if size.result() is not None}

    def owned(self, owner: str, image_id: str) -> ImageRecord:
        found = self.records.get(image_id) if looks_like_id(image_id) else None
        if found is None or found.owner != owner:
            raise not_found(image_id)
        return found

    def view(self, image: ImageRecord) -> dict[str, Any]:
        return views.image(image, self.storage, self.settings.download_url_ttl)

    def describe(self, owner: str, image_id: str) -> dict[str, Any]:
        return self.view(self.owned(owner, image_id))

    def list(self, owner: str, limit: int, cursor: str | None) -> dict[str, Any]:
        after = paging.decode_cursor(self.cursor_key(), owner, cursor) if cursor else None
        page, more = self.records.list_owned(owner, limit, after)
        last = page[-1] if page else None
        position = {"id": last.id, "createdAt": last.created_at} if more and last else None
        return {
            "images": [self.view(image) for image in page],
            "nextCursor": paging.encode_cursor(self.cursor_key(), owner, position) if position else None,
        }

    def delete(self, owner: str, image_id: str) -> None:
        """Mark the record (no resize may claim it or write its outcome from now on), delete
        every object, then the record. If the objects cannot be deleted, 503: the record stays
        (GET still shows the image: nobody is told it is gone while bytes remain) and the
        next DELETE finishes the job."""
        marked = None
        if looks_like_id(image_id):
            marked = self.records.mark_deleting(image_id, owner, record.iso(self.now()))
        if marked is None:
            raise not_found(image_id)
        keys = [marked.upload_key or record.upload_key(image_id)] + [t.key for t in marked.thumbnails]
        try:
            self.storage.delete_keys(keys, prefix=record.thumbnail_prefix(image_id))
        except (BotoCoreError, ClientError, DeleteRefused) as exc:
            logs.event(log, "delete.incomplete", level=logging.WARNING, imageId=image_id, reason=str(exc)[:300])
            raise ApiError(503, "unavailable", "the image could not be deleted completely; DELETE it again",
                           headers={"Retry-After": str(DELETE_RETRY_AFTER)}) from None
        self.records.delete_marked(image_id, owner)

    def complete(self, owner: str, image_id: str) -> tuple[int, dict[str, Any]]:
        """The client's PUT is done: check the object is there, start the resize now.

        S3's own event stays the safety net; whichever arrives second finds the image
        claimed or finished and changes nothing. The image stops counting against the
        owner's pending-upload quota now (else when its resize starts). 200 when already
        final, else 202.
        """
        # The object is looked at while the record is read: one round trip less before the
        # resize starts (the key follows from the id; the answer is used only if it is theirs).
        size = _lookups.submit(self.storage.upload_size, record.upload_key(image_id)) if looks_like_id(image_id) else None
        image = self.owned(owner, image_id)
        if image.is_final:
            return 200, self.view(image)
        if image.status == ImageStatus.PENDING_UPLOAD:
            key = image.upload_key or record.upload_key(image_id)
            if size is None or size.result() is None:
                raise ApiError(409, "upload_missing", "nothing has been uploaded for this image yet; "
                               "PUT the bytes to its upload URL first")
            self.start_resize(key)
            if image.quota_entry:  # its bytes are here: it no longer waits for an upload
                self.records.release_quota(owner, {image.quota_entry})
        return 202, self.view(image)

    def redeliver_webhook(self, owner: str, image_id: str) -> dict[str, Any]:
        """A new round of the image's final event (same webhook-id): one round at a time,
        at most MAX_REDELIVERIES rounds (webhook_state.redelivery_refusal)."""
        max_round = self.settings.max_redeliveries + 1
        image: ImageRecord | None = self.owned(owner, image_id)
        refusal = webhook_state.redelivery_refusal(image, owner, max_round)
        if refusal is None:
            state, image = self.redeliver(image_id, max_round)
            if state is not None:
                return {"id": image_id, "webhook": views.webhook(state)}
            refusal = webhook_state.redelivery_refusal(image, owner, max_round)  # changed meanwhile
        raise self._refused(image_id, image, refusal)

    def _refused(self, image_id: str, image: ImageRecord | None, refusal: Refusal | None) -> ApiError:
        if refusal == Refusal.NO_WEBHOOK:
            return ApiError(409, "no_webhook", "this image was created without a webhookUrl")
        if refusal == Refusal.IN_FLIGHT:
            return ApiError(429, "too_many_requests", "a delivery of this event is still in progress",
                            headers={"Retry-After": str(self._in_flight_wait(image))})
        if refusal == Refusal.ROUNDS_SPENT:
            return ApiError(429, "too_many_requests",
                            f"this event was already redelivered {self.settings.max_redeliveries} times")
        if refusal == Refusal.GONE:
            return not_found(image_id)
        return ApiError(409, "not_final", "the image has no final event to deliver yet")

    def _in_flight_wait(self, image: ImageRecord | None) -> int:
        """Retry-After for a delivery in flight: until its next attempt, else one attempt's time."""
        due = image.webhook.next_attempt_at if image and image.webhook else None
        if due:
            try:
                return max(1, int((record.parse_iso(due) - self.now()).total_seconds()) + 1)
            except ValueError:
                pass
        return int(self.settings.webhook_connect_timeout + self.settings.webhook_read_timeout) + 1
