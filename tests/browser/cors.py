"""The bucket's CORS rule in infra/thumbgen.yaml, and S3's way of applying it to a
preflight. moto admits every preflight, so the browser tests hold the page's real
requests to this instead."""
from __future__ import annotations

from fnmatch import fnmatch
from typing import Any

from tests.infra import cfn


def bucket_rule() -> dict[str, Any]:
    """The one CORS rule, with AllowedOrigins resolved to its parameter's default."""
    template = cfn.load()
    [rule] = template["Resources"]["ImagesBucket"]["Properties"]["CorsConfiguration"]["CorsRules"]
    origins = rule["AllowedOrigins"]
    if isinstance(origins, dict):  # !Ref CorsAllowedOrigins
        origins = template["Parameters"][origins["Ref"]]["Default"].split(",")
    return {**rule, "AllowedOrigins": [o.strip() for o in origins]}


def matches(patterns: list[str], value: str) -> bool:
    """S3's matching of origins and headers: case-insensitive, `*` as a wildcard."""
    return any(fnmatch(value.lower(), pattern.lower()) for pattern in patterns)


def admits(rule: dict[str, Any], origin: str, method: str, headers: list[str]) -> bool:
    """Whether S3 answers a preflight with this rule (AllowedMethods match exactly)."""
    return (matches(rule["AllowedOrigins"], origin) and method in rule["AllowedMethods"]
            and all(matches(rule["AllowedHeaders"], h) for h in headers))


def script_set(request: Any) -> set[str]:
    """Header names a page's script set on a Playwright request: its own headers, less
    those the renderer adds to every request (user agent, client hints, referrer)."""
    return {n.lower() for n in request.headers
            if n.lower() not in ("user-agent", "referer") and not n.lower().startswith("sec-ch-")}
