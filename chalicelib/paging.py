"""Opaque, owner-bound cursors for GET /images.

A cursor carries the position of the last item shown (its id and createdAt) and a digest
of the owner it was made for. The query itself always runs on the caller's own partition,
so a cursor can never reveal another user's items; one made for someone else is refused
instead of silently restarting (400 invalid_request).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any, Mapping

from chalicelib.errors import ApiError

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


def _owner_tag(owner: str) -> str:
    return hashlib.sha256(f"thumbgen-cursor:{owner}".encode()).hexdigest()[:16]


def encode_cursor(owner: str, item: Mapping[str, Any]) -> str:
    body = json.dumps({"o": _owner_tag(owner), "i": item["id"], "c": item["createdAt"]}, separators=(",", ":"))
    return base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")


def decode_cursor(owner: str, cursor: str) -> dict[str, str]:
    """The position to continue after; ApiError 400 for anything not made for this owner."""
    invalid = ApiError(400, "invalid_request", "cursor is not valid; start again without it")
    if len(cursor) > 512:
        raise invalid
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise invalid from None
    if (not isinstance(data, dict) or data.get("o") != _owner_tag(owner)
            or not isinstance(data.get("i"), str) or not isinstance(data.get("c"), str)):
        raise invalid
    return {"id": data["i"], "createdAt": data["c"]}


def parse_limit(text: str | None) -> int:
    if text is None:
        return DEFAULT_LIMIT
    try:
        limit = int(text)
    except ValueError:
        limit = 0
    if not str(text).strip().isdigit() or not 1 <= limit <= MAX_LIMIT:
        raise ApiError(400, "invalid_request", f"limit must be a whole number from 1 to {MAX_LIMIT}")
    return limit
