"""Schemathesis hooks (SCHEMATHESIS_HOOKS): the two rules of POST /images's `renditions` that
a JSON schema cannot say, applied to the requests Schemathesis means to be valid.

openapi.yaml documents them in words: two entries asking for the same thumbnail (once the
defaults are filled in, the focus rounded and `source` resolved against contentType) and
more work than the budget are refused with 400. A positive case that breaks one would be
refused rightly, and fail `positive_data_acceptance`; so such a case is brought within the
rules first: repeated entries are left out, and entries are shrunk or left out until the
budget holds. Written from the contract, not from the server's code, so the two can disagree.
"""
from __future__ import annotations

import schemathesis

MAX_OUTPUT_PIXELS = 16_777_216  # docs/api.md "Renditions"
MAX_AVIF_PIXELS = 4_194_304
SOURCE = {"image/jpeg": "jpeg", "image/png": "png"}


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
