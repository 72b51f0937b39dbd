"""Fresh presigned GET links for an item's original and thumbnails (never stored)."""
from __future__ import annotations

from typing import Any, Mapping

from chalicelib import images
from chalicelib.storage import ImageStorage


def original_url(item: Mapping[str, Any], storage: ImageStorage, ttl: int) -> str | None:
    if item.get("status") == images.PENDING_UPLOAD or not item.get("uploadKey"):
        return None
    return storage.presign_download(item["uploadKey"], ttl)


def thumbnail_urls(item: Mapping[str, Any], storage: ImageStorage, ttl: int) -> list[tuple[int, int, str]]:
    return [
        (int(t["width"]), int(t["height"]), storage.presign_download(t["key"], ttl))
        for t in item.get("thumbnails") or []
    ]
