"""The resize step: an uploaded object in, the image's renditions and a final status out.

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
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Callable

from chalicelib.images import record
from chalicelib.images.record import ImageRecord, ImageStatus, Outcome, Thumbnail
from chalicelib.images.store import RecordStore
from chalicelib.imaging.renditions import Rendition
from chalicelib.platform import logs
from chalicelib.platform.config import Settings
from chalicelib.platform.storage import ImageStorage, UploadMissing
from chalicelib.webhooks import state as webhook_state

log = logs.get("resize")
MAX_PROCESSING_TRIES = 3  # claims of one image before it fails internal_error

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
class Resizer:
    records: RecordStore
    storage: ImageStorage
    settings: Settings
    now: Callable[[], Any] = record.utc_now
    # Sends the first webhook attempt from here, at once. Called with the claimed image
    # as its outcome is about to be written (so what the attempt needs is fetched
    # meanwhile), it returns the call that sends the attempt for the finished item, whose
    # outcome's write claimed it.
    notify: Callable[[ImageRecord], Callable[[ImageRecord], Any]] | None = None
    checkpoint: Callable[[str, str], None] = field(default=_no_checkpoint)

    def process(self, key: str) -> str:
        """Handle one uploaded key; returns the outcome (for logs and tests).

        The upload is downloaded while the image is claimed, which takes the claim off the
        latency path. When the claim is refused (a duplicate: S3's event after a client's
        "complete", or the other way round) the download stops at its next chunk."""
        image_id = record.image_id_from_key(key)
        if image_id is None:
            logs.event(log, "resize.ignored", key=key[:200], outcome="ignored")
            return "ignored"
        started, clock = self.now(), time.perf_counter()
        claimed_at = record.iso(started)
        stale = record.iso(started - timedelta(seconds=self.settings.processing_lease_seconds))
        unwanted = threading.Event()
        read = _uploader.submit(self.storage.read_upload, key, self.settings.max_upload_bytes, unwanted)
        claimed, seen = self.records.start_processing(image_id, claimed_at, stale)
        if claimed is None:
            unwanted.set()
            read.cancel()
            return self._not_claimed(image_id, key, seen)
        tries = claimed.processing_tries
        timings: dict[str, int] = {"claimMs": round((time.perf_counter() - clock) * 1000)}
        self.checkpoint("after_claim", image_id)
        if tries > MAX_PROCESSING_TRIES:
            unwanted.set()  # not tried again: its bytes are not needed
            outcome = Outcome.failure("internal_error", "the image could not be processed; upload it again")
        else:
            try:
                upload = read.result()
                timings["readMs"] = round((time.perf_counter() - clock) * 1000)
                renditions = claimed.renditions or self.settings.default_renditions
                outcome = self._render(image_id, *upload, renditions=renditions, timings=timings)
            except UploadMissing:
                outcome = Outcome.failure("corrupt_image", "the uploaded object is no longer in the bucket")
            except Exception:
                log.exception("resize.error", extra={"fields": {"imageId": image_id, "attempt": tries}})
                if tries < MAX_PROCESSING_TRIES:
                    if not self.records.release_processing(image_id, claimed_at, record.iso(self.now())):
                        logs.event(log, "resize.release_refused", imageId=image_id, attempt=tries)
                    raise  # let the queue retry: it is our fault, not the client's
                outcome = Outcome.failure("internal_error", "the image could not be processed; upload it again")
        self.checkpoint("before_outcome", image_id)
        finished = record.iso(self.now())
        webhook, send_first = None, None
        if claimed.webhook_url:
            webhook = webhook_state.initial(image_id, claimed.webhook_url, str(outcome.status),
                                            claimed_at=finished if self.notify is not None else None)
            send_first = self.notify(claimed) if self.notify is not None else None
        done, seen = self.records.finish(image_id, claimed_at, outcome, finished, webhook)
        if done is None:
            return self._lost(image_id, outcome, seen)
        logs.event(log, "resize.finished", imageId=image_id, outcome=str(outcome.status), attempt=tries,
                   code=(outcome.error or {}).get("code"), durationMs=round((time.perf_counter() - clock) * 1000),
                   size=outcome.size, type=outcome.type, **timings)
        if send_first is not None and done.webhook is not None:
            send_first(done)
        return str(outcome.status)

    def _not_claimed(self, image_id: str, key: str, seen: ImageRecord | None) -> str:
        if seen is None or seen.deleting_at:
            # No record (the image was deleted, or its pending record expired), or one being
            # deleted. The bytes (and any thumbnails a racing worker made) belong to nobody:
            # remove them.
            self.storage.delete_keys([key], prefix=record.thumbnail_prefix(image_id))
            logs.event(log, "resize.orphan_removed", imageId=image_id, outcome="orphan")
            return "orphan"
        if seen.status == ImageStatus.PROCESSING:
            logs.event(log, "resize.claim_held", imageId=image_id, outcome="retry_later")
            raise ClaimHeld(image_id, self._lease_left(seen) + 1)
        logs.event(log, "resize.duplicate", imageId=image_id, outcome="skipped", status=str(seen.status))
        return "skipped"

    def _lease_left(self, seen: ImageRecord) -> int:
        lease = self.settings.processing_lease_seconds
        try:
            started = record.parse_iso(str(seen.processing_started_at))
        except ValueError:
            return lease
        return max(0, min(lease, int((started - self.now()).total_seconds()) + lease))

    def _lost(self, image_id: str, outcome: Outcome, seen: ImageRecord | None) -> str:
        """finish() was refused: the lease was taken over, or the image deleted meanwhile
        (gone, or marked by a DELETE still removing its objects)."""
        if seen is None or seen.deleting_at:
            keys = [t.key for t in outcome.thumbnails] + [record.upload_key(image_id)]
            self.storage.delete_keys(keys, prefix=record.thumbnail_prefix(image_id))
            logs.event(log, "resize.deleted_meanwhile", imageId=image_id, outcome="deleted")
            return "deleted"
        logs.event(log, "resize.claim_lost", level=logging.WARNING, imageId=image_id, outcome="lost",
                   status=str(seen.status))
        return "lost"

    def give_up(self, image_id: str, message: str, claimed_before: str | None = None) -> str:
        """End an image no worker finished as failed / internal_error (dead letters, sweeper).

        With `claimed_before` (the sweeper), only an image still processing under a claim
        made before that time: one a worker has claimed since the sweeper's query is left
        to it. The write is conditional on the claim this read saw."""
        seen = self.records.get(image_id)
        if seen is None or seen.is_final or seen.deleting_at:
            return "nothing_to_do"
        if claimed_before is not None and not (
                seen.status == ImageStatus.PROCESSING and seen.processing_started_at
                and seen.processing_started_at < claimed_before):
            logs.event(log, "resize.not_stuck", imageId=image_id, outcome="skipped", status=str(seen.status))
            return "not_stuck"
        finished = record.iso(self.now())
        webhook = None
        if seen.webhook_url:
            webhook = webhook_state.initial(image_id, seen.webhook_url, str(ImageStatus.FAILED))
        done, _ = self.records.finish_unfinished(seen, Outcome.failure("internal_error", message), finished, webhook)
        outcome = "failed" if done is not None else "changed_meanwhile"
        logs.event(log, "resize.given_up", imageId=image_id, outcome=outcome, was=str(seen.status))
        return outcome

    def _render(self, image_id: str, size: int, data: bytes | None, *, renditions: tuple[Rendition, ...],
                timings: dict[str, int]) -> Outcome:
        from chalicelib.imaging import engine  # the image libraries load only where images are made

        limit = self.settings.max_upload_bytes
        if data is None:
            return Outcome.failure("file_too_large", f"the upload is {size} bytes; the limit is {limit} bytes",
                                   size=size)
        max_pixels = self.settings.max_pixels or engine.MAX_PIXELS
        try:
            started = time.perf_counter()
            result = engine.render(data, renditions, max_pixels=max_pixels)
            timings["engineMs"] = round((time.perf_counter() - started) * 1000)
        except engine.ImageRejected as rejected:
            return Outcome.failure(rejected.code, rejected.message, size=size,
                                   type=engine.sniff_content_type(data[:32]))
        thumbnails, puts = [], []
        for made in result.renditions:  # in the order asked for
            key = record.thumbnail_key(image_id, made.name)
            puts.append(_uploader.submit(self.storage.put_object, key, made.data, made.content_type))
            thumbnails.append(Thumbnail(name=made.name, width=made.width, height=made.height,
                                        fit=made.rendition.fit, gravity=made.rendition.gravity, format=made.format,
                                        bytes=len(made.data), key=key, content_type=made.content_type))
        started = time.perf_counter()
        for put in puts:
            put.result()
        timings["storeMs"] = round((time.perf_counter() - started) * 1000)
        self.checkpoint("after_thumbnails", image_id)
        return Outcome(ImageStatus.COMPLETED, size=size, type=result.content_type, width=result.width,
                       height=result.height, thumbnails=tuple(thumbnails), placeholder=result.placeholder)
