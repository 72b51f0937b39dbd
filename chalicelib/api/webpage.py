"""The upload page served by the API itself: files of chalicelib/api/web/, read once per
process, and the headers that keep the page strict (CSP, nosniff, caching).

The page's script and stylesheet are referenced as `app.js?v=<hash>`: a URL whose hash
matches the current files may be cached for good; anything else is revalidated.
"""
from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit

from chalice import Response

from chalicelib.platform.config import Settings

WEB = Path(__file__).with_name("web")
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
}
ASSETS = ("app.js", "app.css", "thumbhash.js")
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"


@functools.cache
def _text(name: str) -> str:
    return (WEB / name).read_text(encoding="utf-8")


@functools.cache
def version() -> str:
    """Changes whenever one of the assets does."""
    return hashlib.sha256("".join(_text(name) for name in ASSETS).encode()).hexdigest()[:16]


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def content_security_policy(cognito_endpoint: str, bucket_origin: str) -> str:
    """Scripts and styles only from the page's own files (nothing inline); network only to
    the API, Cognito and the bucket; images only from the API and the bucket."""
    connect = " ".join(dict.fromkeys(["'self'", origin(cognito_endpoint), bucket_origin]))
    return "; ".join([
        "default-src 'self'", "script-src 'self'", "style-src 'self'",
        f"img-src 'self' {bucket_origin}", f"connect-src {connect}",
        "object-src 'none'", "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'",
    ])


def _response(body: str, name: str, cache: str, **headers: str) -> Response:
    return Response(body=body, status_code=200, headers={
        "Content-Type": CONTENT_TYPES[Path(name).suffix], "Cache-Control": cache,
        "X-Content-Type-Options": "nosniff", **headers})


def page(settings: Settings, bucket_origin: str, requested_path: str) -> Response:
    """index.html; `/api` (a stage root without its slash) is redirected to `/api/` so the
    page's relative URLs (app.js, images, ...) resolve under the stage."""
    if not requested_path.endswith("/"):
        return Response(body="", status_code=308, headers={"Location": requested_path + "/"})
    html = _text("index.html").replace("{{version}}", version())
    return _response(html, "index.html", REVALIDATE,
                     **{"Content-Security-Policy": content_security_policy(settings.cognito_endpoint_url, bucket_origin),
                        "Referrer-Policy": "no-referrer"})


def asset(name: str, query: Mapping[str, str] | None) -> Response:
    cache = IMMUTABLE if (query or {}).get("v") == version() else REVALIDATE
    return _response(_text(name), name, cache)


def client_config(settings: Settings) -> dict[str, Any]:
    """What the page needs to sign in, to describe the limits and to offer other formats of
    the stage's renditions: nothing secret."""
    return {
        "cognito": {
            "region": settings.cognito_region,
            "userPoolId": settings.cognito_user_pool_id,
            "clientId": settings.cognito_app_client_id,
            "endpoint": settings.cognito_endpoint_url,
        },
        "maxUploadBytes": settings.max_upload_bytes,
        "renditions": [r.to_item() for r in settings.default_renditions],
    }


def config_response(settings: Settings) -> Response:
    return _response(json.dumps(client_config(settings)), "config.json", REVALIDATE)
