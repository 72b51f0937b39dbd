"""What arrives on the uploads queue: S3's ObjectCreated notifications and our own
"upload complete" messages (POST /images/{id}/complete). Both name an object key.

The body is untrusted: anything that is not one of those two shapes names no key (and is
logged and dropped by the caller, never retried forever).
"""
from __future__ import annotations

import json
from typing import Any

from chalice.app import S3Event

COMPLETE_MESSAGE = "thumbgen.upload_complete"


def complete_message(key: str) -> str:
    return json.dumps({"type": COMPLETE_MESSAGE, "key": key})


def read(body: str) -> list[str]:
    """The object keys a queue message body names, URL-decoded as S3Event does."""
    try:
        message: Any = json.loads(body)
    except (TypeError, ValueError):
        return []
    if not isinstance(message, dict):
        return []
    if message.get("type") == COMPLETE_MESSAGE:
        key = message.get("key")
        return [key] if isinstance(key, str) else []
    keys = []
    for record in message.get("Records") or []:
        if not isinstance(record, dict) or not str(record.get("eventName", "")).startswith("ObjectCreated"):
            continue
        try:
            keys.append(S3Event({"Records": [record]}, None).key)
        except (KeyError, TypeError, AttributeError):
            continue
    return keys
