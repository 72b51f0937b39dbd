"""The resize step: an uploaded object in, three thumbnails and a final status out.

Nothing the client said or uploaded is trusted: the size is S3's, the format is sniffed
from the bytes, the pixel count is checked from the header before decoding. Every
refusal ends in `failed` with a code.

Every image whose bytes reach the bucket ends completed or failed within a bound, wherever
a worker dies (timeout, out of memory, crash):
- the claim is a lease (PROCESSING_LEASE_SECONDS, longer than the function's timeout), so
  a dead worker's claim is taken over by the next delivery of the message;
- while a live worker holds the lease, another delivery (S3's event racing `complete`)
  raises ClaimHeld and the handler queues the message again for when the lease ends:
  it then finds the image finished, or takes over from a worker that died;
- a claim made more than MAX_PROCESSING_TRIES times (a worker that dies on this image
  every time) ends `failed / internal_error` without another try;
- a message the queue gives up on reaches the dead-letter consumer, and an item left
  processing too long reaches the sweeper: both call give_up().
"""
from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, Mapping

from chalicelib import images, logs
from chalicelib.config import Settings
from chalicelib.records import ImageRecords
from chalicelib.storage import ImageStorage, UploadMissing

log = logs.get("processing")

_uploader = ThreadPoolExecutor(max_workers=8, thread_name_prefix="thumbgen-s3")


class ClaimHeld(Exception):
    """Another worker holds a live lease on this image: look again in `retry_in` seconds,
    when it has finished or its lease has run out."""

    def __init__(self, image_id: str, retry_in: int):
        super().__init__(f"{image_id} is being processed by another worker; again in {retry_in} s")
        self.retry_in = retry_in


def _no_checkpoint(point: str, image_id: str) -> None:
    """Named points of the resize where the local stack's fault injection may act."""


@dataclass
class UploadProcessor:
    records: ImageRecords
    storage: ImageStorage
    settings: Settings
    now: Callable[[], Any] = images.utc_now
    # Called with the finished item, whose first webhook attempt the outcome's write
    # claimed: sends it from here, at once.
    notify: Callable[[Mapping[str, Any]], Any] | None = None
    checkpoint: Callable[[str, str], None] = field(default=_no_checkpoint)

    def process(self, key: str) -> str:
        """Handle one uploaded key; returns the outcome (for logs and tests)."""
        image_id = images.image_id_from_key(key)
        if image_id is None:
            logs.event(log, "resize.ignored", key=key[:200], outcome="ignored")
            return "ignored"
        started, clock = self.now(), time.perf_counter()
        claimed_at = images.iso(started)
        stale = images.iso(started - timedelta(seconds=self.settings.processing_lease_seconds))
        # Read the upload while claiming it: one round trip less before the thumbnails.
        read = _uploader.submit(self.storage.read_upload, key, self.settings.max_upload_bytes)
        claimed, seen = self.records.start_processing(image_id, claimed_at, stale)
        if claimed is None:
            read.cancel()
            return self._not_claimed(image_id, key, seen)
        tries = int(claimed.get("processingTries", 0))
        self.checkpoint("after_claim", image_id)
        if tries > images.MAX_PROCESSING_TRIES:
            fields = self._failure("internal_error", "the image could not be processed; upload it again")
        else:
            try:
                fields = self._render(image_id, *read.result())
            except UploadMissing:
                fields = self._failure("corrupt_image", "the uploaded object is no longer in the bucket")
            except Exception:
                log.exception("resize.error", extra={"fields": {"imageId": image_id, "attempt": tries}})
                if tries < images.MAX_PROCESSING_TRIES:
                    if not self.records.release_processing(image_id, claimed_at, images.iso(self.now())):
                        logs.event(log, "resize.release_refused", imageId=image_id, attempt=tries)
                    raise  # let the queue retry: it is our fault, not the client's
                fields = self._failure("internal_error", "the image could not be processed; upload it again")
        self.checkpoint("before_outcome", image_id)
        finished = images.iso(self.now())
        fields.update(updatedAt=finished, completedAt=finished)
        if claimed.get("webhookUrl"):
            fields["webhook"] = images.initial_webhook_state(
                image_id, claimed["webhookUrl"], fields["status"],
                claimed_at=finished if self.notify is not None else None)
        item, seen = self.records.finish(image_id, claimed_at, fields)
        if item is None:
            return self._lost(image_id, fields, seen)
        logs.event(log, "resize.finished", imageId=image_id, outcome=fields["status"], attempt=tries,
                   code=(fields.get("error") or {}).get("code"), durationMs=round((time.perf_counter() - clock) * 1000),
                   size=fields.get("size"), type=fields.get("type"))
        if self.notify is not None and item.get("webhook"):
            self.notify(item)
        return fields["status"]

    def _not_claimed(self, image_id: str, key: str, seen: Mapping[str, Any]) -> str:
        if not seen:
            # No record: the image was deleted, or its pending record expired. The bytes
            # (and any thumbnails a racing worker made) belong to nobody: remove them.
            self.storage.delete_keys([key], prefix=images.thumbnail_prefix(image_id))
            logs.event(log, "resize.orphan_removed", imageId=image_id, outcome="orphan")
            return "orphan"
        if seen.get("status") == images.PROCESSING:
            logs.event(log, "resize.claim_held", imageId=image_id, outcome="retry_later")
            raise ClaimHeld(image_id, self._lease_left(seen) + 1)
        logs.event(log, "resize.duplicate", imageId=image_id, outcome="skipped", status=seen.get("status"))
        return "skipped"

    def _lease_left(self, seen: Mapping[str, Any]) -> int:
        lease = self.settings.processing_lease_seconds
        try:
            started = datetime.fromisoformat(str(seen["processingStartedAt"]).replace("Z", "+00:00"))
        except (KeyError, ValueError):
            return lease
        return max(0, min(lease, int((started - self.now()).total_seconds()) + lease))

    def _lost(self, image_id: str, fields: Mapping[str, Any], seen: Mapping[str, Any]) -> str:
        """finish() was refused: the lease was taken over, or the image deleted meanwhile."""
        if not seen:
            keys = [t["key"] for t in fields.get("thumbnails") or []] + [images.upload_key(image_id)]
            self.storage.delete_keys(keys, prefix=images.thumbnail_prefix(image_id))
            logs.event(log, "resize.deleted_meanwhile", imageId=image_id, outcome="deleted")
            return "deleted"
        logs.event(log, "resize.claim_lost", level=logging.WARNING, imageId=image_id, outcome="lost",
                   status=seen.get("status"))
        return "lost"

    def give_up(self, image_id: str, message: str) -> str:
        """End an image no worker finished as failed / internal_error (dead letters, sweeper)."""
        seen = self.records.get(image_id)
        if seen is None or seen.get("status") in images.FINAL_STATUSES:
            return "nothing_to_do"
        finished = images.iso(self.now())
        fields = self._failure("internal_error", message)
        fields.update(updatedAt=finished, completedAt=finished)
        if seen.get("webhookUrl"):
            fields["webhook"] = images.initial_webhook_state(image_id, seen["webhookUrl"], images.FAILED)
        item, _ = self.records.finish_unfinished(image_id, seen, fields)
        outcome = "failed" if item is not None else "changed_meanwhile"
        logs.event(log, "resize.given_up", imageId=image_id, outcome=outcome, was=seen.get("status"))
        return outcome

    def _failure(self, code: str, message: str, **facts: Any) -> dict[str, Any]:
        return {"status": images.FAILED, "error": {"code": code, "message": message}, **facts}

    def _render(self, image_id: str, size: int, data: bytes | None) -> dict[str, Any]:
        from chalicelib import imaging  # the image libraries load only where images are made

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
        self.checkpoint("after_thumbnails", image_id)
        return {
            "status": images.COMPLETED,
            "size": size,
            "type": result.content_type,
            "width": result.width,
            "height": result.height,
            "thumbnails": thumbnails,
        }
