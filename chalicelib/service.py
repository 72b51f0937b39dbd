"""Wiring: builds the adapters from the settings, lazily, once per process.

Handlers in app.py call these getters; tests reset them between runs.
"""
from __future__ import annotations

import threading
import uuid
from datetime import timedelta
from typing import Any

from chalicelib import aws, images, links
from chalicelib.config import Settings, settings
from chalicelib.delivery import WebhookDelivery
from chalicelib.errors import ApiError
from chalicelib.processing import UploadProcessor
from chalicelib.queues import DeliveryQueue
from chalicelib.records import ImageRecords
from chalicelib.storage import ImageStorage
from chalicelib.uploads import UploadRequest
from chalicelib.urlsafety import UrlPolicy
from chalicelib.webhooks import Sender

_lock = threading.RLock()
_cache: dict[str, Any] = {}


def _cached(name: str, build):
    with _lock:
        if name not in _cache:
            _cache[name] = build()
        return _cache[name]


def reset() -> None:
    with _lock:
        _cache.clear()
    aws.reset()


def current_settings() -> Settings:
    return _cached("settings", settings)


def url_policy() -> UrlPolicy:
    s = current_settings()
    return UrlPolicy(allow_private_networks=s.webhook_allow_private_networks,
                     require_https=s.webhook_require_https)


def storage() -> ImageStorage:
    return _cached("storage", lambda: ImageStorage(aws.client("s3"), current_settings().bucket))


def records() -> ImageRecords:
    return _cached("records", lambda: ImageRecords(aws.resource("dynamodb").Table(current_settings().table)))


def processor() -> UploadProcessor:
    return _cached("processor", lambda: UploadProcessor(records(), storage(), current_settings()))


def delivery() -> WebhookDelivery:
    def build() -> WebhookDelivery:
        s = current_settings()
        return WebhookDelivery(
            records=records(),
            queue=DeliveryQueue(aws.client("sqs"), s.delivery_queue_url, s.dead_letter_queue_url),
            sender=Sender(url_policy(), s.webhook_connect_timeout, s.webhook_read_timeout),
            storage=storage(),
            settings=s,
        )
    return _cached("delivery", build)


def create_image(request: UploadRequest) -> dict[str, Any]:
    """Record the pending upload and hand out its presigned PUT."""
    s = current_settings()
    image_id = str(uuid.uuid4())
    now = images.utc_now()
    expires = now + timedelta(seconds=s.upload_url_ttl)
    item = images.new_item(
        image_id, filename=request.filename, content_type=request.content_type,
        file_size=request.file_size, webhook_url=request.webhook_url, now=now,
        expires_at=expires, ttl_epoch=int((now + timedelta(days=1)).timestamp()),
    )
    upload = storage().presign_upload(item["uploadKey"], request.content_type,
                                      request.file_size, s.upload_url_ttl)
    records().create(item)
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


def find_item(image_id: str) -> dict[str, Any]:
    item = records().get(image_id) if _looks_like_id(image_id) else None
    if item is None:
        raise ApiError(404, "not_found", f"no image with id {image_id!r}")
    return item


def _looks_like_id(image_id: str) -> bool:
    try:
        return str(uuid.UUID(image_id)) == image_id
    except ValueError:
        return False


def describe_image(image_id: str) -> dict[str, Any]:
    """GET /images/{id}: status, metadata, fresh thumbnail links, error, webhook state."""
    item = find_item(image_id)
    ttl = current_settings().download_url_ttl
    thumbs = links.thumbnail_urls(item, storage(), ttl) if item["status"] == images.COMPLETED else []
    return {
        "id": item["id"],
        "status": item["status"],
        "metadata": images.metadata(item),
        "originalUrl": links.original_url(item, storage(), ttl),
        "thumbnails": images.thumbnail_views(thumbs),
        "error": item.get("error"),
        "webhook": images.public_webhook(item.get("webhook")),
    }


def redeliver_webhook(image_id: str) -> dict[str, Any]:
    item = find_item(image_id)
    if not item.get("webhookUrl"):
        raise ApiError(409, "no_webhook", "this image was created without a webhookUrl")
    if item["status"] not in images.FINAL_STATUSES:
        raise ApiError(409, "not_final", f"the image is {item['status']}; nothing to deliver yet")
    state = delivery().redeliver(image_id)
    if state is None:
        raise ApiError(409, "not_final", "the image has no final event to deliver")
    return {"id": image_id, "webhook": images.public_webhook(state)}
