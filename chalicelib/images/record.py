"""The image record: the one schema of the DynamoDB item.

Every attribute name of the item is here (`Item`, `Hook`, `Thumb`), with its statuses, its
typed views (`ImageRecord`, `WebhookState`, `Thumbnail`), its object keys and the transitions
a stream record can show. store.py writes items through these names; everything else
reads `ImageRecord`s. Pure: no I/O.

Items live up to a day, so an item written by the previous release must still read: one
without `renditions` was made for the stage's default ones, and thumbnails recorded as
{width, height, key, contentType, size} read as cover/center thumbnails named after their key.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import StrEnum
from typing import Any, Mapping

from chalicelib.imaging.renditions import SOURCE_FORMATS, Rendition


class ImageStatus(StrEnum):
    PENDING_UPLOAD = "pending_upload"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"


FINAL_STATUSES = frozenset({ImageStatus.COMPLETED, ImageStatus.FAILED})


class DeliveryStatus(StrEnum):
    """Where a webhook's delivery stands (docs/webhooks.md)."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class Item:
    """Attribute names of the image item (camelCase, as the API shows them)."""

    ID = "id"
    OWNER = "owner"
    STATUS = "status"
    CREATED_AT = "createdAt"
    UPDATED_AT = "updatedAt"
    COMPLETED_AT = "completedAt"
    UPLOAD_EXPIRES_AT = "uploadExpiresAt"
    FILENAME = "filename"
    DECLARED_TYPE = "declaredType"
    DECLARED_SIZE = "declaredSize"
    UPLOAD_KEY = "uploadKey"
    WEBHOOK_URL = "webhookUrl"
    QUOTA_ENTRY = "quotaEntry"  # this upload's slot in its owner's pending-upload quota
    EXPIRES_AT_EPOCH = "expiresAtEpoch"  # DynamoDB TTL while the upload has not come
    PROCESSING_TRIES = "processingTries"
    PROCESSING_STARTED_AT = "processingStartedAt"
    ACTIVE_STATE = "activeState"  # set only while processing: the sparse sweeper index
    SIZE = "size"  # the real size, once the bytes were seen
    TYPE = "type"  # the sniffed type
    WIDTH = "width"
    HEIGHT = "height"
    RENDITIONS = "renditions"  # what the client asked for (Rendition.to_item each)
    THUMBNAILS = "thumbnails"
    PLACEHOLDER = "placeholder"  # the ThumbHash (base64) of a completed image
    ERROR = "error"
    WEBHOOK = "webhook"
    DELETING_AT = "deletingAt"  # a DELETE began: no claim or outcome may be written any more


class Hook:
    """Keys of the item's `webhook` map: the delivery state of its final event."""

    ID = "id"
    URL = "url"
    STATUS = "status"
    ROUND = "round"  # 1, then one more per redelivery
    ATTEMPTS = "attempts"  # attempts claimed in this round
    IN_FLIGHT = "inFlight"  # the attempt claimed and not yet recorded
    LAST_ATTEMPT_AT = "lastAttemptAt"
    NEXT_ATTEMPT_AT = "nextAttemptAt"
    LAST_STATUS_CODE = "lastStatusCode"
    LAST_ERROR = "lastError"
    DELIVERED_AT = "deliveredAt"


class Thumb:
    """Keys of each entry of the item's `thumbnails` list."""

    NAME = "name"
    WIDTH = "width"
    HEIGHT = "height"
    FIT = "fit"
    GRAVITY = "gravity"
    FORMAT = "format"
    BYTES = "bytes"
    KEY = "key"
    CONTENT_TYPE = "contentType"
    OLD_BYTES = "size"  # the byte count, as the previous release named it


class Quota:
    """The per-owner quota item, in the same table: `quota#<sub>` with a string set."""

    PREFIX = "quota#"
    PENDING = "pendingIds"


class StageKey:
    """A secret of the whole stage, made on first use and kept in the same table:
    `stagekey#<name>` holding 32 random bytes (no owner, no status: never an image)."""

    PREFIX = "stagekey#"
    SECRET = "secret"
    CURSOR = "cursor"  # signs GET /images cursors (api/paging.py)


class Secret:
    """The per-owner webhook signing secrets, in the same table: `secret#<sub>`."""

    PREFIX = "secret#"
    CURRENT = "current"  # whsec_…: signs every webhook
    PREVIOUS = "previous"  # the one it replaced: also signs until previousValidUntil
    PREVIOUS_VALID_UNTIL = "previousValidUntil"
    ROTATED_AT = "rotatedAt"


class HostAttempts:
    """Webhook attempts one owner aimed at one host in one clock hour, in the same table:
    `attempts#<sub>#<host>#<hour>`, removed by the table's TTL once the hour is over."""

    PREFIX = "attempts#"
    COUNT = "count"


# Secondary indexes of the table (infra/thumbgen.yaml, thumbgen/local/resources.py).
OWNER_INDEX = "owner-created"  # (owner, createdAt): GET /images
PROCESSING_INDEX = "processing-started"  # (activeState, processingStartedAt): the sweeper


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def iso(moment: datetime) -> str:
    """RFC 3339 UTC with a Z, millisecond precision: how the item stores every time."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# --- object keys ------------------------------------------------------------------------

UPLOAD_PREFIX = "uploads/"


def upload_key(image_id: str) -> str:
    return f"{UPLOAD_PREFIX}{image_id}"


def image_id_from_key(key: str) -> str | None:
    """uploads/{id} -> id; anything else (nested keys, empty ids) is not ours."""
    if not key.startswith(UPLOAD_PREFIX):
        return None
    image_id = key[len(UPLOAD_PREFIX):]
    if not image_id or "/" in image_id or len(image_id) > 64:
        return None
    return image_id


def thumbnail_prefix(image_id: str) -> str:
    return f"thumbnails/{image_id}/"


def thumbnail_key(image_id: str, name: str) -> str:
    """thumbnails/{id}/{name}: the rendition's stable name (renditions.names) is its object's."""
    return f"{thumbnail_prefix(image_id)}{name}"


def webhook_id(image_id: str, status: str) -> str:
    """Stable per image and outcome, so receivers can dedupe retries and replays."""
    return f"msg_{image_id}_{status}"


def quota_key(owner: str) -> str:
    return f"{Quota.PREFIX}{owner}"


def stage_key_id(name: str) -> str:
    return f"{StageKey.PREFIX}{name}"


def secret_key(owner: str) -> str:
    return f"{Secret.PREFIX}{owner}"


def host_attempts_key(owner: str, host: str, hour: int) -> str:
    """`hour`: whole hours since the epoch."""
    return f"{HostAttempts.PREFIX}{owner}#{host}#{hour}"


# --- typed views of the item ------------------------------------------------------------


def _int(value: Any, default: int = 0) -> int:
    return int(value) if value is not None else default


def _drop_none(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


@dataclass(frozen=True)
class Thumbnail:
    """One stored thumbnail: its name, actual size, how it was made, its object."""

    name: str
    width: int
    height: int
    fit: str
    gravity: str
    format: str  # jpeg, png, webp or avif
    bytes: int
    key: str
    content_type: str

    @classmethod
    def from_item(cls, value: Mapping[str, Any]) -> "Thumbnail":
        key, content_type = str(value[Thumb.KEY]), str(value.get(Thumb.CONTENT_TYPE, ""))
        return cls(
            name=str(value.get(Thumb.NAME) or key.rsplit("/", 1)[-1]),
            width=_int(value[Thumb.WIDTH]), height=_int(value[Thumb.HEIGHT]),
            fit=str(value.get(Thumb.FIT, "cover")), gravity=str(value.get(Thumb.GRAVITY, "center")),
            format=str(value.get(Thumb.FORMAT) or SOURCE_FORMATS.get(content_type, "")),
            bytes=_int(value.get(Thumb.BYTES, value.get(Thumb.OLD_BYTES))),
            key=key, content_type=content_type,
        )

    def to_item(self) -> dict[str, Any]:
        return {Thumb.NAME: self.name, Thumb.WIDTH: self.width, Thumb.HEIGHT: self.height, Thumb.FIT: self.fit,
                Thumb.GRAVITY: self.gravity, Thumb.FORMAT: self.format, Thumb.BYTES: self.bytes,
                Thumb.KEY: self.key, Thumb.CONTENT_TYPE: self.content_type}


@dataclass(frozen=True)
class WebhookState:
    id: str
    url: str
    status: DeliveryStatus = DeliveryStatus.PENDING
    round: int = 1
    attempts: int = 0
    in_flight: int | None = None
    last_attempt_at: str | None = None
    next_attempt_at: str | None = None
    last_status_code: int | None = None
    last_error: str | None = None
    delivered_at: str | None = None

    @property
    def claimed(self) -> bool:
        """An attempt is claimed and its result not yet recorded."""
        return self.attempts > 0 and self.in_flight == self.attempts

    @classmethod
    def from_item(cls, value: Mapping[str, Any]) -> "WebhookState":
        return cls(
            id=str(value[Hook.ID]), url=str(value[Hook.URL]),
            status=DeliveryStatus(value.get(Hook.STATUS, DeliveryStatus.PENDING)),
            round=_int(value.get(Hook.ROUND), 1), attempts=_int(value.get(Hook.ATTEMPTS)),
            in_flight=None if value.get(Hook.IN_FLIGHT) is None else _int(value[Hook.IN_FLIGHT]),
            last_attempt_at=value.get(Hook.LAST_ATTEMPT_AT), next_attempt_at=value.get(Hook.NEXT_ATTEMPT_AT),
            last_status_code=None if value.get(Hook.LAST_STATUS_CODE) is None else _int(value[Hook.LAST_STATUS_CODE]),
            last_error=value.get(Hook.LAST_ERROR), delivered_at=value.get(Hook.DELIVERED_AT),
        )

    def to_item(self) -> dict[str, Any]:
        return _drop_none({
            Hook.ID: self.id, Hook.URL: self.url, Hook.STATUS: str(self.status), Hook.ROUND: self.round,
            Hook.ATTEMPTS: self.attempts, Hook.IN_FLIGHT: self.in_flight,
            Hook.LAST_ATTEMPT_AT: self.last_attempt_at, Hook.NEXT_ATTEMPT_AT: self.next_attempt_at,
            Hook.LAST_STATUS_CODE: self.last_status_code, Hook.LAST_ERROR: self.last_error,
            Hook.DELIVERED_AT: self.delivered_at,
        })


@dataclass(frozen=True)
class ImageRecord:
    id: str
    status: ImageStatus
    owner: str = ""
    created_at: str | None = None
    updated_at: str | None = None
    completed_at: str | None = None
    upload_expires_at: str | None = None
    filename: str | None = None
    declared_type: str | None = None
    declared_size: int = 0
    upload_key: str | None = None
    webhook_url: str | None = None
    quota_entry: str | None = None
    expires_at_epoch: int | None = None
    processing_tries: int = 0
    processing_started_at: str | None = None
    size: int | None = None
    type: str | None = None
    width: int | None = None
    height: int | None = None
    renditions: tuple[Rendition, ...] | None = None  # None: the stage's default (older items)
    thumbnails: tuple[Thumbnail, ...] = field(default_factory=tuple)
    placeholder: str | None = None
    error: Mapping[str, str] | None = None
    webhook: WebhookState | None = None
    deleting_at: str | None = None

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @classmethod
    def new_pending(cls, image_id: str, *, owner: str, quota_entry: str, filename: str, content_type: str,
                    file_size: int, webhook_url: str | None, now: datetime, expires_at: datetime,
                    ttl_epoch: int, renditions: tuple[Rendition, ...] | None = None) -> "ImageRecord":
        """A registered upload waiting for its bytes; DynamoDB's TTL removes it if they
        never come (the TTL attribute is removed when processing starts)."""
        return cls(
            id=image_id, owner=owner, status=ImageStatus.PENDING_UPLOAD, created_at=iso(now),
            updated_at=iso(now), upload_expires_at=iso(expires_at), filename=filename,
            declared_type=content_type, declared_size=file_size, upload_key=upload_key(image_id),
            webhook_url=webhook_url or None, quota_entry=quota_entry, expires_at_epoch=ttl_epoch,
            renditions=tuple(renditions) if renditions else None,
        )

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> "ImageRecord":
        """The item as DynamoDB returns it (numbers already plain); ValueError/KeyError if
        it is not an image item."""
        webhook = item.get(Item.WEBHOOK)
        renditions = item.get(Item.RENDITIONS)
        return cls(
            id=str(item[Item.ID]), status=ImageStatus(item[Item.STATUS]), owner=str(item.get(Item.OWNER, "")),
            created_at=item.get(Item.CREATED_AT), updated_at=item.get(Item.UPDATED_AT),
            completed_at=item.get(Item.COMPLETED_AT), upload_expires_at=item.get(Item.UPLOAD_EXPIRES_AT),
            filename=item.get(Item.FILENAME), declared_type=item.get(Item.DECLARED_TYPE),
            declared_size=_int(item.get(Item.DECLARED_SIZE)), upload_key=item.get(Item.UPLOAD_KEY),
            webhook_url=item.get(Item.WEBHOOK_URL), quota_entry=item.get(Item.QUOTA_ENTRY),
            expires_at_epoch=item.get(Item.EXPIRES_AT_EPOCH),
            processing_tries=_int(item.get(Item.PROCESSING_TRIES)),
            processing_started_at=item.get(Item.PROCESSING_STARTED_AT),
            size=item.get(Item.SIZE), type=item.get(Item.TYPE), width=item.get(Item.WIDTH),
            height=item.get(Item.HEIGHT),
            renditions=tuple(Rendition.from_item(r) for r in renditions) if renditions else None,
            thumbnails=tuple(Thumbnail.from_item(t) for t in item.get(Item.THUMBNAILS) or []),
            placeholder=item.get(Item.PLACEHOLDER),
            error=item.get(Item.ERROR),
            webhook=WebhookState.from_item(webhook) if isinstance(webhook, Mapping) and webhook else None,
            deleting_at=item.get(Item.DELETING_AT),
        )

    def to_item(self) -> dict[str, Any]:
        return _drop_none({
            Item.ID: self.id, Item.STATUS: str(self.status), Item.OWNER: self.owner or None,
            Item.CREATED_AT: self.created_at, Item.UPDATED_AT: self.updated_at,
            Item.COMPLETED_AT: self.completed_at, Item.UPLOAD_EXPIRES_AT: self.upload_expires_at,
            Item.FILENAME: self.filename, Item.DECLARED_TYPE: self.declared_type,
            Item.DECLARED_SIZE: self.declared_size, Item.UPLOAD_KEY: self.upload_key,
            Item.WEBHOOK_URL: self.webhook_url, Item.QUOTA_ENTRY: self.quota_entry,
            Item.EXPIRES_AT_EPOCH: self.expires_at_epoch, Item.PROCESSING_TRIES: self.processing_tries,
            Item.PROCESSING_STARTED_AT: self.processing_started_at, Item.SIZE: self.size,
            Item.TYPE: self.type, Item.WIDTH: self.width, Item.HEIGHT: self.height,
            Item.RENDITIONS: [r.to_item() for r in self.renditions] if self.renditions else None,
            Item.THUMBNAILS: [t.to_item() for t in self.thumbnails] or None,
            Item.PLACEHOLDER: self.placeholder,
            Item.ERROR: dict(self.error) if self.error else None,
            Item.WEBHOOK: self.webhook.to_item() if self.webhook else None,
            Item.DELETING_AT: self.deleting_at,
        })


def image_of(item: Mapping[str, Any] | None) -> ImageRecord | None:
    """The ImageRecord of an item, or None for no item or one that is not an image (the
    quota, secret and attempt-count items share the table)."""
    if not item or Item.STATUS not in item:
        return None
    return ImageRecord.from_item(item)


@dataclass(frozen=True)
class Outcome:
    """What the resize found: the fields its final write sets."""

    status: ImageStatus
    error: Mapping[str, str] | None = None
    size: int | None = None
    type: str | None = None
    width: int | None = None
    height: int | None = None
    thumbnails: tuple[Thumbnail, ...] = ()
    placeholder: str | None = None

    @classmethod
    def failure(cls, code: str, message: str, size: int | None = None, type: str | None = None) -> "Outcome":
        return cls(ImageStatus.FAILED, {"code": code, "message": message}, size=size, type=type)

    def fields(self) -> dict[str, Any]:
        return _drop_none({
            Item.STATUS: str(self.status), Item.ERROR: dict(self.error) if self.error else None,
            Item.SIZE: self.size, Item.TYPE: self.type, Item.WIDTH: self.width, Item.HEIGHT: self.height,
            Item.THUMBNAILS: [t.to_item() for t in self.thumbnails] or None,
            Item.PLACEHOLDER: self.placeholder,
        })


# --- transitions a stream record shows -------------------------------------------------


def entered_final_status(old: ImageRecord | None, new: ImageRecord | None) -> ImageStatus | None:
    """The final status a stream record moved the item into, or None.

    Only the transition itself counts: later writes to a final item (webhook bookkeeping)
    keep the status and so never produce a second event.
    """
    if new is None or not new.is_final:
        return None
    if old is not None and old.status == new.status:
        return None
    return new.status


def upload_arrived(old: ImageRecord | None, new: ImageRecord | None) -> bool:
    """Whether a stream record took the item from pending_upload to another status (its
    bytes arrived). A pending item that is removed (deleted) is not one: its upload URL
    still works, so its quota slot counts until that URL expires."""
    if old is None or old.status != ImageStatus.PENDING_UPLOAD:
        return False
    return new is not None and new.status != ImageStatus.PENDING_UPLOAD


def released_quota(changes: list[tuple[ImageRecord | None, ImageRecord | None]]) -> dict[str, set[str]]:
    """The quota entries a batch of stream records frees, per owner."""
    freed: dict[str, set[str]] = {}
    for old, new in changes:
        if upload_arrived(old, new) and old is not None and old.owner and old.quota_entry:
            freed.setdefault(old.owner, set()).add(old.quota_entry)
    return freed
