"""What Chalice itself answers, in the API's one error shape.

Chalice answers some requests before or instead of our handlers: a Content-Type a route
does not take (415, `{"Code": "UnsupportedMediaType", ...}`), a method a path does not
serve (405, locally), an exception no handler caught (500). Registered as HTTP middleware
(app.py), this turns each such body into `{"error": {"code", "message"}}`, the same under
the test client, the local server and Lambda. The local server's own answers (an unknown
path, an oversized body) use `error_body` too (thumbgen/local/localapi.py).
"""
from __future__ import annotations

import json
from typing import Any, Callable

from chalice import Response

CODES = {
    400: "invalid_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    415: "unsupported_media_type",
}
MESSAGES = {
    400: "the request is malformed",
    404: "no such route",
    405: "this method is not allowed here",
    413: "the request body is too large",
    415: "this Content-Type is not accepted here; send application/json",
    500: "an internal error occurred; try again later",
}


def error_body(status: int, message: str | None = None) -> dict[str, dict[str, str]]:
    """Our error body for an answer of `status` that no handler of ours made."""
    code = CODES.get(status, "internal_error" if status >= 500 else "invalid_request")
    return {"error": {"code": code, "message": message or MESSAGES.get(status, "the request was refused")}}


def _is_chalices(response: Response) -> bool:
    body = response.body
    return response.status_code >= 400 and isinstance(body, dict) and set(body) == {"Code", "Message"}


def in_our_shape(event: Any, get_response: Callable[[Any], Response]) -> Response:
    """HTTP middleware: Chalice's `{"Code", "Message"}` error bodies become ours (headers,
    such as 405's Allow, are kept). Chalice's messages are not passed on."""
    response = get_response(event)
    if _is_chalices(response):
        response.body = json.dumps(error_body(response.status_code))
        response.headers = {**response.headers, "Content-Type": "application/json"}
    return response
