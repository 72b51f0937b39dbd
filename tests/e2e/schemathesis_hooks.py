"""Schemathesis hooks (SCHEMATHESIS_HOOKS): what openapi.yaml says in words, made concrete
for the stage under test.

- The upload size bound is the stage's own: `CreateImage.fileSize` states no maximum, and
  the stage publishes its MAX_UPLOAD_BYTES as `maxUploadBytes` in GET /config.json. Once the
  schema is loaded, that value becomes fileSize's `maximum`, so Schemathesis sends the limit
  itself as valid and one byte more as invalid (413 file_too_large, schemathesis.toml).
- POST /images takes its JSON text labelled application/x-www-form-urlencoded too (what
  `curl -d '{…}'` sends). Schemathesis would write form fields under that label, as text (a
  null field as "null"), which the API does not read: that label is left to the handler
  tests (tests/handlers/test_contract.py), and Schemathesis sends application/json and
  text/plain.
- The two rules of POST /images's `renditions` that a JSON schema cannot say, applied to the
  requests Schemathesis means to be valid. openapi.yaml documents them in words: two entries
  asking for the same thumbnail (once the defaults are filled in, the focus rounded and
  `source` resolved against contentType) and more work than the budget are refused with
  400. A positive case that breaks one would be refused rightly, and fail
  `positive_data_acceptance`; so such a case is brought within the rules first: repeated
  entries are left out, and entries are shrunk or left out until the budget holds.

Written from the contract, not from the server's code, so the two can disagree.
"""
from __future__ import annotations

import json
import urllib.request
from typing import Any

import schemathesis

MAX_OUTPUT_PIXELS = 16_777_216  # docs/api.md "Renditions"
MAX_AVIF_PIXELS = 4_194_304
SOURCE = {"image/jpeg": "jpeg", "image/png": "png"}


def stage_limit(api_url: str, timeout: float = 10) -> int:
    """The stage's MAX_UPLOAD_BYTES, as its GET /config.json publishes it."""
    with urllib.request.urlopen(f"{api_url.rstrip('/')}/config.json", timeout=timeout) as response:
        limit = json.load(response)["maxUploadBytes"]
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"maxUploadBytes of {api_url}/config.json is not a size: {limit!r}")
    return limit


def with_the_stages_limit(raw_schema: dict[str, Any], limit: int) -> dict[str, Any]:
    """openapi.yaml (as loaded) with fileSize bounded by the stage's limit."""
    file_size = raw_schema["components"]["schemas"]["CreateImage"]["properties"]["fileSize"]
    if "maximum" in file_size:
        raise ValueError("openapi.yaml hard-codes a maximum fileSize: the bound is the stage's")
    file_size["maximum"] = limit
    return raw_schema


FORM = "application/x-www-form-urlencoded"


def without_form_labelled_json(raw_schema: dict[str, Any]) -> dict[str, Any]:
    """openapi.yaml (as loaded) without the form label of POST /images's JSON text."""
    content = raw_schema["paths"]["/images"]["post"]["requestBody"]["content"]
    if content.get(FORM, {}).get("schema") != content["application/json"]["schema"]:
        raise ValueError(f"POST /images no longer takes its JSON text labelled {FORM}")
    del content[FORM]
    return raw_schema


@schemathesis.hook
def after_load_schema(context, schema) -> None:
    with_the_stages_limit(schema.raw_schema, stage_limit(schema.get_base_url()))
    without_form_labelled_json(schema.raw_schema)


def _identity(entry: dict, content_type: str) -> tuple:
    """What the thumbnail is, whatever the spelling."""
    focus = entry.get("focus")
    output = entry.get("format", "source")
    return (entry["width"], entry["height"], entry.get("fit", "cover"), entry.get("gravity", "center"),
            (round(focus["x"], 3), round(focus["y"], 3)) if focus else None,
            SOURCE.get(content_type, output) if output == "source" else output,
            entry.get("quality"), (entry.get("background") or "").lower() or None)


def within_the_rules(body: dict) -> dict:
    renditions = body.get("renditions")
    if not isinstance(renditions, list) or not renditions:
        return body
    kept, seen, total, avif = [], set(), 0, 0
    for entry in renditions:
        entry = dict(entry)
        is_avif = entry.get("format") == "avif"
        if is_avif and entry["width"] * entry["height"] > MAX_AVIF_PIXELS - avif:
            entry["height"] = max(1, (MAX_AVIF_PIXELS - avif) // entry["width"])
        pixels = entry["width"] * entry["height"]
        identity = _identity(entry, body.get("contentType", ""))
        if identity in seen or total + pixels > MAX_OUTPUT_PIXELS or (is_avif and avif + pixels > MAX_AVIF_PIXELS):
            continue
        kept.append(entry)
        seen.add(identity)
        total, avif = total + pixels, avif + (pixels if is_avif else 0)
    return {**body, "renditions": kept}  # never empty: the first entry always fits


@schemathesis.hook
def map_case(context, case):
    meta = case.meta
    if (case.operation.method.upper() == "POST" and case.operation.path == "/images" and meta is not None
            and meta.generation.mode.is_positive and isinstance(case.body, dict)):
        case.body = within_the_rules(case.body)
    return case
