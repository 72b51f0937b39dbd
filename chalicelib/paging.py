"""Opaque, owner-bound cursors for GET /images.

A cursor carries the position of the last item shown (its id and createdAt) and a digest
of the owner it was made for. The query itself always runs on the caller's own partition,
so a cursor can never reveal another user's items. A well-formed cursor that was not made
for the caller (another user's, or made up) names no position of theirs: the list starts
from the caller's own first page. Only a cursor outside openapi.yaml's pattern for it is a
malformed request (400).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from typing import Any, Mapping

from chalicelib.errors import ApiError

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_CURSOR_LENGTH = 512
CURSOR_PATTERN = "[A-Za-z0-9_-]*"  # openapi.yaml: GET /images, cursor


def _owner_tag(owner: str) -> str:
    return hashlib.sha256(f"thumbgen-cursor:{owner}".encode()).hexdigest()[:16]


def encode_cursor(owner: str, item: Mapping[str, Any]) -> str:
    body = json.dumps({"o": _owner_tag(owner), "i": item["id"], "c": item["createdAt"]}, separators=(",", ":"))
    return base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")


def decode_cursor(owner: str, cursor: str) -> dict[str, str] | None:
    """The position to continue after; None (the first page) for a well-formed cursor that
    was not made for this owner; ApiError 400 for a malformed one."""
    if len(cursor) > MAX_CURSOR_LENGTH or not re.fullmatch(CURSOR_PATTERN, cursor):
        raise ApiError(400, "invalid_request",
                       f"cursor must be at most {MAX_CURSOR_LENGTH} characters of A-Z a-z 0-9 _ -")
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    if (not isinstance(data, dict) or data.get("o") != _owner_tag(owner)
            or not isinstance(data.get("i"), str) or not isinstance(data.get("c"), str)):
        return None
    return {"id": data["i"], "createdAt": data["c"]}


def parse_limit(text: str | None) -> int:
    """ASCII digits only: int() also takes "+5", " 5", "1_0" and other scripts' digits,
    which the schema's integer does not."""
    if text is None:
        return DEFAULT_LIMIT
    digits = text.lstrip("0")
    if not re.fullmatch("[0-9]+", text) or len(digits) > 3 or not 1 <= int(digits or "0") <= MAX_LIMIT:
        raise ApiError(400, "invalid_request", f"limit must be a whole number from 1 to {MAX_LIMIT}")
    return int(digits)
