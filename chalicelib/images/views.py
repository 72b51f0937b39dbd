"""What clients see of a record: the image view of GET /images and the webhook's data.

Links are fresh presigned GETs made for each answer, never stored: a URL signed with
Lambda's temporary credentials dies when those do.
"""
from __future__ import annotations

from typing import Any

from chalicelib.images.record import ImageRecord, ImageStatus, WebhookState
from chalicelib.platform.storage import ImageStorage


def original_url(record: ImageRecord, storage: ImageStorage, ttl: int) -> str | None:
    if record.status == ImageStatus.PENDING_UPLOAD or not record.upload_key:
        return None
    return storage.presign_download(record.upload_key, ttl)


def thumbnails(record: ImageRecord, storage: ImageStorage, ttl: int) -> list[dict[str, Any]]:
    """The thumbnails of a completed image in the order asked for (none otherwise): name,
    actual size, how each was made, its bytes and a fresh link."""
    if record.status != ImageStatus.COMPLETED:
        return []
    return [{"name": t.name, "size": {"width": t.width, "height": t.height}, "fit": t.fit, "gravity": t.gravity,
             "format": t.format, "bytes": t.bytes, "url": storage.presign_download(t.key, ttl)}
            for t in record.thumbnails]


def placeholder(record: ImageRecord) -> str | None:
    """The ThumbHash of a completed image, for a blurred preview before any thumbnail loads."""
    return record.placeholder if record.status == ImageStatus.COMPLETED else None


def file_facts(record: ImageRecord) -> dict[str, Any]:
    """filename, type and size: the real ones once the bytes were seen, else the declared."""
    return {
        "filename": record.filename,
        "type": record.type or record.declared_type,
        "fileSize": int(record.size or record.declared_size or 0),
    }


def metadata(record: ImageRecord) -> dict[str, Any]:
    """What the client said, and what the bytes turned out to be once known."""
    meta: dict[str, Any] = {
        **file_facts(record),
        "declaredType": record.declared_type,
        "declaredSize": int(record.declared_size or 0),
    }
    if record.width:
        meta["width"] = int(record.width)
        meta["height"] = int(record.height or 0)
    for key, value in (("createdAt", record.created_at), ("updatedAt", record.updated_at),
                       ("completedAt", record.completed_at)):
        if value:
            meta[key] = value
    return meta


def webhook(state: WebhookState | None) -> dict[str, Any] | None:
    """The delivery state as GET /images/{id} shows it."""
    if state is None:
        return None
    shown: dict[str, Any] = {
        "id": state.id,
        "url": state.url,
        "status": str(state.status),
        "attempts": state.attempts,
        "lastAttemptAt": state.last_attempt_at,
        "nextAttemptAt": state.next_attempt_at,
    }
    if state.last_status_code is not None:
        shown["lastStatusCode"] = state.last_status_code
    if state.last_error:
        shown["lastError"] = state.last_error
    return shown


def image(record: ImageRecord, storage: ImageStorage, ttl: int) -> dict[str, Any]:
    """GET /images/{id}: status, metadata, fresh links, error, webhook state."""
    return {
        "id": record.id,
        "status": str(record.status),
        "metadata": metadata(record),
        "originalUrl": original_url(record, storage, ttl),
        "thumbnails": thumbnails(record, storage, ttl),
        "placeholder": placeholder(record),
        "error": dict(record.error) if record.error else None,
        "webhook": webhook(record.webhook),
    }
