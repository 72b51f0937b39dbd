"""The image record and its lifecycle: statuses, transitions and what each one shows.

Pure functions over plain dicts (the item as DynamoDB stores it, camelCase), so the rules
are tested without AWS. records.py persists them with conditional writes.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Mapping

PENDING_UPLOAD = "pending_upload"
PROCESSING = "processing"
COMPLETED = "completed"
FAILED = "failed"
STATUSES = (PENDING_UPLOAD, PROCESSING, COMPLETED, FAILED)
FINAL_STATUSES = (COMPLETED, FAILED)

# Failure codes of the resize step (DESIGN.md) plus one for our own repeated crashes.
FAILURE_CODES = (
    "file_too_large",
    "unsupported_format",
    "corrupt_image",
    "image_too_large",
    "internal_error",
)
MAX_PROCESSING_TRIES = 3

EVENT_TYPES = {COMPLETED: "thumbnails.generated", FAILED: "thumbnails.failed"}


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def iso(moment: datetime) -> str:
    """RFC 3339 UTC with a Z, millisecond precision."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def upload_key(image_id: str) -> str:
    return f"uploads/{image_id}"


def image_id_from_key(key: str) -> str | None:
    """uploads/{id} -> id; anything else (nested keys, empty ids) is not ours."""
    prefix = "uploads/"
    if not key.startswith(prefix):
        return None
    image_id = key[len(prefix):]
    if not image_id or "/" in image_id or len(image_id) > 64:
        return None
    return image_id


def thumbnail_prefix(image_id: str) -> str:
    return f"thumbnails/{image_id}/"


def thumbnail_key(image_id: str, width: int, height: int, extension: str) -> str:
    return f"{thumbnail_prefix(image_id)}{width}x{height}.{extension}"


def webhook_id(image_id: str, status: str) -> str:
    """Stable per image and outcome, so receivers can dedupe retries and replays."""
    return f"msg_{image_id}_{status}"


def new_item(
    image_id: str,
    *,
    owner: str,
    quota_entry: str,
    filename: str,
    content_type: str,
    file_size: int,
    webhook_url: str | None,
    now: datetime,
    expires_at: datetime,
    ttl_epoch: int,
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": image_id,
        "owner": owner,
        "status": PENDING_UPLOAD,
        "createdAt": iso(now),
        "updatedAt": iso(now),
        "uploadExpiresAt": iso(expires_at),
        "filename": filename,
        "declaredType": content_type,
        "declaredSize": file_size,
        "uploadKey": upload_key(image_id),
        "processingTries": 0,
        # This upload's slot in the owner's pending-upload quota (records.quota_entry).
        "quotaEntry": quota_entry,
        # DynamoDB TTL removes records whose upload never arrived; cleared on upload.
        "expiresAtEpoch": ttl_epoch,
    }
    if webhook_url:
        item["webhookUrl"] = webhook_url
    return item


def entered_final_status(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> str | None:
    """The final status a stream record moved the item into, or None.

    Only the transition itself counts: later writes to a final item (webhook bookkeeping)
    keep the status and so never produce a second event.
    """
    if not new:
        return None
    status = new.get("status")
    if status not in FINAL_STATUSES:
        return None
    if old and old.get("status") == status:
        return None
    return status


def left_pending_upload(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> bool:
    """Whether a stream record took the item out of pending_upload (processing, removed)."""
    if not old or old.get("status") != PENDING_UPLOAD:
        return False
    return not new or new.get("status") != PENDING_UPLOAD


def initial_webhook_state(item_id: str, url: str, status: str,
                          claimed_at: str | None = None) -> dict[str, Any]:
    """The webhook state written with the outcome. With `claimed_at`, attempt 1 is claimed
    in that same write by the worker that will send it at once (no second write on the
    latency path); the stream's queued copy of attempt 1 then only takes over if that
    worker dies before recording a result."""
    state: dict[str, Any] = {
        "id": webhook_id(item_id, status),
        "url": url,
        "status": "pending",
        "round": 1,
        "attempts": 0,
    }
    if claimed_at is not None:
        state.update(attempts=1, inFlight=1, lastAttemptAt=claimed_at)
    return state


def public_webhook(state: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The delivery state as GET /images/{id} shows it (DESIGN.md)."""
    if not state:
        return None
    shown: dict[str, Any] = {
        "id": state.get("id"),
        "url": state.get("url"),
        "status": state.get("status"),
        "attempts": int(state.get("attempts", 0)),
        "lastAttemptAt": state.get("lastAttemptAt"),
        "nextAttemptAt": state.get("nextAttemptAt"),
    }
    if state.get("lastStatusCode") is not None:
        shown["lastStatusCode"] = int(state["lastStatusCode"])
    if state.get("lastError"):
        shown["lastError"] = state["lastError"]
    return shown


def file_facts(item: Mapping[str, Any]) -> dict[str, Any]:
    """filename, type and size: the real ones once the bytes were seen, else the declared."""
    return {
        "filename": item.get("filename"),
        "type": item.get("type") or item.get("declaredType"),
        "fileSize": int(item.get("size") or item.get("declaredSize") or 0),
    }


def thumbnail_views(urls: list[tuple[int, int, str]]) -> list[dict[str, Any]]:
    """(width, height, url) -> the {"size": {...}, "url"} entries of the API and webhook."""
    return [{"size": {"width": w, "height": h}, "url": url} for (w, h, url) in urls]


def metadata(item: Mapping[str, Any]) -> dict[str, Any]:
    """What the client said, and what the bytes turned out to be once known."""
    meta: dict[str, Any] = {
        **file_facts(item),
        "declaredType": item.get("declaredType"),
        "declaredSize": int(item.get("declaredSize") or 0),
    }
    if item.get("width"):
        meta["width"] = int(item["width"])
        meta["height"] = int(item["height"])
    for key in ("createdAt", "updatedAt", "completedAt"):
        if item.get(key):
            meta[key] = item[key]
    return meta
