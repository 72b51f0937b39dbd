"""Opaque, owner-bound cursors for GET /images.

A cursor carries the position of the last item shown (its id and createdAt) and a tag: an
HMAC-SHA256 of the owner it was made for and that position, with the stage's cursor key
(kept in the table, docs/api.md "GET /images"). Nobody without the key can make a tag, so
a cursor cannot be forged for anyone, nor its position edited. The query itself always
runs on the caller's own partition, so a cursor can never reveal another user's items.

A well-formed cursor that was not made for the caller (another user's, made up, edited, or
made with an older scheme) names no position of theirs: the list starts from the caller's
own first page. So does one whose fields are empty or not an id and a time: such a
position never reaches DynamoDB. Only a cursor outside openapi.yaml's pattern for it is a
malformed request (400).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from typing import Any, Mapping

from chalicelib.platform.errors import ApiError

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_CURSOR_LENGTH = 512
CURSOR_PATTERN = "[A-Za-z0-9_-]*"  # openapi.yaml: GET /images, cursor
# A position is an image id and a createdAt exactly as the record holds them (record.iso).
_ID = re.compile("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z")
_TAG_BYTES = 16


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _tag(key: bytes, owner: str, image_id: str, created_at: str) -> str:
    message = json.dumps(["thumbgen-cursor-v2", owner, image_id, created_at]).encode()
    return _b64(hmac.new(key, message, hashlib.sha256).digest()[:_TAG_BYTES])


def encode_cursor(key: bytes, owner: str, item: Mapping[str, Any]) -> str:
    body = {"i": item["id"], "c": item["createdAt"], "t": _tag(key, owner, item["id"], item["createdAt"])}
    return _b64(json.dumps(body, separators=(",", ":")).encode())


def decode_cursor(key: bytes, owner: str, cursor: str) -> dict[str, str] | None:
    """The position to continue after; None (the first page) for a well-formed cursor that
    was not made for this owner with this key, or names no valid position; ApiError 400
    for a malformed one."""
    if len(cursor) > MAX_CURSOR_LENGTH or not re.fullmatch(CURSOR_PATTERN, cursor):
        raise ApiError(400, "invalid_request",
                       f"cursor must be at most {MAX_CURSOR_LENGTH} characters of A-Z a-z 0-9 _ -")
    try:
        data = json.loads(_unb64(cursor))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    image_id, created_at, tag = data.get("i"), data.get("c"), data.get("t")
    if not (isinstance(image_id, str) and _ID.fullmatch(image_id) and isinstance(created_at, str)
            and _TIME.fullmatch(created_at) and isinstance(tag, str)):
        return None
    if not hmac.compare_digest(tag, _tag(key, owner, image_id, created_at)):
        return None
    return {"id": image_id, "createdAt": created_at}


def parse_limit(text: str | None) -> int:
    """ASCII digits only: int() also takes "+5", " 5", "1_0" and other scripts' digits,
    which the schema's integer does not."""
    if text is None:
        return DEFAULT_LIMIT
    digits = text.lstrip("0")
    if not re.fullmatch("[0-9]+", text) or len(digits) > 3 or not 1 <= int(digits or "0") <= MAX_LIMIT:
        raise ApiError(400, "invalid_request", f"limit must be a whole number from 1 to {MAX_LIMIT}")
    return int(digits)
