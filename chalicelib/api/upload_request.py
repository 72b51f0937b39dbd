"""POST /images: validate the client's request into an UploadRequest, or an ApiError."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from chalicelib.imaging.rendition_rules import InvalidRenditions, parse_renditions
from chalicelib.imaging.renditions import Rendition
from chalicelib.platform.errors import ApiError
from chalicelib.webhooks.urls import Resolver, UnsafeWebhookUrl, UrlPolicy, check_webhook_url, system_resolver

ALLOWED_TYPES = ("image/png", "image/jpeg")
MAX_FILENAME_LENGTH = 255
# The filename rule, written as regex source so openapi.yaml's CreateImage.filename pattern
# can be exactly "^" + FILENAME_PATTERN + "$". The classes are explicit ranges because
# Python's str.isspace()/strip() and ECMA-262's \s disagree (U+001C-U+001F, U+0085 are
# spaces to Python only, U+FEFF to ECMA-262 only).
CONTROL_CHARS = r"\u0000-\u001f\u007f-\u009f"  # C0, DEL, C1: never part of a filename
BLANK_CHARS = r" \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"  # the rest of ECMA-262 \s
FILENAME_PATTERN = f"[^{CONTROL_CHARS}]*[^{CONTROL_CHARS}{BLANK_CHARS}][^{CONTROL_CHARS}]*"
_FILENAME = re.compile(FILENAME_PATTERN)


@dataclass(frozen=True)
class UploadRequest:
    filename: str
    content_type: str
    file_size: int
    webhook_url: str | None
    renditions: tuple[Rendition, ...] | None = None  # None: the stage's DEFAULT_RENDITIONS


def _invalid(message: str) -> ApiError:
    return ApiError(400, "invalid_request", message)


def parse_upload_request(raw_body: bytes | str | None, *, max_upload_bytes: int,
                         url_policy: UrlPolicy, resolve: Resolver = system_resolver) -> UploadRequest:
    """Checks in the order of docs/api.md's table: shape (400), type (415), size (400/413),
    renditions (400), URL (422)."""
    try:
        body: Any = json.loads(raw_body or b"")
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: "[[[[…" nested too deep
        raise _invalid("the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise _invalid("the body must be a JSON object")
    try:
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate escape such as "\ud800" is no character
        raise _invalid("the body's strings must be Unicode text (no lone \\ud800-\\udfff escapes)") from None

    filename = body.get("filename")
    if not isinstance(filename, str) or not filename:
        raise _invalid("filename is required and must be a non-empty string")
    if len(filename) > MAX_FILENAME_LENGTH or not _FILENAME.fullmatch(filename):
        raise _invalid(f"filename must be at most {MAX_FILENAME_LENGTH} characters, not all blank, "
                       "with no control characters")

    content_type = body.get("contentType")
    if not isinstance(content_type, str) or not content_type:
        raise _invalid("contentType is required and must be a string")

    file_size = body.get("fileSize")
    if isinstance(file_size, bool) or not isinstance(file_size, int):
        raise _invalid("fileSize is required and must be an integer number of bytes")

    webhook_url = body.get("webhookUrl")
    if webhook_url is not None and not isinstance(webhook_url, str):
        raise _invalid("webhookUrl must be a string")

    if content_type not in ALLOWED_TYPES:  # exactly, as the schema's enum and the signed PUT say
        raise ApiError(415, "unsupported_media_type",
                       f"contentType must be one of {', '.join(ALLOWED_TYPES)}")
    if file_size < 1:
        raise _invalid("fileSize must be at least 1 byte")
    if file_size > max_upload_bytes:
        raise ApiError(413, "file_too_large",
                       f"fileSize {file_size} is over the limit of {max_upload_bytes} bytes")

    renditions = None
    if body.get("renditions") is not None:  # absent or null: the stage's default
        try:
            renditions = parse_renditions(body["renditions"], source_types=(content_type,))
        except InvalidRenditions as exc:
            raise _invalid(str(exc)) from None

    if webhook_url is not None:
        try:
            check_webhook_url(webhook_url, url_policy, resolve)
        except UnsafeWebhookUrl as exc:
            raise ApiError(422, "invalid_webhook_url", str(exc)) from None

    return UploadRequest(filename=filename, content_type=content_type,
                         file_size=file_size, webhook_url=webhook_url, renditions=renditions)
