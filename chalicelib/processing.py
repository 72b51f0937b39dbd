"""The resize step: an uploaded object in, three thumbnails and a final status out.

Nothing the client said or uploaded is trusted: the size is S3's, the format is sniffed
from the bytes, the pixel count is checked from the header before decoding. Every
refusal ends in `failed` with a code; only infrastructure errors are retried, a bounded
number of times.
"""
from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable

from chalicelib import images, imaging
from chalicelib.config import Settings
from chalicelib.records import ImageRecords
from chalicelib.storage import ImageStorage, UploadMissing

log = logging.getLogger(__name__)

_uploader = ThreadPoolExecutor(max_workers=8, thread_name_prefix="thumbgen-s3")


@dataclass
class UploadProcessor:
    records: ImageRecords
    storage: ImageStorage
    settings: Settings
    now: Callable[[], Any] = images.utc_now

    def process(self, key: str) -> str:
        """Handle one ObjectCreated key; returns the outcome (for logs and tests)."""
        image_id = images.image_id_from_key(key)
        if image_id is None:
            log.warning("ignoring object outside uploads/{id}: %r", key)
            return "ignored"
        started = self.now()
        claimed_at = images.iso(started)
        stale = images.iso(started - timedelta(seconds=self.settings.processing_lease_seconds))
        # Read the upload while claiming it: one round trip less before the thumbnails.
        read = _uploader.submit(self.storage.read_upload, key, self.settings.max_upload_bytes)
        claimed = self.records.start_processing(image_id, claimed_at, stale)
        if claimed is None:
            read.cancel()
            # Unknown id, or a duplicate event for an image already handled or in hand.
            log.info("not claiming %s: unknown, in progress or already done", image_id)
            return "skipped"
        try:
            fields = self._render(image_id, *read.result())
        except UploadMissing:
            fields = self._failure("corrupt_image", "the uploaded object is no longer in the bucket")
        except Exception:
            log.exception("unexpected error processing %s", image_id)
            if int(claimed.get("processingTries", 0)) < images.MAX_PROCESSING_TRIES:
                self.records.release_processing(image_id, claimed_at, images.iso(self.now()))
                raise  # let the event source retry: it is our fault, not the client's
            fields = self._failure("internal_error", "the image could not be processed; try again")
        finished = images.iso(self.now())
        fields.update(updatedAt=finished, completedAt=finished)
        if claimed.get("webhookUrl"):
            fields["webhook"] = images.initial_webhook_state(image_id, claimed["webhookUrl"], fields["status"])
        if not self.records.finish(image_id, claimed_at, fields):
            log.warning("lost the claim on %s before finishing; another worker took over", image_id)
            return "lost"
        return fields["status"]

    def _failure(self, code: str, message: str, **facts: Any) -> dict[str, Any]:
        return {"status": images.FAILED, "error": {"code": code, "message": message}, **facts}

    def _render(self, image_id: str, size: int, data: bytes | None) -> dict[str, Any]:
        limit = self.settings.max_upload_bytes
        if data is None:
            return self._failure(
                "file_too_large", f"the upload is {size} bytes; the limit is {limit} bytes", size=size
            )
        max_pixels = self.settings.max_pixels or imaging.MAX_PIXELS
        try:
            result = imaging.render_thumbnails(data, max_pixels=max_pixels)
        except imaging.ImageRejected as rejected:
            fields = self._failure(rejected.code, rejected.message, size=size)
            sniffed = imaging.sniff_content_type(data[:32])
            if sniffed:
                fields["type"] = sniffed
            return fields
        thumbnails = []
        puts = []
        for rendition in result.renditions:
            thumb_key = images.thumbnail_key(image_id, rendition.width, rendition.height, rendition.extension)
            puts.append(_uploader.submit(self.storage.put_object, thumb_key, rendition.data, rendition.content_type))
            thumbnails.append({
                "width": rendition.width, "height": rendition.height, "key": thumb_key,
                "contentType": rendition.content_type, "size": len(rendition.data),
            })
        for put in puts:
            put.result()
        return {
            "status": images.COMPLETED,
            "size": size,
            "type": result.content_type,
            "width": result.width,
            "height": result.height,
            "thumbnails": thumbnails,
        }
