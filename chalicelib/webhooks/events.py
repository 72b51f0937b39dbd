"""Webhook events: the body of thumbnails.generated / thumbnails.failed and its Standard
Webhooks signature by the owner's secrets (docs/webhooks.md)."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Mapping, Sequence

from standardwebhooks import Webhook

from chalicelib.images import views
from chalicelib.images.record import ImageRecord, ImageStatus
from chalicelib.platform.storage import ImageStorage

USER_AGENT = "thumbgen-webhooks/1.0"
EVENT_TYPES = {ImageStatus.COMPLETED: "thumbnails.generated", ImageStatus.FAILED: "thumbnails.failed"}


def build_event(record: ImageRecord, storage: ImageStorage, link_ttl: int) -> dict[str, Any]:
    """The event of a final record, with fresh links to its original and thumbnails."""
    data: dict[str, Any] = {
        "id": record.id,
        "status": str(record.status),
        "originalUrl": views.original_url(record, storage, link_ttl),
        "thumbnails": views.thumbnails(record, storage, link_ttl),
        "placeholder": views.placeholder(record),
        "metadata": views.file_facts(record),
    }
    if record.status == ImageStatus.FAILED:
        data["error"] = dict(record.error) if record.error else {"code": "internal_error", "message": "failed"}
    return {
        "type": EVENT_TYPES[record.status],
        "timestamp": record.completed_at or record.updated_at,
        "data": data,
    }


def encode_event(event: Mapping[str, Any]) -> str:
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False)


def sign(secrets: Sequence[str], msg_id: str, body: str, at: datetime) -> dict[str, str]:
    """Standard Webhooks headers; a fresh timestamp on every attempt, the same id. One
    signature per secret, space-separated (a rotation's overlap signs with two)."""
    if isinstance(secrets, str) or not secrets:
        raise TypeError("sign() takes a non-empty sequence of secrets")
    signature = " ".join(Webhook(secret).sign(msg_id=msg_id, timestamp=at, data=body) for secret in secrets)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


def utc_from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, timezone.utc)
