"""POST /images: validate the client's request into an UploadRequest, or an ApiError."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from chalicelib.errors import ApiError
from chalicelib.urlsafety import Resolver, UnsafeWebhookUrl, UrlPolicy, check_webhook_url, system_resolver

ALLOWED_TYPES = ("image/png", "image/jpeg")
MAX_FILENAME_LENGTH = 255


@dataclass(frozen=True)
class UploadRequest:
    filename: str
    content_type: str
    file_size: int
    webhook_url: str | None


def _invalid(message: str) -> ApiError:
    return ApiError(400, "invalid_request", message)


def parse_upload_request(raw_body: bytes | str | None, *, max_upload_bytes: int,
                         url_policy: UrlPolicy, resolve: Resolver = system_resolver) -> UploadRequest:
    """Checks in the order of DESIGN.md's table: shape (400), type (415), size (413), URL (422)."""
    try:
        body: Any = json.loads(raw_body or b"")
    except (ValueError, UnicodeDecodeError):
        raise _invalid("the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise _invalid("the body must be a JSON object")

    filename = body.get("filename")
    if not isinstance(filename, str) or not filename.strip():
        raise _invalid("filename is required and must be a non-empty string")
    if len(filename) > MAX_FILENAME_LENGTH or any(ord(c) < 0x20 or c == "\x7f" for c in filename):
        raise _invalid(f"filename must be at most {MAX_FILENAME_LENGTH} printable characters")

    content_type = body.get("contentType")
    if not isinstance(content_type, str) or not content_type.strip():
        raise _invalid("contentType is required and must be a string")

    file_size = body.get("fileSize")
    if isinstance(file_size, bool) or not isinstance(file_size, int):
        raise _invalid("fileSize is required and must be an integer number of bytes")

    webhook_url = body.get("webhookUrl")
    if webhook_url is not None and not isinstance(webhook_url, str):
        raise _invalid("webhookUrl must be a string")

    normalised_type = content_type.split(";", 1)[0].strip().lower()
    if normalised_type not in ALLOWED_TYPES:
        raise ApiError(415, "unsupported_media_type",
                       f"contentType must be one of {', '.join(ALLOWED_TYPES)}")
    if file_size < 1:
        raise _invalid("fileSize must be at least 1 byte")
    if file_size > max_upload_bytes:
        raise ApiError(413, "file_too_large",
                       f"fileSize {file_size} is over the limit of {max_upload_bytes} bytes")

    if webhook_url is not None:
        try:
            check_webhook_url(webhook_url, url_policy, resolve)
        except UnsafeWebhookUrl as exc:
            raise ApiError(422, "invalid_webhook_url", str(exc)) from None

    return UploadRequest(filename=filename, content_type=normalised_type,
                         file_size=file_size, webhook_url=webhook_url)
