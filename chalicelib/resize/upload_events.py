"""What arrives on the uploads queue: S3's ObjectCreated notifications and our own
"upload complete" messages (POST /images/{id}/complete). Both name an object key.

The body is untrusted: anything that is not one of those two shapes names no key (and is
logged and dropped by the caller, never retried forever), except S3's own test event
(`is_test_event`), sent once when the bucket's notification is set up: dropped quietly.
"""
from __future__ import annotations

import json
from typing import Any

from chalice.app import S3Event

COMPLETE_MESSAGE = "thumbgen.upload_complete"
S3_TEST_EVENT = "s3:TestEvent"


def complete_message(key: str) -> str:
    return json.dumps({"type": COMPLETE_MESSAGE, "key": key})


def _json(body: str) -> Any:
    try:
        return json.loads(body)
    except (TypeError, ValueError):
        return None


def is_test_event(body: str) -> bool:
    """S3's `s3:TestEvent`: what S3 sends the queue when the bucket's notification is set
    up (on AWS at deploy, locally at every `make run`). It names no upload."""
    message = _json(body)
    return (isinstance(message, dict) and message.get("Service") == "Amazon S3"
            and message.get("Event") == S3_TEST_EVENT)


def read(body: str) -> list[str]:
    """The object keys a queue message body names, URL-decoded as S3Event does."""
    message = _json(body)
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
